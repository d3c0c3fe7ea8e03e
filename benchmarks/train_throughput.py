"""Framework overhead: train.py's steps/s beside a minimal hand-written JAX loop, same model.

  python benchmarks/train_throughput.py [--steps N] [--dataset t91 --manual-dir DIR] [--json FILE]

Both run ESPCN x3 (Y, MSE, Adam, batch 16, LR patch 17) on this machine in one run:
  * minimal: one jitted step (jaxsr.tasks.psnr.PSNRTask's) fed pre-made device batches,
    no input pipeline, no logging, no checkpoints;
  * train.py: jaxsr.train_lib.train_and_evaluate with the real pipeline, clu logging every
    100 steps, checkpoints every 1000 steps, no periodic evaluation; with the configs'
    ``batches_per_transfer`` and, for comparison, with one host->device transfer per step;
and reports steps/s of each and the ratio (framework cost = 1 - ratio, default transfer).
Compilation and the first 100 steps are excluded from both. XLA:CPU gets the flag train.py sets
(``jaxsr.runtime.configure_xla_cpu``; ``JAXSR_XLA_DEFAULTS=1`` measures XLA's defaults instead).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxsr import runtime  # pylint: disable=g-import-not-at-top

runtime.configure_xla_cpu()  # as train.py does, before the first JAX computation: both sides alike

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

from common import machine, write_json
from jaxsr import train_lib
from jaxsr.recipes import espcn_x3
from jaxsr.tasks import psnr


def _config(args):
  config = espcn_x3.get_config()
  config.dataset = args.dataset
  config.manual_dir = args.manual_dir
  config.eval_datasets = ""
  config.num_train_steps = args.steps
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config.eval_every_steps = 0
  return config


def _with_transfer(config, k: int):
  config = config.copy_and_resolve_references()
  config.batches_per_transfer = k
  return config


def minimal_loop(config, steps: int) -> float:
  task = psnr.PSNRTask(config)
  state = task.init_state(key=jax.random.key(0))
  step = jax.jit(task.train_step, donate_argnums=0)
  rng = np.random.RandomState(0)
  p = int(config.lr_patch_size)
  batches = [{"lr": jax.device_put(rng.rand(16, p, p, 1).astype(np.float32)),
              "hr": jax.device_put(rng.rand(16, 3 * p, 3 * p, 1).astype(np.float32))}
             for _ in range(8)]
  for i in range(100):
    state, metrics = step(state, batches[i % 8])
  jax.block_until_ready(metrics)
  t = time.perf_counter()
  for i in range(steps):
    state, metrics = step(state, batches[i % 8])
  jax.block_until_ready(metrics)
  return steps / (time.perf_counter() - t)


def framework(config, steps: int) -> float:
  """steps/s of train_and_evaluate between its step-100 and last log lines."""
  import logging  # pylint: disable=g-import-not-at-top
  records = []

  class Grab(logging.Handler):
    def emit(self, record):
      msg = record.getMessage()
      m = re.match(r"\[(\d+)\] steps_per_sec", msg)
      if m:
        records.append((int(m.group(1)), time.perf_counter()))

  handler = Grab()
  logging.getLogger().addHandler(handler)
  logging.getLogger().setLevel(logging.INFO)
  try:
    config.num_train_steps = steps + 100
    with tempfile.TemporaryDirectory() as workdir:
      train_lib.train_and_evaluate(config, workdir)
  finally:
    logging.getLogger().removeHandler(handler)
  (s0, t0), (s1, t1) = records[0], records[-1]
  return (s1 - s0) / (t1 - t0)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--dataset", default="embedded")
  parser.add_argument("--manual-dir", default=None)
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  config = _config(args)
  k = int(config.batches_per_transfer)
  raw = minimal_loop(config, args.steps)
  full = framework(config, args.steps)
  single = framework(_with_transfer(config, 1), args.steps)
  raw_again = minimal_loop(config, args.steps)  # bracket the framework runs: the machine is noisy
  raw_mean = (raw + raw_again) / 2
  print(f"machine: {machine()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print(f"ESPCN x3, batch 16, LR patch 17, dataset {args.dataset}, {args.steps} timed steps")
  print(f"minimal jitted loop : {raw:.1f} / {raw_again:.1f} steps/s (before / after)")
  print(f"train.py framework  : {full:.1f} steps/s (batches_per_transfer={k}, the configs' default)")
  print(f"  one transfer/step : {single:.1f} steps/s (batches_per_transfer=1)")
  print(f"ratio               : {full / raw_mean:.3f} (framework cost {100 * (1 - full / raw_mean):.1f}%)")
  write_json(args.json, {"minimal_steps_per_s": [raw, raw_again], "framework_steps_per_s": full,
                         "framework_one_transfer_per_step": single, "batches_per_transfer": k,
                         "ratio": full / raw_mean, "machine": machine(),
                         "xla_flags": os.environ.get("XLA_FLAGS", "")})


if __name__ == "__main__":
  main()
