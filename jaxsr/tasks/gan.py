"""Perceptual and adversarial training (SRGAN / ESRGAN, ``config.task = 'gan'``).

The loop (resume, checkpoints, logging, evaluation) is ``jaxsr.train_lib``'s; this module is
the two-player ``Task``.

State (``GANState``, a ``TrainState`` subclass): the generator under ``TrainState``'s fields
``step``, ``params``, ``opt_state``, ``batch_stats``, ``ema_params`` (so a GAN checkpoint loads
as a generator checkpoint: ``jaxsr.checkpoint.load_model``, ``eval.py --checkpoint``,
``config.init_from``); the discriminator under ``d_params``, ``d_opt_state``,
``d_batch_stats``; and the frozen VGG19 weights under ``vgg`` (``{}`` when no feature loss is
on). ``GANTask.state_dict`` leaves ``vgg`` out of checkpoints: it is loaded again at start-up.

The step (``make_gan_step``) is one pure function ``(state, batch) -> (state, metrics)``. The
batch is ``{'lr': [B, h, w, C], 'hr': [B, s*h, s*w, C]}`` float32 in [0, 1], optionally with
``'hr_perceptual'`` (the target of the VGG feature losses) and ``'hr_real'`` (the
discriminator's real images), both shaped as ``'hr'`` and ``'hr'`` where absent (Real-ESRGAN
gives its losses differently sharpened targets: ``jaxsr.tasks.realesrgan``). It runs the
generator once (``sr = G(lr)``) and the discriminator twice in train mode (``hr_real``, then
SR, its batch statistics carried from the first pass to the second). The generator loss is

  ``pixel_weight * pixel(sr, hr) + perceptual_weight * perceptual(sr, hr_perceptual)
    + style_weight * style(sr, hr_perceptual)
    + adversarial_weight * gan_g_loss(kind, D(hr_real), D(sr))``

and the discriminator loss ``gan_d_loss(kind, D(hr_real), D(stop_gradient(sr)))``. Both gradients
use the discriminator's parameters from before this step (BasicSR's alternating update with a
detached SR output computes the same); then both optimizers step and the generator's EMA
follows. Nothing in it branches on data, so it compiles once.

Config fields beyond the PSNR ones (``jaxsr.recipes.common.add_gan_fields`` sets them all):
  * ``d_model`` (a discriminator in the model registry) and ``d_model_overrides``.
  * ``gan_type``: one of ``jaxsr.losses.GAN_KINDS`` ('vanilla', 'lsgan', 'hinge', 'ragan').
  * ``loss`` (the pixel criterion) and ``pixel_weight``; ``perceptual_weight``,
    ``perceptual_layers`` (``{layer: weight}`` with VGG19 layer names such as ``'conv5_4'`` or
    ``'relu5_4'``), ``perceptual_criterion`` ('l1' or 'l2'); ``style_weight``,
    ``style_layers``; ``adversarial_weight``. A weight of 0 drops its term.
  * ``vgg_weights``: a ``.npz`` written by ``python -m jaxsr.convert.vgg`` (or a torchvision
    ``.pth`` / Keras ``.h5``); unset means ``$JAXSR_VGG19``; ``'random'`` gives randomly
    initialised weights, for tests only.
  * ``d_optimizer``: fields overriding the generator's optimizer fields for the
    discriminator (e.g. ``d_optimizer.learning_rate``).
  * ``ema_decay``: the generator's EMA (0: evaluation uses ``params``).

Metrics per step: ``loss`` (equal to ``g_loss``, the weighted generator total); the unweighted
terms ``g_pixel``, ``g_perceptual``, ``g_style``, ``g_adversarial``; ``d_loss``; ``d_real`` and
``d_fake`` (the mean sigmoid of the discriminator's logits on HR and SR: the probability of
"real" for 'vanilla', a monotone summary of the logits otherwise); ``d_real_logit``,
``d_fake_logit`` (mean logits); ``g_grad_norm``, ``d_grad_norm``; ``learning_rate``,
``d_learning_rate``.

``compute_dtype`` ('float32' or 'bfloat16', as for the PSNR task) is the dtype the generator,
the discriminator and the VGG features compute in; losses, gradients, optimizer states and
parameters stay float32.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any, Callable, TYPE_CHECKING

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsr import losses
from jaxsr import models
from jaxsr import optim
from jaxsr.convert import vgg as convert_vgg
from jaxsr.errors import InputError
from jaxsr.models import vgg as vgg_lib
from jaxsr.tasks import base

if TYPE_CHECKING:  # annotations only: importing the package needs no ml_collections
  import ml_collections

__all__ = ["GANState", "GANTask", "d_optimizer_config", "load_vgg", "make_gan_step"]

_log = logging.getLogger(__name__)


@flax.struct.dataclass
class GANState(base.TrainState):
  """The generator's ``TrainState`` fields, then the discriminator's and the frozen VGG."""
  d_params: Any
  d_opt_state: Any
  d_batch_stats: Any
  vgg: Any  # frozen VGG19 pytree ({} when unused); not written to checkpoints


def d_optimizer_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of ``config`` with ``config.d_optimizer``'s fields overriding the optimizer's."""
  import ml_collections  # pylint: disable=g-import-not-at-top,redefined-outer-name
  d_config = ml_collections.ConfigDict(config.to_dict())
  for key, value in dict(config.d_optimizer or {}).items():
    d_config[key] = value
  return d_config


def _layer_weights(field: Any, *, name: str) -> dict[str, float]:
  try:
    return {vgg_lib.resolve_layer(k, before_activation=True): float(v)
            for k, v in dict(field or {}).items()}
  except ValueError as e:
    raise InputError(f"config.{name}: {e}") from None


def load_vgg(config: ml_collections.ConfigDict, *, layers: list[str]) -> dict:
  """The frozen VGG19 pytree up to the deepest of ``layers``.

  From ``config.vgg_weights`` (unset: ``$JAXSR_VGG19``); ``'random'`` gives randomly
  initialised weights seeded by ``config.seed``, for tests only.
  """
  deepest = max(layers, key=lambda n: vgg_lib.TORCHVISION_INDEX[n])
  path = convert_vgg.resolve_vgg_path(config.vgg_weights)
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
                  adversarial_weight: float = 5e-3, ema_decay: float = 0.0,
                  compute_dtype: str = "float32",
                  ) -> Callable[[GANState, dict], tuple[GANState, dict]]:
  """The pure GAN train step ``(state, batch) -> (state, metrics)`` (see the module docstring).

  Layer names must be full VGG19 names (``'conv5_4'``, ``'relu5_4'``). A weight of 0 drops its
  term (logged as 0). ``compute_dtype`` 'bfloat16' runs the generator, the discriminator and
  the VGG feature network in bf16 (weights and inputs cast inside the differentiated
  functions); their outputs, every loss, the gradients, the optimizer states and the
  parameters stay float32.

  Raises:
    InputError: an unknown ``gan_type`` or pixel loss.
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
  try:
    dtype = jnp.dtype(compute_dtype)
  except TypeError:
    raise InputError(f"config.compute_dtype: unknown dtype {compute_dtype!r}; expected "
                     "'float32' or 'bfloat16'") from None
  low = dtype != jnp.float32
  vgg_dtype = dtype if low else None

  def cast(tree):
    return jax.tree.map(lambda a: a.astype(dtype), tree) if low else tree

  def d_apply(d_params, d_stats, x):
    logits, updates = discriminator.apply({"params": cast(d_params), "batch_stats": d_stats},
                                          cast(x), train=True, mutable=["batch_stats"])
    return logits.astype(jnp.float32), updates["batch_stats"]

  def step(state: GANState, batch: dict) -> tuple[GANState, dict]:
    lr_img, hr = batch["lr"], batch["hr"]
    hr_features = batch.get("hr_perceptual", hr)  # keys present or not at trace time: static
    hr_real = batch.get("hr_real", hr)

    def generate(params):
      variables = {"params": cast(params)}
      lr_in = cast(lr_img)
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
        sr, updates = generator.apply(variables, lr_in, train=True, mutable=["batch_stats"])
        return sr.astype(jnp.float32), updates["batch_stats"]
      return generator.apply(variables, lr_in, train=True).astype(jnp.float32), state.batch_stats

    sr, g_vjp, g_stats = jax.vjp(generate, state.params, has_aux=True)

    def discriminate(d_params, fake):
      real_logits, stats = d_apply(d_params, state.d_batch_stats, hr_real)
      fake_logits, stats = d_apply(d_params, stats, fake)
      return (real_logits, fake_logits), stats

    (real_logits, fake_logits), d_vjp, d_stats = jax.vjp(discriminate, state.d_params, sr,
                                                         has_aux=True)

    # Discriminator: the gradient w.r.t. its parameters only (SR is a constant input for it).
    d_loss, d_cot = jax.value_and_grad(
        lambda r, f: losses.gan_d_loss(gan_type, r, f), argnums=(0, 1))(real_logits, fake_logits)
    d_grads, _ = d_vjp(d_cot)

    # Generator: d(total)/d(sr) from the pixel, feature and adversarial terms, then through G.
    def g_terms(sr_img, real_l, fake_l):
      zero = jnp.zeros([], jnp.float32)
      terms = {
          "g_pixel": pixel_fn(sr_img, hr) if pixel_weight else zero,
          "g_perceptual": (losses.perceptual_loss(
              state.vgg, sr_img, hr_features, layer_weights=perceptual_layers,
              criterion=perceptual_criterion, compute_dtype=vgg_dtype)
                           if perceptual_weight else zero),
          "g_style": (losses.style_loss(state.vgg, sr_img, hr_features,
                                        layer_weights=style_layers,
                                        criterion=perceptual_criterion,
                                        compute_dtype=vgg_dtype)
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

    new_state = base.apply_gradients(state, g_grads, tx=g_tx, batch_stats=g_stats,
                                     ema_decay=ema_decay)
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    new_state = new_state.replace(d_params=optax.apply_updates(state.d_params, d_updates),
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


class GANTask(base.Task):
  """SRGAN/ESRGAN training of ``config.model`` against ``config.d_model`` (see the module doc).

  Raises (on construction):
    InputError: an unknown discriminator, GAN kind, loss or VGG layer, empty layers for a
      feature loss that is on, or VGG19 weights that are not there.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.model = base.model_from_config(config)
    try:
      self.discriminator = models.get_model(config.d_model, scale=None,
                                            **dict(config.d_model_overrides or {}))
    except (ValueError, TypeError) as e:
      raise InputError(f"config.d_model: {e}") from None
    self.tx, self.g_schedule = optim.make_optimizer(config)  # the generator's (Task.tx)
    self.d_tx, self.d_schedule = optim.make_optimizer(d_optimizer_config(config))
    self.ema_decay = float(config.ema_decay)
    self.perceptual_weight = float(config.perceptual_weight)
    self.style_weight = float(config.style_weight)
    self.perceptual_layers = _layer_weights(config.perceptual_layers, name="perceptual_layers")
    self.style_layers = _layer_weights(config.style_layers, name="style_layers")
    for kind in ("perceptual", "style"):
      if getattr(self, f"{kind}_weight") and not getattr(self, f"{kind}_layers"):
        raise InputError(f"config.{kind}_layers: empty while config.{kind}_weight > 0")
    self.vgg_layers = ((list(self.perceptual_layers) if self.perceptual_weight else [])
                       + (list(self.style_layers) if self.style_weight else []))
    if self.vgg_layers:  # fail fast, before building anything, when no weights are configured
      path = convert_vgg.resolve_vgg_path(config.vgg_weights)
      if path != "random" and not pathlib.Path(path).expanduser().is_file():
        raise InputError(f"config.vgg_weights: {path}: no such file; "
                         f"{convert_vgg.missing_weights_message()}")
    self._step = make_gan_step(
        self.model, self.discriminator, self.tx, self.d_tx, self.g_schedule, self.d_schedule,
        gan_type=config.gan_type, pixel=config.loss, pixel_weight=float(config.pixel_weight),
        perceptual_weight=self.perceptual_weight, perceptual_layers=self.perceptual_layers,
        perceptual_criterion=config.perceptual_criterion,
        style_weight=self.style_weight, style_layers=self.style_layers,
        adversarial_weight=float(config.adversarial_weight), ema_decay=self.ema_decay,
        compute_dtype=config.compute_dtype)

  def init_state(self, *, key: jax.Array) -> GANState:
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

  def train_step(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
    return self._step(state, batch)

  def state_dict(self, state: GANState) -> dict:
    """Every field but the frozen ``vgg``."""
    return {name: flax.serialization.to_state_dict(getattr(state, name))
            for name in _saved_fields()}

  def restore_state(self, target: GANState, saved: dict) -> GANState:
    missing = [name for name in _saved_fields() if name not in saved]
    if missing:
      raise ValueError(f"GAN checkpoint lacks {missing}")
    return target.replace(**{name: flax.serialization.from_state_dict(getattr(target, name),
                                                                      saved[name])
                             for name in _saved_fields()})


def _saved_fields() -> list[str]:
  return [f.name for f in dataclasses.fields(GANState) if f.name != "vgg"]
