"""The training loop: any ``jaxsr.tasks`` task on all devices of all hosts, resumable.

Contract:
  * ``train_and_evaluate(config, workdir)`` trains the task ``config.task``
    (``jaxsr.tasks.make_task``) in ``workdir`` and returns the summary dict it also writes to
    ``workdir/summary.json``. It reads every setting as an attribute of ``config`` (the
    recipes of ``jaxsr.recipes`` hold the defaults); a missing field is a one-line
    ``InputError`` before anything runs.
  * The task's step is jit-compiled once over a 1-D ``data`` mesh of all devices of all hosts
    (``jaxsr.parallel``) with the state replicated and donated and the batch sharded. Batches
    ``{'lr': [B, p, p, C], 'hr': [B, s*p, s*p, C]}`` (float32 in [0, 1]) reach the devices in
    stacks of ``config.batches_per_transfer`` (``stack_batches``), the step picking its own
    (``step_on_stack``). No host-side Python runs per step inside it; a non-finite metric is
    caught on the host at the next log or checkpoint step, before anything is saved.
  * Resuming: the latest intact checkpoint in ``workdir/checkpoints`` (``jaxsr.checkpoint``)
    is restored (refused when it holds another model) and the input pipeline restarts at its
    step (batch k is a pure function of the seed and k), so a run killed at any point and
    restarted ends with exactly the parameters of an uninterrupted run.
  * It logs with clu (TensorBoard scalars and images, steps/s and ETA) and evaluates
    periodically and at the end with ``jaxsr.eval_lib``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import pathlib
import time
from typing import Callable, Iterable, Iterator

import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxsr import checkpoint as ckpt_lib
from jaxsr import data as jaxsr_data
from jaxsr import eval_lib
from jaxsr import loading
from jaxsr import parallel
from jaxsr import tasks
from jaxsr.errors import InputError

__all__ = ["stack_batches", "step_on_stack", "train_and_evaluate"]

_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- loop helpers


_IDENTITY_FIELDS = ("model", "scale", "model_overrides")


def _identity(config: ml_collections.ConfigDict) -> dict:
  """What a checkpoint must agree on with the config to be resumed (JSON-compatible)."""
  return json.loads(json.dumps({"model": config.model, "scale": config.scale,
                                "model_overrides": dict(config.model_overrides or {})}))


def _check_resume(meta: dict, identity: dict, directory: pathlib.Path) -> None:
  saved = meta.get("identity")
  if saved is not None and saved != identity:
    diff = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {identity.get(k)!r}"
                     for k in _IDENTITY_FIELDS if saved.get(k) != identity.get(k))
    raise InputError(f"{directory}: refusing to resume a different model ({diff}); "
                     "use a new --workdir")


def _eval_names(config: ml_collections.ConfigDict) -> list[str]:
  """``config.eval_datasets`` ('set5,set14'; '' for none) as a list."""
  return [d.strip() for d in str(config.eval_datasets or "").split(",") if d.strip()]


def _pipeline_kwargs(config: ml_collections.ConfigDict, *, channels: int) -> dict:
  """``jaxsr.data.train_dataset``'s arguments but the start and number of steps."""
  kwargs = dict(y_channel=channels == 1, hr_rescales=tuple(config.hr_rescales),
                batch_size=int(config.batch_size), seed=int(config.seed),
                data_dir=config.data_dir, manual_dir=config.manual_dir)
  if config.train_scales:
    kwargs.update(scale=tuple(int(s) for s in config.train_scales),
                  hr_patch_size=int(config.hr_patch_size))
  else:
    kwargs.update(scale=int(config.scale), lr_patch_size=int(config.lr_patch_size))
  return kwargs


def step_on_stack(train_step: Callable) -> Callable:
  """``(state, batch) -> out`` as ``(state, stack, j) -> out`` on batch ``j`` of a stack.

  The stack is ``[k, B, ...]`` (``stack_batches``); ``j`` is an int32 array, so one
  compilation serves every ``j``.
  """

  def stacked_step(state, stack, j):
    batch = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, j, 0, keepdims=False), stack)
    return train_step(state, batch)

  return stacked_step


def stack_batches(batches: Iterable[dict[str, np.ndarray]],
                  k: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
  """Yields ``(stack, count)``: ``count`` <= k consecutive batches stacked as ``[k, B, ...]``.

  The last stack is padded with copies of its last batch, so every stack has one shape.
  """
  it = iter(batches)
  while group := list(itertools.islice(it, k)):
    count = len(group)
    group += group[-1:] * (k - count)
    yield {key: np.stack([b[key] for b in group]) for key in group[0]}, count


# ----------------------------------------------------------------------------- the loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming if possible) and returns the summary dict.

  The summary: ``step``, ``train_loss`` (mean of the last logged steps), ``eval`` (the
  ``jaxsr.eval_lib.evaluate`` entries of ``config.eval_datasets``) and ``params_sha256`` of
  the evaluated parameters.

  Raises:
    InputError: a missing or invalid config field, or a checkpoint of another model.
    FloatingPointError: non-finite training metrics (nothing is saved after them).
  """
  with tasks.config_fields_required():
    return _train_and_evaluate(config, pathlib.Path(workdir))


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict:
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  from clu import parameter_overview
  from clu import periodic_actions

  started = time.time()  # eval_history's elapsed_s: wall time since this process began the run
  task = tasks.make_task(config)
  model = task.model
  channels = getattr(model, "channels", 3)
  # Every other setting, read before anything runs.
  num_steps = int(config.num_train_steps)
  batch_size = int(config.batch_size)
  seed = int(config.seed)
  per_transfer = int(config.batches_per_transfer)
  log_every = int(config.log_every_steps)
  ckpt_every = int(config.checkpoint_every_steps)
  eval_every = int(config.eval_every_steps or 0)
  keep_checkpoints = int(config.keep_checkpoints)
  init_from = config.init_from
  identity = _identity(config)
  pipeline_kwargs = _pipeline_kwargs(config, channels=channels)
  eval_datasets = _eval_names(config)
  scale = int(config.scale)
  eval_data_dir = config.eval_data_dir
  eval_protocol = config.eval_protocol or None
  meta = {"identity": identity, "config": json.loads(config.to_json_best_effort()),
          # what checkpoint.load_model rebuilds the generator from (eval.py --checkpoint,
          # init_from, jaxsr upscale)
          "model": {"name": config.model, "scale": scale,
                    "overrides": identity["model_overrides"]}}
  if per_transfer < 1:
    raise InputError(f"config.batches_per_transfer: expected an integer >= 1, got {per_transfer}")

  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  writer = metric_writers.create_default_writer(str(workdir), just_logging=not is_main)
  mesh = parallel.make_mesh()
  if batch_size % mesh.size:
    raise InputError(f"config.batch_size: {batch_size} does not divide over {mesh.size} devices")

  state = task.init_state(key=jax.random.key(seed))
  manager = ckpt_lib.CheckpointManager(workdir / "checkpoints", max_to_keep=keep_checkpoints)
  for step0 in sorted(manager.all_steps(), reverse=True):
    try:  # refuse a different model before trying to restore into the wrong shapes
      _check_resume(manager.read_meta(step0), identity, manager.directory)
      break
    except InputError:
      raise
    except Exception:  # pylint: disable=broad-except
      continue  # an unreadable step; restore() below reports it
  restored = manager.restore(task.state_dict(state))
  if restored is not None:
    step0, saved, saved_meta = restored
    _check_resume(saved_meta, identity, manager.directory)
    state = task.restore_state(state, saved)
    _log.info("resumed from step %d in %s", step0, manager.directory)
  elif init_from:
    try:
      loaded = loading.load_model(checkpoint=init_from, use_ema=True)
    except InputError as e:
      raise InputError(e.message, field="config.init_from") from None
    state = task.init_from(state, loaded.variables)
    _log.info("initialised parameters from %s (step %s)", init_from, loaded.meta.get("step"))
  start_step = int(jax.device_get(state.step))
  if is_main and start_step == 0:
    parameter_overview.log_parameter_overview(task.eval_variables(state)["params"])
    writer.write_hparams({k: v for k, v in config.to_dict().items()
                          if isinstance(v, (int, float, str, bool))})
  state = parallel.replicate(state, mesh)
  state_sharding = jax.tree.map(lambda _: parallel.replicated(mesh), state)
  # Batches travel to the devices in stacks of k (one transfer per k steps: on a 2-core CPU a
  # transfer per step cost ~10% of ESPCN's step rate); the step picks batch j of the stack.
  train_step = jax.jit(step_on_stack(task.train_step), donate_argnums=0,
                       out_shardings=(state_sharding, parallel.replicated(mesh)))
  stack_index = [parallel.replicate(np.int32(j), mesh) for j in range(per_transfer)]

  progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                             every_steps=log_every)
  pending: list[dict] = []
  last_loss = float("nan")

  def flush(step: int) -> None:
    nonlocal last_loss
    if not pending:
      return
    values = jax.device_get(pending)
    pending.clear()
    mean = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
    if not all(math.isfinite(v) for v in mean.values()):
      manager.wait_until_finished()
      good = manager.latest_step()
      where = (f"the last good checkpoint is step {good} in {manager.directory}" if good is not None
               else "no checkpoint had been saved yet")
      raise FloatingPointError(
          f"non-finite training metrics before step {step} ({mean}); stopped without saving; "
          f"{where}")
    last_loss = mean["loss"]
    writer.write_scalars(step, mean)

  def run_eval(step: int) -> list[dict]:
    variables = task.eval_variables(state)
    results = eval_lib.evaluate_model(model, variables, datasets=eval_datasets, scale=scale,
                                      protocol=eval_protocol, data_dir=eval_data_dir)
    scalars = {f"eval/{r['dataset']}_x{r['scale']}_{k}": r[k] for r in results for k in ("psnr", "ssim")}
    if scalars:
      writer.write_scalars(step, scalars)
      _log.info("step %d eval: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
      if is_main:  # appended at once, so a killed run keeps its curve
        with open(workdir / "eval_history.jsonl", "a") as f:
          f.write(json.dumps({"step": step, "time": time.time(),
                              "elapsed_s": time.time() - started, **scalars}) + "\n")
    if eval_datasets:
      panel = eval_lib.comparison_panel(model, variables, dataset=eval_datasets[0], scale=scale,
                                        data_dir=eval_data_dir)
      writer.write_images(step, {"lr_bicubic_sr_hr": panel[None]})
      if is_main:
        Image.fromarray(np.round(panel * 255).astype(np.uint8)).save(workdir / "comparison.png")
    return results

  def save(step: int) -> None:
    flush(step)
    manager.save(step, task.state_dict(state), meta=meta)

  data = (jaxsr_data.train_dataset(start_step=start_step, num_steps=num_steps - start_step,
                                   **pipeline_kwargs)
          if start_step < num_steps else iter(()))
  step = start_step
  with jax.set_mesh(mesh):
    for stack, count in stack_batches(data, per_transfer):
      stack = parallel.shard_batch(stack, mesh, batch_axis=1)
      for j in range(count):
        state, metrics = train_step(state, stack, stack_index[j])
        pending.append(metrics)
        step += 1
        progress(step)
        if step % log_every == 0 or step == num_steps:
          flush(step)
        if step % ckpt_every == 0 and step != num_steps:
          save(step)
        if eval_every and step % eval_every == 0 and step != num_steps:
          run_eval(step)
  if manager.latest_step() != step:
    save(step)
  manager.wait_until_finished()
  results = run_eval(step)
  summary = {
      "step": step,
      "train_loss": last_loss,
      "eval": results,
      "params_sha256": ckpt_lib.params_sha256(task.eval_variables(state)["params"]),
  }
  if is_main:
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    if results:  # the table, and the baseline beside it: same sets, scale and protocol
      print(eval_lib.format_table(results, model=config.model))
      baseline = [eval_lib.evaluate(eval_lib.bicubic(r["scale"]),
                                    jaxsr_data.load_eval_set(spec, data_dir=eval_data_dir)[1],
                                    scale=r["scale"], protocol=r["protocol"], dataset=r["dataset"])
                  for spec, r in zip(eval_datasets, results)]
      print("\n".join(eval_lib.format_table(baseline, model="bicubic").splitlines()[1:]))
      print(f"comparison image (LR | bicubic | {config.model} | HR): {workdir / 'comparison.png'}")
  writer.flush()
  manager.close()
  return summary
