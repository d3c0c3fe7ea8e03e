"""Starting an absl program under a given name (``jaxsr train``, ``train.py``, ...).

absl shows in ``--help`` the docstring of ``__main__`` and the flags that are key to the module
named ``sys.argv[0]``; a program defined in a library module and started from another main
module (a script, the ``jaxsr`` command) would show neither. :func:`start` makes the
program's docstring and flags the ones shown, and makes ``--help`` exit with status 0.
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn, Sequence

from absl import app
from absl import flags

# absl's help flags (absl exits with status 1 after printing help).
_HELP = frozenset(f"{dash}{name}" for dash in ("-", "--")
                  for name in ("help", "?", "helpshort", "helpfull", "helpxml"))


def _asks_for_help(args: Sequence[str]) -> bool:
  for arg in args:
    if arg == "--":
      return False
    if arg in _HELP:
      return True
  return False


def one_line_flag_errors(argv: list[str], *, prog: str,
                         explain: Callable[[list[str]], str | None] | None = None) -> list[str]:
  """absl's flag parsing, with a bad flag or value reported as one line and exit status 2.

  ``explain(argv)``, when given, may return a better message for the error than absl's.
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    message = (explain and explain(argv)) or " ".join(
        str(e).replace("\\n", " ").replace("\\'", "'").split())
    if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
      message = message[1:-1]  # a KeyError's quoted key
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def start(main: Callable[[list[str]], None], *, args: Sequence[str], prog: str, doc: str,
          flag_names: Sequence[str],
          flags_parser: Callable[[list[str]], list[str]] | None = None) -> NoReturn:
  """Runs ``main`` with absl (``app.run``) on ``[prog, *args]``; never returns.

  Args:
    main: the program, called with the arguments left after flag parsing.
    args: the command-line arguments after the program name.
    prog: the program's name (absl's ``argv[0]``).
    doc: the usage text ``--help`` prints above the flags.
    flag_names: the program's flags, listed by ``--help``.
    flags_parser: replaces the flag parser (default: :func:`one_line_flag_errors`).
  """
  for name in flag_names:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
  main_module = sys.modules.get("__main__")
  if main_module is not None:
    main_module.__doc__ = doc
  parser = flags_parser or (lambda argv: one_line_flag_errors(argv, prog=prog))
  try:
    app.run(main, argv=[prog, *args], flags_parser=parser)
  except SystemExit as e:
    if e.code == 1 and _asks_for_help(args):
      raise SystemExit(0) from None
    raise
  raise SystemExit(0)  # app.run always exits; this keeps the NoReturn contract visible
