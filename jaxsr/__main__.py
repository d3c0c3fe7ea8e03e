"""``python -m jaxsr``: the ``jaxsr`` command (see ``jaxsr.cli``)."""

import sys

from jaxsr.cli import main

if __name__ == "__main__":
  sys.exit(main())
