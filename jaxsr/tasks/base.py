"""What every training task shares: the generator's state, the update, and the Task interface.

Contract:
  * ``TrainState`` is a pytree (a ``flax.struct`` dataclass): ``step`` (int32 scalar),
    ``params``, ``opt_state``, ``batch_stats`` (``{}`` for models without batch norm) and
    ``ema_params`` (``{}`` when the EMA is off). These are the generator's; checkpoints keep
    them under these top-level names, which ``jaxsr.checkpoint.load_model`` reads.
  * ``apply_gradients`` is the one place where a step applies the optimizer update and the
    EMA to the generator; every task's step ends with it.
  * A ``Task`` is what ``jaxsr.train_lib.train_and_evaluate`` trains: it builds the state,
    the pure jit-able step ``(state, batch) -> (state, scalar metrics)`` on batches
    ``{'lr': [B, p, p, C], 'hr': [B, s*p, s*p, C]}`` float32 in [0, 1], the variables to
    evaluate with, and the state's checkpoint form (``state_dict`` / ``restore_state``).
  * ``Task.needs_lr`` says whether the step reads the pipeline's bicubic ``'lr'``; a task that
    makes its own LR from the HR crop on device sets it False, and then gets batches ``{'hr'}``
    (the same HR crops; ``jaxsr.data.pipeline``'s ``with_lr``), sparing the host that resize.
  * Tasks read the config by attribute; ``config_fields_required`` turns a field missing from
    the config into a one-line ``InputError``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, TYPE_CHECKING

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsr import models
from jaxsr.errors import InputError

if TYPE_CHECKING:  # annotations only: importing the package needs no ml_collections
  import ml_collections

__all__ = [
    "Task", "TrainState", "apply_gradients", "config_fields_required", "create_train_state",
    "model_from_config",
]


@flax.struct.dataclass
class TrainState:
  """The generator's training state (see the module docstring)."""
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any
  ema_params: Any


@contextlib.contextmanager
def config_fields_required() -> Iterator[None]:
  """Reports a config field read inside the block but absent as a one-line ``InputError``.

  ``ml_collections.ConfigDict`` raises ``AttributeError`` (from a ``KeyError``) for a missing
  attribute; other ``AttributeError``s pass through unchanged.
  """
  try:
    yield
  except AttributeError as e:
    cause = e.args[0] if len(e.args) == 1 else None
    if not isinstance(cause, KeyError):
      raise
    field = str(cause.args[0]).splitlines()[0].strip("'\"") if cause.args else "?"
    raise InputError(f"config.{field}: missing from the config; every field and its default is "
                     "set by jaxsr.recipes.common (base_config, add_gan_fields)") from None


def model_from_config(config: ml_collections.ConfigDict) -> nn.Module:
  """The Flax module ``config.model`` at ``config.scale`` with ``config.model_overrides``.

  Raises:
    InputError: an unknown model or override.
  """
  try:
    return models.get_model(config.model, scale=int(config.scale),
                            **dict(config.model_overrides or {}))
  except InputError as e:
    if e.field == "overrides":  # a key of model_overrides that is not a field of the model
      raise InputError(e.message, field="config.model_overrides") from None
    raise InputError(e.message, field="config.model") from None
  except (ValueError, TypeError) as e:
    raise InputError(f"config.model: {e}") from None


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, *, key: jax.Array,
                       lr_shape: tuple[int, ...], ema: bool) -> TrainState:
  """Initialises the parameters (on the default device) from a zero input of ``lr_shape``."""
  variables = model.init(key, jnp.zeros(lr_shape, jnp.float32))
  params = variables["params"]
  return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params),
                    batch_stats=variables.get("batch_stats", {}),
                    ema_params=jax.tree.map(jnp.copy, params) if ema else {})


def apply_gradients(state: TrainState, grads: Any, *, tx: optax.GradientTransformation,
                    batch_stats: Any, ema_decay: float = 0.0) -> TrainState:
  """The generator after one step: ``tx`` applied to ``grads``, the EMA, ``step + 1``.

  Args:
    state: a ``TrainState`` or a subclass (its other fields are kept).
    grads: the gradient of the loss w.r.t. ``state.params``.
    tx: the generator's optimizer (``state.opt_state`` is its state).
    batch_stats: the generator's new batch-norm statistics.
    ema_decay: ``ema_params <- d * ema_params + (1 - d) * params`` with the new ``params``;
      0 leaves ``ema_params`` as it is.
  """
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = state.ema_params
  if ema_decay:
    ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, params)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       batch_stats=batch_stats, ema_params=ema)


class Task:
  """What the loop trains: the generator ``model``, its state, step and evaluation weights.

  Subclasses set ``model`` (the generator), ``tx`` (its optimizer) and ``ema_decay`` and
  implement ``init_state`` and ``train_step``. The state is a ``TrainState`` or a subclass.
  ``needs_lr`` (default True): whether ``train_step`` reads ``batch['lr']``; False lets the
  training loop ask the input pipeline for HR crops only.
  """

  model: nn.Module
  tx: optax.GradientTransformation
  ema_decay: float = 0.0
  needs_lr: bool = True

  def init_state(self, *, key: jax.Array) -> TrainState:
    """A fresh state (host arrays on the default device) seeded by ``key``."""
    raise NotImplementedError

  def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """Pure and jit-able: ``(state, batch) -> (state, scalar metrics)`` with a ``loss``."""
    raise NotImplementedError

  def eval_variables(self, state: TrainState) -> dict:
    """Host-side generator variables to evaluate and sample with (the EMA when there is one)."""
    params = state.ema_params if state.ema_params else state.params
    variables = {"params": jax.device_get(params)}
    if state.batch_stats:
      variables["batch_stats"] = jax.device_get(state.batch_stats)
    return variables

  def init_from(self, state: TrainState, variables: dict) -> TrainState:
    """The state with the generator's variables replaced (``config.init_from``).

    The optimizer state restarts; the EMA (when on) starts at the new parameters.
    """
    params = variables["params"]
    return state.replace(params=params, opt_state=self.tx.init(params),
                         batch_stats=variables.get("batch_stats", state.batch_stats),
                         ema_params=jax.tree.map(jnp.copy, params) if self.ema_decay else {})

  def state_dict(self, state: TrainState) -> dict:
    """The nested dict of arrays a checkpoint stores for ``state``."""
    return flax.serialization.to_state_dict(state)

  def restore_state(self, target: TrainState, saved: dict) -> TrainState:
    """``target`` with the values of ``saved`` (a ``state_dict``) filled in."""
    return flax.serialization.from_state_dict(target, saved)
