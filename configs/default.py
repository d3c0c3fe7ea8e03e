"""The embedded-default run behind the README's main command: a few minutes on 2 CPU cores.

The recipe is jaxsr.recipes.default (packaged with jaxsr); this file keeps
`--config configs/default.py` working.
"""

from jaxsr.recipes.default import get_config  # pylint: disable=unused-import
