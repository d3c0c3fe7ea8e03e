"""PSNR-oriented training: state, optimizer, the data-parallel train step, and the train loop.

Contract:
  * ``TrainState`` is a pytree: ``step``, ``params``, ``opt_state``, ``batch_stats`` (``{}`` for
    models without batch norm) and ``ema_params`` (``{}`` when EMA is off).
  * ``make_train_step`` returns a pure function ``(state, batch) -> (state, metrics)``; batches
    are ``{'lr': [B, p, p, C], 'hr': [B, s*p, s*p, C]}`` float32 in [0, 1]. The loop jit-compiles
    it once over a 1-D ``data`` mesh of all devices of all hosts (``jaxsr.parallel``) with the
    state replicated and donated, and the batch sharded; batches reach the devices in stacks
    of ``config.batches_per_transfer``, the step indexing its own. No host-side Python runs per step
    inside it; a non-finite loss is caught on the host at the next log or checkpoint step,
    before anything is saved.
  * ``train_and_evaluate(config, workdir)`` resumes from the latest intact checkpoint in
    ``workdir/checkpoints`` (``jaxsr.checkpoint``), restarts the input pipeline at that step
    (batch k is a pure function of the seed and k), so a run killed at any point and restarted
    ends with exactly the parameters of an uninterrupted run. It logs with clu (TensorBoard
    scalars and images, steps/s and ETA), evaluates periodically with ``jaxsr.eval_lib``, and
    writes ``workdir/summary.json`` at the end.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import pathlib
import time
from typing import Any, Callable, Iterable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from PIL import Image

from jaxsr import checkpoint as ckpt_lib
from jaxsr import eval_lib
from jaxsr import losses
from jaxsr import parallel
from jaxsr.errors import InputError

__all__ = [
    "PSNRTask", "Task", "TrainState", "create_train_state", "make_optimizer", "make_schedule",
    "make_task", "make_train_step", "stack_batches", "step_on_stack", "train_and_evaluate",
]

_log = logging.getLogger(__name__)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any
  ema_params: Any


# ----------------------------------------------------------------------------- optimizer


def make_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """The learning-rate schedule named by ``config.schedule``.

  'constant'; 'multistep' (multiply by ``lr_decay_factor`` at each of ``lr_boundaries``, EDSR's
  halving); 'cosine' (to ``lr_end`` over ``num_train_steps``); 'cosine_restarts' (cosine
  periods ``lr_periods`` with restarts, ESRGAN's PSNR stage); 'step' (multiply by
  ``lr_decay_factor`` every ``lr_decay_every`` steps, VDSR). ``warmup_steps`` > 0 prepends a
  linear warm-up.
  """
  lr = float(config.learning_rate)
  kind = config.get("schedule", "constant")
  steps = int(config.num_train_steps)
  if kind == "constant":
    schedule = optax.constant_schedule(lr)
  elif kind == "multistep":
    schedule = optax.piecewise_constant_schedule(
        lr, {int(b): float(config.lr_decay_factor) for b in config.lr_boundaries})
  elif kind == "step":
    every = int(config.lr_decay_every)
    schedule = optax.exponential_decay(lr, every, float(config.lr_decay_factor), staircase=True)
  elif kind == "cosine":
    end = float(config.get("lr_end", 0.0))
    schedule = optax.cosine_decay_schedule(lr, max(1, steps), alpha=end / lr if lr else 0.0)
  elif kind == "cosine_restarts":
    periods = [int(p) for p in config.lr_periods]
    end = float(config.get("lr_end", 0.0))
    pieces = [optax.cosine_decay_schedule(lr, p, alpha=end / lr if lr else 0.0) for p in periods]
    schedule = optax.join_schedules(pieces, list(np.cumsum(periods)[:-1]))
  else:
    raise InputError(f"config.schedule: unknown value {kind!r}; expected constant, multistep, "
                     "step, cosine or cosine_restarts")
  warmup = int(config.get("warmup_steps", 0))
  if warmup:
    schedule = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), schedule], [warmup])
  return schedule


def adjustable_gradient_clipping(theta: float, schedule: optax.Schedule) -> optax.GradientTransformation:
  """VDSR's adjustable gradient clipping: clip each gradient to ``[-theta/lr, theta/lr]``.

  With SGD the effective update is then bounded by ``theta`` whatever the learning rate.
  """

  def init_fn(params):
    del params
    return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    bound = theta / jnp.maximum(schedule(state.count), 1e-12)
    updates = jax.tree.map(lambda g: jnp.clip(g, -bound, bound), updates)
    return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Optax optimizer (``config.optimizer``: 'adam' or 'sgd') with clipping and the schedule."""
  schedule = make_schedule(config)
  chain = []
  if config.get("grad_clip_theta", 0.0):
    chain.append(adjustable_gradient_clipping(float(config.grad_clip_theta), schedule))
  if config.get("grad_clip_norm", 0.0):
    chain.append(optax.clip_by_global_norm(float(config.grad_clip_norm)))
  kind = config.get("optimizer", "adam")
  if kind == "adam":
    chain.append(optax.adam(schedule, b1=float(config.get("adam_b1", 0.9)),
                            b2=float(config.get("adam_b2", 0.999)),
                            eps=float(config.get("adam_eps", 1e-8))))
  elif kind == "sgd":
    chain.append(optax.sgd(schedule, momentum=float(config.get("momentum", 0.9))))
  else:
    raise InputError(f"config.optimizer: unknown value {kind!r}; expected adam or sgd")
  if config.get("weight_decay", 0.0):
    chain.insert(len(chain) - 1, optax.add_decayed_weights(float(config.weight_decay)))
  return optax.chain(*chain), schedule


# ----------------------------------------------------------------------------- state and step


def model_from_config(config: ml_collections.ConfigDict) -> nn.Module:
  """The Flax module ``config.model`` at ``config.scale`` with ``config.model_overrides``."""
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  try:
    return models.get_model(config.model, scale=int(config.scale),
                            **dict(config.get("model_overrides", {}) or {}))
  except (ValueError, TypeError) as e:
    raise InputError(f"config.model: {e}") from None


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, *, key: jax.Array,
                       lr_shape: tuple[int, ...], ema: bool) -> TrainState:
  """Initialises parameters (on the host's default device) and the optimizer state."""
  variables = model.init(key, jnp.zeros(lr_shape, jnp.float32))
  params = variables["params"]
  return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params),
                    batch_stats=variables.get("batch_stats", {}),
                    ema_params=jax.tree.map(jnp.copy, params) if ema else {})


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    *, loss: str = "l1", ema_decay: float = 0.0,
                    compute_dtype: str = "float32") -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
  """The pure train step ``(state, batch) -> (state, metrics)``.

  Args:
    model, tx, schedule: the module, its optax optimizer and learning-rate schedule (logged).
    loss: pixel loss name (``jaxsr.losses.pixel_loss``).
    ema_decay: EMA of the parameters (0 disables; needs ``state.ema_params``).
    compute_dtype: 'float32', or 'bfloat16' to run the forward/backward pass in bf16 with
      float32 parameters, optimizer and loss (for GPU/TPU).

  Returns:
    The step. Metrics: ``loss``, ``grad_norm``, ``learning_rate`` (scalars).
  """
  loss_fn = losses.pixel_loss(loss)
  dtype = jnp.dtype(compute_dtype)

  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    def objective(params):
      variables = {"params": params}
      lr_in = batch["lr"]
      if dtype != jnp.float32:
        variables = jax.tree.map(lambda p: p.astype(dtype), variables)
        lr_in = lr_in.astype(dtype)
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
        sr, updates = model.apply(variables, lr_in, train=True, mutable=["batch_stats"])
        new_stats = updates["batch_stats"]
      else:
        sr = model.apply(variables, lr_in, train=True)
        new_stats = state.batch_stats
      value = loss_fn(sr.astype(jnp.float32), batch["hr"])
      return value, new_stats

    (value, new_stats), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema_params
    if ema_decay:
      ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, params)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              batch_stats=new_stats, ema_params=ema)
    metrics = {"loss": value, "grad_norm": optax.tree.norm(grads),
               "learning_rate": jnp.asarray(schedule(state.step), jnp.float32)}
    return new_state, metrics

  return step


# ----------------------------------------------------------------------------- tasks


class Task:
  """What the loop trains: the generator ``model`` plus state, step and evaluation weights.

  ``train_and_evaluate`` is written against this interface; ``PSNRTask`` (pixel losses) is
  the default and ``jaxsr.gan_lib`` provides the two-player one (``config.task = 'gan'``).
  The state must be a pytree of arrays (a ``flax.struct`` dataclass) with an integer ``step``
  and the generator under ``params``, ``opt_state``, ``batch_stats``, ``ema_params`` (what
  ``checkpoint.load_model`` reads); ``tx`` is the generator's optimizer.
  """

  model: nn.Module
  tx: optax.GradientTransformation
  ema_decay: float = 0.0

  def init_state(self, *, key: jax.Array) -> Any:
    raise NotImplementedError

  def train_step(self, state: Any, batch: dict) -> tuple[Any, dict]:
    """Pure and jit-able: ``(state, batch) -> (state, scalar metrics)``."""
    raise NotImplementedError

  def eval_variables(self, state: Any) -> dict:
    """Host-side generator variables to evaluate and sample with (EMA when there is one)."""
    params = state.ema_params if state.ema_params else state.params
    variables = {"params": jax.device_get(params)}
    if state.batch_stats:
      variables["batch_stats"] = jax.device_get(state.batch_stats)
    return variables

  def init_from(self, state: Any, variables: dict) -> Any:
    """The state with the generator's variables replaced (``config.init_from``)."""
    params = variables["params"]
    return state.replace(params=params, opt_state=self.tx.init(params),
                         batch_stats=variables.get("batch_stats", state.batch_stats),
                         ema_params=jax.tree.map(jnp.copy, params) if self.ema_decay else {})


class PSNRTask(Task):
  """PSNR-oriented training of ``config.model`` with a pixel loss (``config.loss``)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = model_from_config(config)
    self.multiscale = bool(config.get("train_scales"))
    train_model = self.model
    if self.multiscale:
      # VDSR-style: one model for several scales, trained on bicubic-upscaled HR-size input
      # (the pipeline draws one scale per step); evaluated at config.scale with the bicubic
      # upscale inside. Same parameters either way.
      if not hasattr(self.model, "upsample"):
        raise InputError(f"config.train_scales: {config.model} is not a pre-upsampling model")
      train_model = self.model.clone(upsample=False)
    self.train_model = train_model
    self.tx, self.schedule = make_optimizer(config)
    self.ema_decay = float(config.get("ema_decay", 0.0))
    self._step = make_train_step(train_model, self.tx, self.schedule,
                                 loss=config.get("loss", "l1"), ema_decay=self.ema_decay,
                                 compute_dtype=config.get("compute_dtype", "float32"))

  def init_state(self, *, key):
    p = int(self.config.hr_patch_size if self.multiscale else self.config.lr_patch_size)
    return create_train_state(self.train_model, self.tx, key=key,
                              lr_shape=(1, p, p, getattr(self.model, "channels", 3)),
                              ema=self.ema_decay > 0)

  def train_step(self, state, batch):
    return self._step(state, batch)


def make_task(config: ml_collections.ConfigDict) -> Task:
  """``config.task``: 'psnr' (default) or 'gan'."""
  kind = config.get("task", "psnr")
  if kind == "psnr":
    return PSNRTask(config)
  if kind == "gan":
    from jaxsr import gan_lib  # pylint: disable=g-import-not-at-top
    return gan_lib.GANTask(config)
  raise InputError(f"config.task: unknown value {kind!r}; expected psnr or gan")


# ----------------------------------------------------------------------------- loop helpers


_IDENTITY_FIELDS = ("model", "scale", "model_overrides")


def _identity(config) -> dict:
  return {k: (dict(config.get(k) or {}) if k == "model_overrides" else config.get(k))
          for k in _IDENTITY_FIELDS}


def _check_resume(meta: dict, config, directory) -> None:
  saved = meta.get("identity")
  want = json.loads(json.dumps(_identity(config)))
  if saved is not None and saved != want:
    diff = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {want.get(k)!r}"
                     for k in _IDENTITY_FIELDS if saved.get(k) != want.get(k))
    raise InputError(f"{directory}: refusing to resume a different model ({diff}); "
                     "use a new --workdir")


def _eval_names(config) -> list[str]:
  return [d.strip() for d in str(config.get("eval_datasets", "") or "").split(",") if d.strip()]


def evaluate_model(model, variables, config, *, data_dir=None) -> list[dict]:
  """Evaluates on ``config.eval_datasets`` with ``config.eval_protocol`` (eval.py entries)."""
  from jaxsr.data import load_eval_set  # pylint: disable=g-import-not-at-top

  names = _eval_names(config)
  upscale, default_protocol = eval_lib.model_upscaler(model, variables, scale=int(config.scale))
  protocol = config.get("eval_protocol") or default_protocol
  results = []
  for spec in names:
    name, images = load_eval_set(spec, data_dir=data_dir or config.get("eval_data_dir"))
    results.append(eval_lib.evaluate(upscale, images, scale=int(config.scale), protocol=protocol,
                                     dataset=name))
  return results


def _train_iterator(config, *, start_step: int, channels: int):
  from jaxsr.data import pipeline  # pylint: disable=g-import-not-at-top

  kwargs = dict(y_channel=channels == 1, hr_rescales=tuple(config.get("hr_rescales", (1.0,))))
  if config.get("train_scales"):
    kwargs.update(scale=tuple(int(s) for s in config.train_scales),
                  hr_patch_size=int(config.hr_patch_size))
  else:
    kwargs.update(scale=int(config.scale), lr_patch_size=int(config.lr_patch_size))
  return pipeline.train_dataset(
      config.dataset, batch_size=int(config.batch_size), seed=int(config.seed), start_step=start_step,
      num_steps=int(config.num_train_steps) - start_step,
      data_dir=config.get("data_dir"), manual_dir=config.get("manual_dir"), **kwargs)


def step_on_stack(train_step: Callable) -> Callable:
  """``(state, batch) -> out`` as ``(state, stack, j) -> out`` on batch ``j`` of a stack
  ``[k, B, ...]`` (``j`` an int32 array, so one compilation serves every ``j``)."""

  def stacked_step(state, stack, j):
    batch = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, j, 0, keepdims=False), stack)
    return train_step(state, batch)

  return stacked_step


def stack_batches(batches: Iterable[dict[str, np.ndarray]], k: int):
  """Yields ``(stack, count)``: ``count`` <= k consecutive batches stacked as ``[k, B, ...]``
  (the last stack padded with copies of its last batch, so every stack has one shape)."""
  it = iter(batches)
  while group := list(itertools.islice(it, k)):
    count = len(group)
    group += group[-1:] * (k - count)
    yield {key: np.stack([b[key] for b in group]) for key in group[0]}, count


def _sample_images(model, variables, config, *, data_dir=None) -> dict[str, np.ndarray]:
  """LR (nearest) | bicubic | SR | HR of the first eval image, float ``[1, H, 4W, 3]``."""
  from jaxsr.data import load_eval_set  # pylint: disable=g-import-not-at-top

  names = _eval_names(config)
  if not names:
    return {}
  _, images = load_eval_set(names[0], data_dir=data_dir or config.get("eval_data_dir"))
  channels = getattr(model, "channels", 3)
  s = int(config.scale)
  pair = eval_lib.degrade(images[0], scale=s, protocol="y" if channels == 1 else "rgb")
  sr = np.clip(eval_lib.model_upscaler(model, variables, scale=s)[0](pair.lr[None])[0], 0, 1)
  bicubic = np.clip(eval_lib.bicubic(s)(pair.lr[None])[0], 0, 1)
  lr_up = np.repeat(np.repeat(pair.lr, s, 0), s, 1)
  panel = np.concatenate([lr_up, bicubic, sr, pair.hr.astype(np.float32) / 255.0], axis=1)
  if panel.shape[-1] == 1:
    panel = np.repeat(panel, 3, -1)
  return {"lr_bicubic_sr_hr": panel[None].astype(np.float32)}


# ----------------------------------------------------------------------------- the loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming if possible) and returns the summary dict."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  from clu import parameter_overview
  from clu import periodic_actions

  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  started = time.time()  # eval_history's elapsed_s: wall time since this process began the run
  is_main = jax.process_index() == 0
  writer = metric_writers.create_default_writer(str(workdir), just_logging=not is_main)
  mesh = parallel.make_mesh()
  task = make_task(config)
  model = task.model
  channels = getattr(model, "channels", 3)
  num_steps = int(config.num_train_steps)
  if int(config.batch_size) % mesh.size:
    raise InputError(f"config.batch_size: {config.batch_size} does not divide over "
                     f"{mesh.size} devices")

  state = task.init_state(key=jax.random.key(int(config.seed)))
  manager = ckpt_lib.CheckpointManager(workdir / "checkpoints",
                                       max_to_keep=int(config.get("keep_checkpoints", 3)))
  for step0 in sorted(manager.all_steps(), reverse=True):
    try:  # refuse a different model before trying to restore into the wrong shapes
      _check_resume(manager.read_meta(step0), config, manager.directory)
      break
    except InputError:
      raise
    except Exception:  # pylint: disable=broad-except
      continue  # an unreadable step; restore() below reports it
  restored = manager.restore(flax.serialization.to_state_dict(state))
  if restored is not None:
    step0, saved, meta = restored
    _check_resume(meta, config, manager.directory)
    state = flax.serialization.from_state_dict(state, saved)
    _log.info("resumed from step %d in %s", step0, manager.directory)
  elif config.get("init_from"):
    _, variables, meta = ckpt_lib.load_model(config.init_from, use_ema=True)
    state = task.init_from(state, variables)
    _log.info("initialised parameters from %s (step %s)", config.init_from, meta.get("step"))
  start_step = int(jax.device_get(state.step))
  if is_main and start_step == 0:
    parameter_overview.log_parameter_overview(task.eval_variables(state)["params"])
    writer.write_hparams({k: v for k, v in config.to_dict().items()
                          if isinstance(v, (int, float, str, bool))})
  state = parallel.replicate(state, mesh)
  state_sharding = jax.tree.map(lambda _: parallel.replicated(mesh), state)
  # Batches travel to the devices in stacks of k (one transfer per k steps: on a 2-core CPU a
  # transfer per step cost ~10% of ESPCN's step rate); the step picks batch j of the stack.
  per_transfer = int(config.get("batches_per_transfer", 1))
  if per_transfer < 1:
    raise InputError(f"config.batches_per_transfer: expected an integer >= 1, got {per_transfer}")
  train_step = jax.jit(step_on_stack(task.train_step), donate_argnums=0,
                       out_shardings=(state_sharding, parallel.replicated(mesh)))
  stack_index = [parallel.replicate(np.int32(j), mesh) for j in range(per_transfer)]

  meta = {"identity": _identity(config), "config": json.loads(config.to_json_best_effort()),
          # what checkpoint.load_model rebuilds the generator from (eval.py --checkpoint,
          # init_from, jaxsr upscale)
          "model": {"name": config.model, "scale": int(config.scale),
                    "overrides": json.loads(json.dumps(dict(config.get("model_overrides") or {})))}}
  log_every = int(config.get("log_every_steps", 100))
  ckpt_every = int(config.get("checkpoint_every_steps", 1000))
  eval_every = int(config.get("eval_every_steps", 0) or 0)
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
    results = evaluate_model(model, variables, config)
    scalars = {f"eval/{r['dataset']}_x{r['scale']}_{k}": r[k] for r in results for k in ("psnr", "ssim")}
    if scalars:
      writer.write_scalars(step, scalars)
      _log.info("step %d eval: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
      if is_main:  # appended at once, so a killed run keeps its curve
        with open(workdir / "eval_history.jsonl", "a") as f:
          f.write(json.dumps({"step": step, "time": time.time(),
                              "elapsed_s": time.time() - started, **scalars}) + "\n")
    images = _sample_images(model, variables, config)
    if images:
      writer.write_images(step, images)
      if is_main:
        panel = np.round(images["lr_bicubic_sr_hr"][0] * 255).astype(np.uint8)
        Image.fromarray(panel).save(workdir / "comparison.png")
    return results

  def save(step: int) -> None:
    flush(step)
    manager.save(step, flax.serialization.to_state_dict(state), meta=meta)

  data = _train_iterator(config, start_step=start_step, channels=channels) if start_step < num_steps else iter(())
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
      from jaxsr.data import load_eval_set  # pylint: disable=g-import-not-at-top
      baseline = [eval_lib.evaluate(eval_lib.bicubic(r["scale"]),
                                    load_eval_set(spec, data_dir=config.get("eval_data_dir"))[1],
                                    scale=r["scale"], protocol=r["protocol"], dataset=r["dataset"])
                  for spec, r in zip(_eval_names(config), results)]
      print("\n".join(eval_lib.format_table(baseline, model="bicubic").splitlines()[1:]))
      print(f"comparison image (LR | bicubic | {config.model} | HR): {workdir / 'comparison.png'}")
  writer.flush()
  manager.close()
  return summary

