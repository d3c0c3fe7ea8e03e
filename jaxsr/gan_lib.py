"""Perceptual and adversarial (SRGAN / ESRGAN) training: the two-player ``Task`` for train_lib.

``train_lib.make_task`` returns :class:`GANTask` when ``config.task == 'gan'``; the training loop
(resume, checkpoints, logging, evaluation) is train_lib's, unchanged.

State (:class:`GANState`, a pytree): the generator under exactly the names of
``train_lib.TrainState`` — ``step``, ``params``, ``opt_state``, ``batch_stats``, ``ema_params`` —
so ``jaxsr.checkpoint.load_model``, ``eval.py --checkpoint`` and ``config.init_from`` read GAN
checkpoints as generator checkpoints; the discriminator under ``d_params``, ``d_opt_state``,
``d_batch_stats``; the frozen VGG19 weights under ``vgg`` (not written to checkpoints: they are
loaded from ``config.vgg_weights`` / ``$JAXSR_VGG19`` at start-up).

The step (:func:`make_gan_step`) is one pure function ``(state, batch) -> (state, metrics)``: one
generator forward ``sr = G(lr)``; one discriminator pass (train mode, batch statistics) over the
HR batch and one over the SR batch; the generator loss

  ``pixel_weight * pixel(sr, hr) + perceptual_weight * perceptual(sr, hr)
    + style_weight * style(sr, hr) + adversarial_weight * gan_g_loss(kind, D(hr), D(sr))``

and the discriminator loss ``gan_d_loss(kind, D(hr), D(stop_gradient(sr)))`` are both
differentiated with the discriminator's parameters *before* this step's update (as BasicSR's
alternating G-then-D update with ``output.detach()`` does), then both optimizers step. The
discriminator's BN running statistics are updated by its two passes (HR then SR). No Python
branches on data; everything is jit-compiled once.

Config fields (beyond ``configs/common.py``):
  * ``d_model`` (a discriminator registry name), ``d_model_overrides``.
  * ``gan_type``: 'vanilla' | 'lsgan' | 'hinge' | 'ragan' (``jaxsr.losses.gan_d_loss``).
  * ``loss`` (pixel criterion) with ``pixel_weight``; ``perceptual_weight``,
    ``perceptual_layers`` (``{layer: weight}``, e.g. ``{'conv5_4': 1.0}``), ``perceptual_criterion``
    ('l1' | 'l2'); ``style_weight``, ``style_layers``; ``adversarial_weight``.
  * ``vgg_weights``: a ``.npz`` from ``python -m jaxsr.convert.vgg`` (or a torchvision ``.pth`` /
    Keras ``.h5``); unset: ``$JAXSR_VGG19``. ``'random'`` builds randomly initialised VGG19
    weights: for tests only, meaningless for real training.
  * Generator optimizer: the usual fields (``optimizer``, ``learning_rate``, ``schedule``,
    ``lr_boundaries``, ``adam_b1`` ...). Discriminator optimizer: the same fields with
    ``d_optimizer`` (a ConfigDict) overriding any of them, e.g. ``d_optimizer.learning_rate``.
  * ``ema_decay``: EMA of the generator (0 disables; evaluation then uses ``params``).

Metrics per step: ``loss`` (= ``g_loss``, the weighted generator total), ``g_pixel``,
``g_perceptual``, ``g_style``, ``g_adversarial`` (unweighted terms), ``d_loss``, ``d_real`` and
``d_fake`` (mean ``sigmoid`` of the raw discriminator logits on HR / SR: the probability of
"real" for vanilla; for the other kinds a monotone summary of the logits), ``d_real_logit``,
``d_fake_logit`` (mean raw logits), ``g_grad_norm``, ``d_grad_norm``, ``learning_rate``,
``d_learning_rate``.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxsr import losses
from jaxsr import train_lib
from jaxsr.errors import InputError
from jaxsr.models import vgg as vgg_lib

__all__ = ["GANState", "GANTask", "d_optimizer_config", "load_vgg", "make_gan_step"]

_log = logging.getLogger(__name__)


@flax.struct.dataclass
class GANState:
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any
  ema_params: Any
  d_params: Any
  d_opt_state: Any
  d_batch_stats: Any
  vgg: Any  # frozen VGG19 pytree ({} when unused); not serialised


_SAVED_FIELDS = ("step", "params", "opt_state", "batch_stats", "ema_params", "d_params",
                 "d_opt_state", "d_batch_stats")


def _to_state_dict(state: GANState) -> dict:
  return {f: flax.serialization.to_state_dict(getattr(state, f)) for f in _SAVED_FIELDS}


def _from_state_dict(target: GANState, saved: dict) -> GANState:
  missing = [f for f in _SAVED_FIELDS if f not in saved]
  if missing:
    raise ValueError(f"GAN checkpoint lacks {missing}")
  return target.replace(**{f: flax.serialization.from_state_dict(getattr(target, f), saved[f])
                           for f in _SAVED_FIELDS})


flax.serialization.register_serialization_state(GANState, _to_state_dict, _from_state_dict,
                                                override=True)


def d_optimizer_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The generator's optimizer fields with ``config.d_optimizer`` overriding them."""
  d_config = ml_collections.ConfigDict(config.to_dict())
  overrides = config.get("d_optimizer") or {}
  for key, value in dict(overrides).items():
    d_config[key] = value
  return d_config


def _layer_weights(field: Any, *, before_activation: bool) -> dict[str, float]:
  weights = dict(field or {})
  try:
    return {vgg_lib.resolve_layer(k, before_activation=before_activation): float(v)
            for k, v in weights.items()}
  except ValueError as e:
    raise InputError(f"config.perceptual_layers/style_layers: {e}") from None


def load_vgg(config: ml_collections.ConfigDict, *, layers: list[str]) -> dict:
  """The frozen VGG19 pytree for ``layers`` from ``config.vgg_weights`` / ``$JAXSR_VGG19``.

  ``'random'`` returns a randomly initialised VGG19 (seeded by ``config.seed``): for tests only.
  """
  from jaxsr.convert import vgg as convert_vgg  # pylint: disable=g-import-not-at-top

  deepest = max(layers, key=lambda n: vgg_lib.TORCHVISION_INDEX[n])
  path = convert_vgg.resolve_vgg_path(config.get("vgg_weights"))
  if path == "random":
    _log.warning("config.vgg_weights='random': randomly initialised VGG19 (tests only; the "
                 "perceptual loss is meaningless for real training)")
    variables = jax.jit(vgg_lib.VGG19(layers=(deepest,), use_input_norm=False).init)(
        jax.random.key(int(config.seed) + 7), jnp.zeros((1, 32, 32, 3), jnp.float32))
    return {"params": jax.device_get(variables["params"]),
            "input_mean": np.asarray(vgg_lib.IMAGENET_MEAN, np.float32),
            "input_std": np.asarray(vgg_lib.IMAGENET_STD, np.float32)}
  vgg = convert_vgg.load_vgg19(path, up_to=deepest)
  _log.info("VGG19 weights from %s (up to %s)", path, deepest)
  return vgg


def make_gan_step(generator: nn.Module, discriminator: nn.Module,
                  g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                  g_schedule: optax.Schedule, d_schedule: optax.Schedule, *,
                  gan_type: str = "ragan", pixel: str = "l1", pixel_weight: float = 1e-2,
                  perceptual_weight: float = 1.0,
                  perceptual_layers: dict[str, float] | None = None,
                  perceptual_criterion: str = "l1", style_weight: float = 0.0,
                  style_layers: dict[str, float] | None = None,
                  adversarial_weight: float = 5e-3,
                  ema_decay: float = 0.0) -> Callable[[GANState, dict], tuple[GANState, dict]]:
  """The pure GAN train step ``(state, batch) -> (state, metrics)`` (see the module docstring).

  Layer names must be full (``'conv5_4'``/``'relu5_4'``). Weights of 0 drop a term (it is
  logged as 0).
  """
  if gan_type not in losses.GAN_KINDS:
    raise InputError(f"config.gan_type: unknown value {gan_type!r}; expected one of "
                     f"{losses.GAN_KINDS}")
  try:
    pixel_fn = losses.pixel_loss(pixel)
  except ValueError as e:
    raise InputError(f"config.loss: {e}") from None
  perceptual_layers = dict(perceptual_layers or {})
  style_layers = dict(style_layers or {})

  def d_apply(d_params, d_stats, x):
    logits, updates = discriminator.apply({"params": d_params, "batch_stats": d_stats}, x,
                                          train=True, mutable=["batch_stats"])
    return logits.astype(jnp.float32), updates["batch_stats"]

  def step(state: GANState, batch: dict) -> tuple[GANState, dict]:
    lr_img, hr = batch["lr"], batch["hr"]

    def generate(params):
      variables = {"params": params}
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
        sr, updates = generator.apply(variables, lr_img, train=True, mutable=["batch_stats"])
        return sr.astype(jnp.float32), updates["batch_stats"]
      return generator.apply(variables, lr_img, train=True).astype(jnp.float32), state.batch_stats

    sr, g_vjp, g_stats = jax.vjp(generate, state.params, has_aux=True)

    def discriminate(d_params, fake):
      real_logits, stats = d_apply(d_params, state.d_batch_stats, hr)
      fake_logits, stats = d_apply(d_params, stats, fake)
      return (real_logits, fake_logits), stats

    (real_logits, fake_logits), d_vjp, d_stats = jax.vjp(discriminate, state.d_params, sr,
                                                         has_aux=True)

    # Discriminator: gradient w.r.t. its parameters only (the SR input is a constant for it).
    d_loss, d_cot = jax.value_and_grad(
        lambda r, f: losses.gan_d_loss(gan_type, r, f), argnums=(0, 1))(real_logits, fake_logits)
    d_grads, _ = d_vjp(d_cot)

    # Generator: d(total)/d(sr) from the pixel, feature and adversarial terms, then through G.
    def g_terms(sr_img, real_l, fake_l):
      zero = jnp.zeros([], jnp.float32)
      terms = {
          "g_pixel": pixel_fn(sr_img, hr) if pixel_weight else zero,
          "g_perceptual": (losses.perceptual_loss(
              state.vgg, sr_img, hr, layer_weights=perceptual_layers,
              criterion=perceptual_criterion) if perceptual_weight else zero),
          "g_style": (losses.style_loss(state.vgg, sr_img, hr, layer_weights=style_layers,
                                        criterion=perceptual_criterion)
                      if style_weight else zero),
          "g_adversarial": losses.gan_g_loss(gan_type, jax.lax.stop_gradient(real_l), fake_l),
      }
      total = (pixel_weight * terms["g_pixel"] + perceptual_weight * terms["g_perceptual"]
               + style_weight * terms["g_style"] + adversarial_weight * terms["g_adversarial"])
      return total, terms

    (g_loss, terms), (dsr_direct, dfake) = jax.value_and_grad(
        g_terms, argnums=(0, 2), has_aux=True)(sr, real_logits, fake_logits)
    _, dsr_adv = d_vjp((jnp.zeros_like(real_logits), dfake))
    (g_grads,) = g_vjp(dsr_direct + dsr_adv)

    g_updates, opt_state = g_tx.update(g_grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, g_updates)
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)
    ema = state.ema_params
    if ema_decay:
      ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, params)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              batch_stats=g_stats, ema_params=ema, d_params=d_params,
                              d_opt_state=d_opt_state, d_batch_stats=d_stats)
    metrics = {
        "loss": g_loss, "g_loss": g_loss, **terms, "d_loss": d_loss,
        "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
        "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        "d_real_logit": jnp.mean(real_logits), "d_fake_logit": jnp.mean(fake_logits),
        "g_grad_norm": optax.tree.norm(g_grads), "d_grad_norm": optax.tree.norm(d_grads),
        "learning_rate": jnp.asarray(g_schedule(state.step), jnp.float32),
        "d_learning_rate": jnp.asarray(d_schedule(state.step), jnp.float32),
    }
    return new_state, metrics

  return step


class GANTask(train_lib.Task):
  """SRGAN/ESRGAN training of ``config.model`` against ``config.d_model`` (see module doc)."""

  def __init__(self, config: ml_collections.ConfigDict):
    from jaxsr import models  # pylint: disable=g-import-not-at-top

    self.config = config
    self.model = train_lib.model_from_config(config)
    d_name = config.get("d_model") or "esrgan_discriminator"
    try:
      self.discriminator = models.get_model(
          d_name, scale=None, **dict(config.get("d_model_overrides") or {}))
    except (ValueError, TypeError) as e:
      raise InputError(f"config.d_model: {e}") from None
    self.tx, self.g_schedule = train_lib.make_optimizer(config)  # the generator's (Task.tx)
    self.d_tx, self.d_schedule = train_lib.make_optimizer(d_optimizer_config(config))
    self.ema_decay = float(config.get("ema_decay", 0.0))
    self.perceptual_weight = float(config.get("perceptual_weight", 0.0))
    self.style_weight = float(config.get("style_weight", 0.0))
    self.perceptual_layers = _layer_weights(config.get("perceptual_layers"),
                                            before_activation=True)
    self.style_layers = _layer_weights(config.get("style_layers"), before_activation=True)
    if self.perceptual_weight and not self.perceptual_layers:
      self.perceptual_layers = {"conv5_4": 1.0}
    if self.style_weight and not self.style_layers:
      raise InputError("config.style_layers: empty while config.style_weight > 0")
    self.vgg_layers = ((list(self.perceptual_layers) if self.perceptual_weight else [])
                       + (list(self.style_layers) if self.style_weight else []))
    if self.vgg_layers:  # fail fast, before building anything, when no weights are configured
      from jaxsr.convert import vgg as convert_vgg  # pylint: disable=g-import-not-at-top
      path = convert_vgg.resolve_vgg_path(config.get("vgg_weights"))
      if path != "random" and not pathlib.Path(path).expanduser().is_file():
        raise InputError(f"config.vgg_weights: {path}: no such file; "
                         f"{convert_vgg.missing_weights_message()}")
    self._step = make_gan_step(
        self.model, self.discriminator, self.tx, self.d_tx, self.g_schedule, self.d_schedule,
        gan_type=config.get("gan_type", "ragan"), pixel=config.get("loss", "l1"),
        pixel_weight=float(config.get("pixel_weight", 1e-2)),
        perceptual_weight=self.perceptual_weight, perceptual_layers=self.perceptual_layers,
        perceptual_criterion=config.get("perceptual_criterion", "l1"),
        style_weight=self.style_weight, style_layers=self.style_layers,
        adversarial_weight=float(config.get("adversarial_weight", 5e-3)),
        ema_decay=self.ema_decay)

  def init_state(self, *, key):
    p = int(self.config.lr_patch_size)
    hr = p * int(self.config.scale)
    channels = getattr(self.model, "channels", 3)
    # Initialise from an 'rbg' key derived from ``key``: XLA:CPU compiles threefry-based
    # initialisers of these networks ~5x slower (20 s for the discriminator).
    data = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
    data = jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)])[:4]
    g_key, d_key = jax.random.split(jax.random.wrap_key_data(data, impl="rbg"))
    # Jitted inits: eager (op-by-op) initialisation of an RRDBNet takes tens of seconds on CPU.
    g_vars = jax.jit(self.model.init)(g_key, jnp.zeros((1, p, p, channels), jnp.float32))
    d_vars = jax.jit(self.discriminator.init)(d_key, jnp.zeros((1, hr, hr, channels),
                                                               jnp.float32))
    g_params = g_vars["params"]
    vgg = load_vgg(self.config, layers=self.vgg_layers) if self.vgg_layers else {}
    vgg = jax.tree.map(jnp.asarray, vgg)
    return GANState(step=jnp.zeros([], jnp.int32), params=g_params,
                    opt_state=self.tx.init(g_params), batch_stats=g_vars.get("batch_stats", {}),
                    ema_params=jax.tree.map(jnp.copy, g_params) if self.ema_decay > 0 else {},
                    d_params=d_vars["params"], d_opt_state=self.d_tx.init(d_vars["params"]),
                    d_batch_stats=d_vars.get("batch_stats", {}), vgg=vgg)

  def train_step(self, state, batch):
    return self._step(state, batch)
