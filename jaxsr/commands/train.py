"""Training: any jaxsr model on any number of devices and hosts.

  jaxsr train --config CONFIG --workdir DIR [--config.FIELD=VALUE ...]

CONFIG is a config file (e.g. configs/edsr_x2.py in a source checkout) or ``recipe:NAME``, a
recipe packaged with jaxsr (jaxsr/recipes/NAME.py). ``python train.py ...`` in a source
checkout is the same program.

One run at a time per DIR: a second one is refused while DIR/train.lock is held (a lock left by
a killed run on this host is taken over with a warning).

Resumes automatically from the latest intact checkpoint in DIR. On a multi-host cluster run
the same command on every host with --distributed (JAX detects Cloud TPU, SLURM, ...) or with
--coordinator_address/--num_processes/--process_id. User mistakes and environment faults (bad
config values, a checkpoint that does not fit, non-finite or diverging losses, a busy, unwritable
or full work directory) end with a one-line error and exit status 2. SIGTERM or SIGINT saves a
checkpoint at a step all hosts agree on, logs "preempted at step N" and exits with status 143
(SIGTERM) or 130 (SIGINT); the same command resumes from that step.
"""

from __future__ import annotations

import difflib
import functools
import logging as std_logging
import os
import runpy
import sys
from typing import NoReturn, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from jaxsr import recipes
from jaxsr import runtime
from jaxsr import train_lib
from jaxsr.checkpoint import CheckpointError
from jaxsr.commands import _program
from jaxsr.errors import InputError

__all__ = ["RECIPE_PREFIX", "main", "resolve_recipe", "start"]

RECIPE_PREFIX = "recipe:"

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config: a config file, or recipe:NAME for a recipe packaged with "
    "jaxsr (jaxsr/recipes/NAME.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs and summary.json go "
                               "(a local folder or gs://bucket/path).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                  "Call jax.distributed.initialize() and let JAX detect the "
                                  "cluster (Cloud TPU, SLURM, Open MPI, ...).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 for multi-host runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (hosts).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
flags.mark_flags_as_required(["config", "workdir"])

_FLAG_NAMES = ("config", "workdir", "distributed", "coordinator_address", "num_processes",
               "process_id")
# Library error fields (InputError.field) -> the config field that sets them.
_FLAG_OF_FIELD = {"scale": "config.scale", "model": "config.model", "workdir": "--workdir"}


class _QuietOrbax(std_logging.Filter):
  """Drops Orbax's per-save INFO chatter; its warnings and errors still show."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def resolve_recipe(value: str) -> str:
  """``'recipe:NAME[:ARG]'`` -> the packaged recipe's file ``[+ ':ARG']``; other values as given.

  Raises:
    InputError: no packaged recipe of that name (the message lists the names).
  """
  if not value.startswith(RECIPE_PREFIX):
    return value
  name, sep, arg = value[len(RECIPE_PREFIX):].partition(":")
  return f"{recipes.path(name)}{sep}{arg}"


def _resolve_recipes(args: Sequence[str]) -> list[str]:
  """The arguments with ``--config recipe:NAME`` / ``--config=recipe:NAME`` resolved."""
  out = list(args)
  for i, arg in enumerate(out):
    if arg == "--":
      break
    if arg in ("--config", "-config") and i + 1 < len(out):
      out[i + 1] = resolve_recipe(out[i + 1])
    for prefix in ("--config=", "-config="):
      if arg.startswith(prefix):
        out[i] = prefix + resolve_recipe(arg[len(prefix):])
  return out


def main(argv: list[str], *, prog: str = "train.py") -> None:
  """The absl main: trains ``--config`` in ``--workdir``; a user mistake exits with status 2."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietOrbax())
  runtime.configure_xla_cpu()  # before the first JAX computation
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()
  logging.info("JAX process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  runtime.hide_accelerators_from_tensorflow()  # the input pipeline stays off the accelerators
  try:
    train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except InputError as e:
    print(f"{prog}: error: {e.describe(_FLAG_OF_FIELD)}", file=sys.stderr)
    sys.exit(2)
  except (CheckpointError, FloatingPointError, train_lib.OutputError) as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    sys.exit(2)
  except train_lib.Preempted as e:  # SIGTERM / SIGINT: a step was saved; 143 / 130
    print(f"{prog}: {e}", file=sys.stderr)
    sys.exit(e.exit_status)


def _load_config_file(argv: Sequence[str]):
  """The config of the ``--config FILE[:ARG]`` in ``argv``, or None when it cannot be loaded
  (config_flags has no value yet when an override names a missing field)."""
  path = None
  for i, arg in enumerate(argv):
    if arg == "--config" and i + 1 < len(argv):
      path = argv[i + 1]
    elif arg.startswith("--config="):
      path = arg[len("--config="):]
  if not path:
    return None
  path, _, extra = path.partition(".py:")
  path = path if path.endswith(".py") else path + ".py"
  try:
    get_config = runpy.run_path(path)["get_config"]
    return get_config(extra) if extra else get_config()
  except Exception:  # pylint: disable=broad-except
    return None  # absl's own message stands


def _unknown_field(argv: Sequence[str]) -> str | None:
  """For the first ``--config.A.B=V`` whose field the loaded config lacks: a message naming it
  and the nearest existing field at that level (absl's own message names only the last key)."""
  config = _load_config_file(argv)
  if config is None:
    return None
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config."):].split("=", 1)[0].split(".")
    node = config
    for depth, key in enumerate(path):
      keys = list(node.keys()) if hasattr(node, "keys") else None
      if keys is None:
        break
      if key not in keys:
        where = ".".join(["config", *path[:depth]])
        near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f" (fields: {', '.join(sorted(keys))})"
        return f"--config.{'.'.join(path)}: {where} has no field {key!r}{hint}"
      node = node[key]
  return None


def start(args: Sequence[str] | None = None, *, prog: str = "train.py") -> NoReturn:
  """Runs the program on ``args`` (default ``sys.argv[1:]``) as ``prog``; exits the process.

  ``--config recipe:NAME`` is resolved to the packaged recipe's file first; an unknown name
  ends with a one-line error listing the recipes (status 2).
  """
  try:
    args = _resolve_recipes(sys.argv[1:] if args is None else args)
  except InputError as e:
    print(f"{prog}: error: --config: {e.message}", file=sys.stderr)
    sys.exit(2)
  _program.start(functools.partial(main, prog=prog), args=args, prog=prog, doc=__doc__,
                 flag_names=_FLAG_NAMES,
                 flags_parser=functools.partial(_program.one_line_flag_errors, prog=prog,
                                                explain=_unknown_field))
