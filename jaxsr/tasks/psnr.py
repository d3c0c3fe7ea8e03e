"""PSNR-oriented training (``config.task = 'psnr'``): one model, one pixel loss.

Contract: ``make_train_step`` returns a pure ``(TrainState, batch) -> (TrainState, metrics)``
with batches ``{'lr': [B, p, p, C], 'hr': [B, s*p, s*p, C]}`` float32 in [0, 1] and scalar
metrics ``loss``, ``grad_norm``, ``learning_rate``. Parameters, optimizer state and the loss
stay float32 whatever ``compute_dtype`` the forward and backward passes use.
"""

from __future__ import annotations

from typing import Callable, TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsr import losses
from jaxsr import optim
from jaxsr.errors import InputError
from jaxsr.tasks import base

if TYPE_CHECKING:  # annotations only: importing the package needs no ml_collections
  import ml_collections

__all__ = ["PSNRTask", "make_train_step"]


def make_train_step(
    model: nn.Module, tx: optax.GradientTransformation, schedule: optax.Schedule, *,
    loss: str = "l1", ema_decay: float = 0.0, compute_dtype: str = "float32",
) -> Callable[[base.TrainState, dict], tuple[base.TrainState, dict]]:
  """The pure train step ``(state, batch) -> (state, metrics)``.

  Args:
    model: the Flax module; called with ``train=True``.
    tx: its optax optimizer.
    schedule: the learning-rate schedule ``tx`` follows (logged as ``learning_rate``).
    loss: pixel loss name (``jaxsr.losses.pixel_loss``).
    ema_decay: EMA of the parameters (0 disables; otherwise needs ``state.ema_params``).
    compute_dtype: 'float32', or 'bfloat16' to run the forward and backward passes in bf16
      (for GPU/TPU).

  Returns:
    The step. Metrics: ``loss``, ``grad_norm``, ``learning_rate`` (scalars).
  """
  loss_fn = losses.pixel_loss(loss)
  dtype = jnp.dtype(compute_dtype)

  def step(state: base.TrainState, batch: dict) -> tuple[base.TrainState, dict]:
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
    new_state = base.apply_gradients(state, grads, tx=tx, batch_stats=new_stats,
                                     ema_decay=ema_decay)
    metrics = {"loss": value, "grad_norm": optax.tree.norm(grads),
               "learning_rate": jnp.asarray(schedule(state.step), jnp.float32)}
    return new_state, metrics

  return step


class PSNRTask(base.Task):
  """Trains ``config.model`` with the pixel loss ``config.loss``.

  With ``config.train_scales`` non-empty (VDSR), one pre-upsampling model learns several
  scales on HR-size patches of side ``config.hr_patch_size`` (the pipeline draws one scale per
  step and gives the bicubic-upscaled LR); it is evaluated at ``config.scale`` with the bicubic
  upscale inside the model. The parameters are the same either way.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = base.model_from_config(config)
    self.multiscale = bool(config.train_scales)
    train_model = self.model
    if self.multiscale:
      if not hasattr(self.model, "upsample"):
        raise InputError(f"config.train_scales: {config.model} is not a pre-upsampling model")
      train_model = self.model.clone(upsample=False)
    self.train_model = train_model
    self.tx, self.schedule = optim.make_optimizer(config)
    self.ema_decay = float(config.ema_decay)
    self.patch_size = int(config.hr_patch_size if self.multiscale else config.lr_patch_size)
    try:
      self._step = make_train_step(train_model, self.tx, self.schedule, loss=config.loss,
                                   ema_decay=self.ema_decay, compute_dtype=config.compute_dtype)
    except (ValueError, TypeError) as e:
      raise InputError(f"config.loss/compute_dtype: {e}") from None

  def init_state(self, *, key: jax.Array) -> base.TrainState:
    p = self.patch_size
    return base.create_train_state(self.train_model, self.tx, key=key,
                                   lr_shape=(1, p, p, getattr(self.model, "channels", 3)),
                                   ema=self.ema_decay > 0)

  def train_step(self, state: base.TrainState, batch: dict) -> tuple[base.TrainState, dict]:
    return self._step(state, batch)
