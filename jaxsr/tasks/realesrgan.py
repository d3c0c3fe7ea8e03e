"""Real-world SR training (Real-ESRNet / Real-ESRGAN): degradations drawn on device in the step.

X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training Real-World Blind Super-Resolution with
Pure Synthetic Data", ICCV Workshops 2021.

Two tasks, each a composition of an existing task with a batch transform in front of its step:

  * ``realesrnet`` (``RealESRNetTask``): ``jaxsr.tasks.psnr``'s pixel-loss step (L1 for the
    published Real-ESRNet).
  * ``realesrgan`` (``RealESRGANTask``): ``jaxsr.tasks.gan``'s two-player step (Real-ESRGAN:
    ``1 * L1 + 1 * perceptual(VGG19 conv1_2..conv5_4) + 0.1 * vanilla GAN`` against the U-Net
    discriminator ``unet_discriminator``).

Contract of the step: the pipeline's batch ``{'hr': [B, s*p, s*p, 3]}`` float32 in [0, 1], plus
``'lr': [B, p, p, 3]`` (the pipeline's bicubic or paired LR) when the degradation is off: the
tasks' ``needs_lr`` is ``not degradation_enabled(config)``, so with the degradation on the
training loop asks the pipeline for HR crops only and no host LR is made. Inside the jitted step, with ``key = fold_in(fold_in(key(config.seed), SALT), step)``:

  lr     = jaxsr.realworld.degrade_batch(key, hr, scale=s, options=...)   (degradation.enabled)
           batch['lr']                                                    (otherwise: paired data)
  usm    = usm_sharpen(hr)
  batch' = {'lr': lr,
            'hr':            usm if sharpen pixel target      else hr,  (the pixel loss)
            'hr_perceptual': usm if sharpen perceptual target else hr,  (VGG feature losses)
            'hr_real':       usm if sharpen GAN target        else hr}  (the discriminator's
                                                                         real images)

and the wrapped task's step runs on ``batch'`` (``hr_perceptual`` and ``hr_real`` are present
only when they differ from ``hr``; ``jaxsr.tasks.gan`` falls back to ``hr`` for a missing one,
and the PSNR task reads ``hr`` alone). The LR is a pure function of ``(config.seed, step, hr)``:
a resumed run redraws exactly the degradations of an uninterrupted one, and the draw does not
depend on the number of devices (``degrade_batch`` keys every sample by its index in the global
batch).

Config fields (``jaxsr.recipes.common.add_degradation_fields`` sets them): ``degradation.enabled``
(the degradation is also off whenever ``data.lr_folder`` is set: paired folders give the LR),
every field of ``jaxsr.realworld.RealESRGANOptions`` under ``degradation`` (e.g.
``--config.degradation.jpeg_range='(50, 95)'``), and which loss sees the USM-sharpened HR:
``degradation.sharpen_pixel_target`` (default True), ``sharpen_perceptual_target`` (True),
``sharpen_gan_target`` (False), BasicSR's ``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm`` with
Real-ESRGAN's defaults. ``degradation.sharpen_target=False`` turns all three off (a target is
sharpened only when ``sharpen_target`` and its own field are both on). A config without the
three fields gets these defaults.

Not reproduced from BasicSR: the "training pair pool" (a queue of 180 degraded pairs shuffled
across iterations to mix degradations within a batch; here every sample already draws its own
degradation) and the random crop after degradation (the HR crop arrives at its final size).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, TYPE_CHECKING

import jax

from jaxsr import realworld
from jaxsr.errors import InputError
from jaxsr.tasks import base
from jaxsr.tasks import gan
from jaxsr.tasks import psnr

if TYPE_CHECKING:  # annotations only: importing the package needs no ml_collections
  import ml_collections

__all__ = ["RealESRGANTask", "RealESRNetTask", "SHARPEN_FIELDS", "TARGET_KEYS",
           "degradation_enabled", "degradation_options", "prepare_batch", "sharpened_targets",
           "step_key", "with_degradation"]

SALT = 0x52455347  # separates the degradation stream from the data pipeline's (same seed)
_OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(realworld.RealESRGANOptions))
# The batch keys of the targets, each with its config field under ``degradation`` and default.
TARGET_KEYS = ("hr", "hr_perceptual", "hr_real")
SHARPEN_FIELDS = {"sharpen_pixel_target": ("hr", True),
                  "sharpen_perceptual_target": ("hr_perceptual", True),
                  "sharpen_gan_target": ("hr_real", False)}


def degradation_options(config: ml_collections.ConfigDict) -> realworld.RealESRGANOptions:
  """``config.degradation``'s options as a (hashable) ``RealESRGANOptions``.

  Raises:
    InputError: a field that is not an option, or a value the options refuse.
  """
  fields = dict(config.degradation)
  for name in ("enabled", *SHARPEN_FIELDS):
    fields.pop(name, None)
  unknown = sorted(set(fields) - set(_OPTION_FIELDS))
  if unknown:
    raise InputError(f"config.degradation.{unknown[0]}: not a Real-ESRGAN degradation option; "
                     f"expected one of enabled, {', '.join(SHARPEN_FIELDS)}, "
                     f"{', '.join(_OPTION_FIELDS)}")
  values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in fields.items()}
  try:
    options = realworld.RealESRGANOptions(**values)
    hash(options)
  except (TypeError, ValueError) as e:
    raise InputError(f"config.degradation: {e}") from None
  return options


def degradation_enabled(config: ml_collections.ConfigDict) -> bool:
  """``degradation.enabled``, and off with paired folders (``data.lr_folder``: LR from files)."""
  return bool(config.degradation.enabled) and not config.data.lr_folder


def sharpened_targets(config: ml_collections.ConfigDict) -> dict[str, bool]:
  """``{batch key: USM-sharpened?}`` for ``TARGET_KEYS`` from ``config.degradation`` (module doc).

  Raises:
    InputError: a ``sharpen_*`` field that is not a boolean.
  """
  master = config.degradation.get("sharpen_target", True)
  choice = {}
  for name, (batch_key, default) in SHARPEN_FIELDS.items():
    value = config.degradation.get(name, default)
    for field, v in (("sharpen_target", master), (name, value)):
      if not isinstance(v, (bool, int)) or v not in (0, 1):
        raise InputError(f"config.degradation.{field}: expected True or False, got {v!r}")
    choice[batch_key] = bool(master) and bool(value)
  return choice


def step_key(seed: int, step: jax.Array) -> jax.Array:
  """The degradation key of ``step`` (traced int32 is fine)."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), SALT), step)


def prepare_batch(key: jax.Array, batch: dict, *, scale: int,
                  options: realworld.RealESRGANOptions, degrade: bool = True,
                  sharpen: Mapping[str, bool] | None = None) -> dict:
  """``{'lr', 'hr', ...}`` for the wrapped step: degraded LR and the (sharpened or plain) targets.

  Args:
    key: this step's key (``step_key``).
    batch: ``{'hr': [B, H, W, 3]}`` float32 in [0, 1], + ``'lr': [B, H/s, W/s, 3]`` when not
      ``degrade`` (read only then); H, W divisible by ``scale``, at least 22 and above
      ``options.usm_radius // 2`` when sharpening.
    scale: the SR factor (static).
    options: the degradation (static).
    degrade: False keeps ``batch['lr']`` (paired LR/HR data).
    sharpen: ``{key: bool}`` over ``TARGET_KEYS`` (``sharpened_targets``): which targets are the
      USM-sharpened HR. Unset: ``{'hr': options.sharpen_target}``. A key whose choice equals
      ``'hr'``'s (or that is missing) is left out of the result: its loss reads ``'hr'``.

  Returns:
    ``{'lr': [B, H/s, W/s, 3], 'hr': [B, H, W, 3]}`` plus ``'hr_perceptual'`` and/or
    ``'hr_real'`` where they differ from ``'hr'``.
  """
  sharpen = dict(sharpen) if sharpen is not None else {"hr": options.sharpen_target}
  unknown = sorted(set(sharpen) - set(TARGET_KEYS))
  if unknown:
    raise ValueError(f"prepare_batch: unknown target {unknown[0]!r}; expected {TARGET_KEYS}")
  pixel = bool(sharpen.get("hr", options.sharpen_target))
  hr = batch["hr"]
  lr = realworld.degrade_batch(key, hr, scale=scale, options=options) if degrade else batch["lr"]
  usm = None
  if pixel or any(sharpen.values()):
    usm = realworld.usm_sharpen(hr, weight=options.usm_weight, radius=options.usm_radius,
                                threshold=options.usm_threshold)
  out = {"lr": lr, "hr": usm if pixel else hr}
  for name in TARGET_KEYS[1:]:
    if name in sharpen and bool(sharpen[name]) != pixel:
      out[name] = usm if sharpen[name] else hr
  return out


def with_degradation(step: Callable[[Any, dict], tuple[Any, dict]], *, seed: int, scale: int,
                     options: realworld.RealESRGANOptions, degrade: bool = True,
                     sharpen: Mapping[str, bool] | None = None
                     ) -> Callable[[Any, dict], tuple[Any, dict]]:
  """``step`` with ``prepare_batch`` in front, keyed by ``(seed, state.step)``; jit-able."""
  sharpen = dict(sharpen) if sharpen is not None else None

  def wrapped(state, batch):
    key = step_key(seed, state.step)
    return step(state, prepare_batch(key, batch, scale=scale, options=options, degrade=degrade,
                                     sharpen=sharpen))

  return wrapped


def _check(task: base.Task, config: ml_collections.ConfigDict,
           options: realworld.RealESRGANOptions, degrade: bool, sharpen: dict[str, bool]) -> None:
  if getattr(task.model, "channels", 3) != 3:
    raise InputError("config.model: the Real-ESRGAN tasks train RGB models (channels=3)")
  if config.train_scales:
    raise InputError("config.train_scales: multi-scale training is not supported by the "
                     "Real-ESRGAN tasks")
  hr = int(config.lr_patch_size) * int(config.scale)
  need = max(22 if degrade else 1, options.usm_radius // 2 + 1 if any(sharpen.values()) else 1)
  if hr < need:
    raise InputError(f"config.lr_patch_size: HR patches of {hr} pixels are too small for the "
                     f"degradation/USM (need at least {need})")


class RealESRNetTask(psnr.PSNRTask):
  """Real-ESRNet: the PSNR task on LR drawn by the Real-ESRGAN degradation (module doc).

  Its one loss reads ``'hr'``: the USM-sharpened HR when ``degradation.sharpen_target`` and
  ``degradation.sharpen_pixel_target`` are on (the default).
  """

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    self.options = degradation_options(config)
    self.degrade = degradation_enabled(config)
    self.sharpen = {"hr": sharpened_targets(config)["hr"]}
    self.needs_lr = not self.degrade  # the degradation makes the LR from the HR crop
    _check(self, config, self.options, self.degrade, self.sharpen)
    self._step = with_degradation(self._step, seed=int(config.seed), scale=int(config.scale),
                                  options=self.options, degrade=self.degrade,
                                  sharpen=self.sharpen)


class RealESRGANTask(gan.GANTask):
  """Real-ESRGAN: the GAN task on LR drawn by the Real-ESRGAN degradation (module doc).

  The pixel loss sees ``'hr'``, the VGG feature losses ``'hr_perceptual'`` and the
  discriminator's real images ``'hr_real'`` (by default the sharpened, sharpened and plain HR,
  as Real-ESRGAN's recipe). The state and checkpoints are ``GANTask``'s; ``config.init_from``
  replaces the generator only (the discriminator starts from its own initialisation).
  """

  def __init__(self, config: ml_collections.ConfigDict):
    super().__init__(config)
    self.options = degradation_options(config)
    self.degrade = degradation_enabled(config)
    self.sharpen = sharpened_targets(config)
    self.needs_lr = not self.degrade  # the degradation makes the LR from the HR crop
    _check(self, config, self.options, self.degrade, self.sharpen)
    self._step = with_degradation(self._step, seed=int(config.seed), scale=int(config.scale),
                                  options=self.options, degrade=self.degrade,
                                  sharpen=self.sharpen)
