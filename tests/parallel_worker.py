"""Runs a few data-parallel train steps on a fixed global batch and prints the losses as JSON.

Used by tests/test_parallel.py in subprocesses with different device counts
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and with several processes
(``--coordinator`` etc., ``jax.distributed.initialize`` on loopback).
"""

from __future__ import annotations

import argparse
import json

import jax

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=4)
parser.add_argument("--coordinator", default=None)
parser.add_argument("--num_processes", type=int, default=1)
parser.add_argument("--process_id", type=int, default=0)
# Training mode (tests/test_parallel.py's topology test): train_lib on WORKDIR up to --steps
# (resuming what is there), then print this host's input samples per step (a digest per global
# slot) and, on process 0, write the final parameters to --params_out (.npz).
parser.add_argument("--train", default=None, help="a work directory: run train_lib there")
parser.add_argument("--data_dir", default=None)
parser.add_argument("--params_out", default=None)
args = parser.parse_args()
if args.coordinator:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)


def _train_mode() -> None:
  """Trains the test recipe to --steps in --train and reports the inputs and parameters."""
  import hashlib  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxsr import loading  # pylint: disable=g-import-not-at-top
  from jaxsr import runtime  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  from jaxsr.data import pipeline  # pylint: disable=g-import-not-at-top
  from jaxsr.recipes import test as test_recipe  # pylint: disable=g-import-not-at-top

  runtime.hide_accelerators_from_tensorflow()
  config = test_recipe.get_config()
  config.update(num_train_steps=args.steps, eval_datasets="", data_dir=args.data_dir,
                checkpoint_every_steps=2, log_every_steps=2, batches_per_transfer=2,
                learning_rate=1e-3)
  train_lib.train_and_evaluate(config, args.train)
  from jaxsr.tasks import base  # pylint: disable=g-import-not-at-top
  channels = getattr(base.model_from_config(config), "channels", 3)
  kwargs = train_lib._pipeline_kwargs(config, channels=channels)  # pylint: disable=protected-access
  kwargs.pop("name")
  p = pipeline.make_pipeline(config.dataset, **kwargs)
  slots = p.layout.local.tolist()
  digests = {}
  for step in range(args.steps):
    batch = p.batch(step)
    digests[step] = [hashlib.sha256(batch["lr"][j].tobytes() + batch["hr"][j].tobytes())
                     .hexdigest()[:16] for j in range(len(slots))]
  if jax.process_index() == 0 and args.params_out:
    params = loading.load_model(checkpoint=args.train, use_ema=False).variables["params"]
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    np.savez(args.params_out, **flat)
  print(json.dumps({"devices": jax.device_count(), "processes": jax.process_count(),
                    "slots": slots, "digests": digests}))


if args.train:
  _train_mode()
  raise SystemExit(0)

import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np

from jaxsr import optim
from jaxsr import parallel
from jaxsr import train_lib
from jaxsr.recipes import test as test_recipe
from jaxsr.tasks import base
from jaxsr.tasks import psnr

config = test_recipe.get_config()
config.update(learning_rate=1e-3, schedule="constant", num_train_steps=10, optimizer="adam",
              grad_clip_norm=1.0)
model = base.model_from_config(ml_collections.ConfigDict(
    dict(model="edsr_baseline", scale=2, model_overrides=dict(num_feat=8, num_block=1))))
tx, schedule = optim.make_optimizer(config)
mesh = parallel.make_mesh()
init = parallel.replicate(base.create_train_state(
    model, tx, key=jax.random.key(0), lr_shape=(1, 6, 6, 3), ema=True), mesh)
step_fn = psnr.make_train_step(model, tx, schedule, loss="l1", ema_decay=0.9)
shardings = (jax.tree.map(lambda _: parallel.replicated(mesh), init), parallel.replicated(mesh))
rng = np.random.RandomState(0)
per_host = 8 // jax.process_count()
sl = slice(jax.process_index() * per_host, (jax.process_index() + 1) * per_host)
batches = [{"lr": rng.rand(8, 6, 6, 3).astype(np.float32)[sl],
            "hr": rng.rand(8, 12, 12, 3).astype(np.float32)[sl]} for _ in range(args.steps)]
with mesh:
  # One transfer per step ...
  step = jax.jit(step_fn, out_shardings=shardings)
  state, losses = init, []
  for batch in batches:
    state, metrics = step(state, parallel.shard_batch(batch, mesh))
    losses.append(float(metrics["loss"]))
  # ... and all steps' batches in one stack [steps, B, ...], sharded on axis 1 (train.py's way).
  stacked = jax.jit(train_lib.step_on_stack(step_fn), out_shardings=shardings)
  (stack, _), = train_lib.stack_batches(batches, len(batches))
  stack = parallel.shard_batch(stack, mesh, batch_axis=1)
  state, stacked_losses = init, []
  for j in range(args.steps):
    state, metrics = stacked(state, stack, parallel.replicate(np.int32(j), mesh))
    stacked_losses.append(float(metrics["loss"]))
print(json.dumps({"devices": jax.device_count(), "processes": jax.process_count(),
                  "losses": losses, "stacked_losses": stacked_losses}))
