"""Optimizers and learning-rate schedules built from a training config.

Contract:
  * Every function reads its settings as attributes of an ``ml_collections.ConfigDict``
    (the fields of ``jaxsr.recipes.common.base_config``); the recipes are the only place that
    holds their defaults, so a config without a field the chosen option needs fails.
  * ``make_schedule(config)`` is an ``optax.Schedule``: step (int) -> learning rate (float).
  * ``make_optimizer(config)`` returns ``(tx, schedule)``: the optax transformation (gradient
    clipping, weight decay and Adam or SGD, in that order) and the schedule it follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsr.errors import InputError

if TYPE_CHECKING:
  import ml_collections

__all__ = ["adjustable_gradient_clipping", "make_optimizer", "make_schedule"]

_SCHEDULES = ("constant", "multistep", "step", "cosine", "cosine_restarts")
_OPTIMIZERS = ("adam", "sgd")


def make_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """The learning-rate schedule named by ``config.schedule``.

  Kinds:
    'constant': ``learning_rate`` throughout.
    'multistep': multiplied by ``lr_decay_factor`` at each step of ``lr_boundaries`` (EDSR's
      halving).
    'step': multiplied by ``lr_decay_factor`` every ``lr_decay_every`` steps (VDSR).
    'cosine': cosine decay to ``lr_end`` over ``num_train_steps``.
    'cosine_restarts': cosine decays to ``lr_end`` over each period of ``lr_periods``,
      restarting at ``learning_rate`` (ESRGAN's PSNR stage).
  ``warmup_steps`` > 0 puts a linear warm-up from 0 in front of any of them.

  Raises:
    InputError: an unknown ``config.schedule``.
  """
  lr = float(config.learning_rate)
  kind = config.schedule
  if kind == "constant":
    schedule = optax.constant_schedule(lr)
  elif kind == "multistep":
    schedule = optax.piecewise_constant_schedule(
        lr, {int(b): float(config.lr_decay_factor) for b in config.lr_boundaries})
  elif kind == "step":
    every = int(config.lr_decay_every)
    schedule = optax.exponential_decay(lr, every, float(config.lr_decay_factor), staircase=True)
  elif kind == "cosine":
    alpha = float(config.lr_end) / lr if lr else 0.0
    schedule = optax.cosine_decay_schedule(lr, max(1, int(config.num_train_steps)), alpha=alpha)
  elif kind == "cosine_restarts":
    periods = [int(p) for p in config.lr_periods]
    alpha = float(config.lr_end) / lr if lr else 0.0
    pieces = [optax.cosine_decay_schedule(lr, p, alpha=alpha) for p in periods]
    schedule = optax.join_schedules(pieces, list(np.cumsum(periods)[:-1]))
  else:
    raise InputError(f"config.schedule: unknown value {kind!r}; expected one of "
                     f"{', '.join(_SCHEDULES)}")
  warmup = int(config.warmup_steps)
  if warmup:
    schedule = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), schedule], [warmup])
  return schedule


def adjustable_gradient_clipping(theta: float,
                                 schedule: optax.Schedule) -> optax.GradientTransformation:
  """VDSR's adjustable gradient clipping: each gradient entry clipped to ``+-theta / lr``.

  ``lr`` is ``schedule`` at the transformation's own step count, so with SGD every update
  entry stays within ``theta`` whatever the learning rate.
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


def make_optimizer(
    config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimizer ``config.optimizer`` ('adam' or 'sgd') following ``make_schedule(config)``.

  The chain: adjustable clipping (``grad_clip_theta`` > 0), global-norm clipping
  (``grad_clip_norm`` > 0), decoupled weight decay (``weight_decay`` > 0), then Adam
  (``adam_b1``, ``adam_b2``, ``adam_eps``) or SGD (``momentum``).

  Returns:
    ``(tx, schedule)``.

  Raises:
    InputError: an unknown ``config.optimizer`` or ``config.schedule``.
  """
  schedule = make_schedule(config)
  chain = []
  if config.grad_clip_theta:
    chain.append(adjustable_gradient_clipping(float(config.grad_clip_theta), schedule))
  if config.grad_clip_norm:
    chain.append(optax.clip_by_global_norm(float(config.grad_clip_norm)))
  if config.weight_decay:
    chain.append(optax.add_decayed_weights(float(config.weight_decay)))
  kind = config.optimizer
  if kind == "adam":
    chain.append(optax.adam(schedule, b1=float(config.adam_b1), b2=float(config.adam_b2),
                            eps=float(config.adam_eps)))
  elif kind == "sgd":
    chain.append(optax.sgd(schedule, momentum=float(config.momentum)))
  else:
    raise InputError(f"config.optimizer: unknown value {kind!r}; expected one of "
                     f"{', '.join(_OPTIMIZERS)}")
  return optax.chain(*chain), schedule
