"""The one model loader: a jaxsr checkpoint or a published weights file -> a ready model.

``load_model(checkpoint=DIR)`` reads a jaxsr checkpoint (imported weights or a training run's
workdir; ``jaxsr.checkpoint.load_model``); ``load_model(weights=FILE)`` converts a
published file on the fly (``jaxsr.convert.load_weights``: SRCNN .mat, OpenCV .pb, BasicSR /
FSRCNN-pytorch / SwinIR .pth or .safetensors, ncnn), recognising its architecture from its
content (``model=NAME`` only checks it). Either way the result is a :class:`LoadedModel`: the
Flax module, its variables, its scale, and the YCbCr standard (``luma``) a 1-channel model's
weights were trained on, so that callers (evaluation, the ``jaxsr`` command, training's ``init_from``)
treat both sources alike.

Scale: weights are trained for one scale, and asking for another is an error
(``InputError`` with ``field='scale'`` naming both scales) unless ``force_scale=True``. The
scale a source states is a checkpoint's recorded scale, the scale a weights file's
architecture fixes (EDSR, RCAN, ... upsamplers; OpenCV graphs), or, for a scale-free file
(SRCNN .mat, FSRCNN-pytorch .pth), its file name's ``xN`` (``convert.scale_from_filename``);
a scale-free file whose name states none is built at the requested scale. Forcing builds the
model at the requested scale when its parameters fit it (scale-free models: SRCNN, FSRCNN; a
fixed upsampler never fits another scale, forced or not), with a logged warning and a note.
``import_weights`` applies the same rule to ``jaxsr convert``.

Mistakes raise ``InputError`` naming the argument at fault in ``field`` (``checkpoint``,
``weights``, ``model``, ``scale``), never a command-line flag.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from jaxsr import color
from jaxsr import convert
from jaxsr.errors import InputError

__all__ = ["LoadedModel", "import_weights", "load_model"]

_log = logging.getLogger(__name__)

# Importer formats whose architecture does not fix the scale: the file name's xN is the scale
# the weights were trained for.
_SCALE_FREE_FORMATS = ("srcnn-mat", "fsrcnn-pytorch-pth")


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A model ready for ``jaxsr.inference.upscale(module, variables, images)``.

  Attributes:
    module: the Flax module (from the ``jaxsr.models`` registry); maps ``[N, h, w, C]`` float32
      in [0, 1] to ``[N, scale*h, scale*w, C]``.
    variables: ``{'params': ...}`` (plus ``'batch_stats'`` where the model has them); a
      checkpoint's EMA weights when present and asked for.
    scale: the upscaling factor (``module.scale``).
    luma: the YCbCr standard of the Y plane a 1-channel model expects, ``'matlab'`` (MATLAB
      ``rgb2ycbcr``, the default) or ``'opencv'`` (OpenCV dnn_superres models); see
      ``jaxsr.color``. Meaningless for RGB models (``'matlab'``).
    name: the model's registry name.
    format: ``'checkpoint'``, or the importer's format of a weights file (``'srcnn-mat'``,
      ``'opencv-pb'``, ``'basicsr-pth'``, ``'fsrcnn-pytorch-pth'``).
    source: the checkpoint directory or weights file, as given.
    meta: a checkpoint's metadata (``meta['step']`` is its step; ``meta['imported']`` the
      provenance of imported weights); for a weights file ``{'model': ..., 'imported': ...}``
      in the same layout (without the file's digest).
    notes: human-readable remarks (e.g. which wrapper key of a state dict was used).
  """
  module: Any
  variables: dict[str, Any]
  scale: int
  luma: str
  name: str
  format: str
  source: str
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)
  notes: tuple[str, ...] = ()

  @property
  def channels(self) -> int:
    """Image channels the model takes and returns (1: Y, 3: RGB)."""
    return int(getattr(self.module, "channels", 3))


def _luma(value: Any) -> str:
  return color.OPENCV if value == color.OPENCV else color.MATLAB


def _mismatch(source: Any, own: int, scale: int, why: str, *, forcible: bool) -> InputError:
  advice = (f"; force the scale to use them at x{scale} anyway" if forcible else
            "; no forcing changes that")
  return InputError(f"{source}: weights for x{own} ({why}), not x{scale}{advice}", field="scale")


def _forced_note(source: Any, own: int, scale: int) -> str:
  message = f"{source}: weights trained for x{own} used at x{scale} (scale forced)"
  _log.warning("%s", message)
  return message


def _fits(module: Any, variables: dict[str, Any]) -> bool:
  """Whether ``variables`` have the shapes ``module`` initialises (no computation)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  channels = int(getattr(module, "channels", 3))
  try:
    want = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 8, 8, channels))))
  except Exception:  # pylint: disable=broad-except
    return False
  shapes = lambda tree: jax.tree.map(lambda a: tuple(a.shape), tree)  # noqa: E731
  got = shapes({k: v for k, v in variables.items() if k in want})
  return jax.tree.structure(got) == jax.tree.structure(shapes(dict(want))) and got == shapes(
      dict(want))


def _from_checkpoint(directory: str | os.PathLike, *, scale: int | None, use_ema: bool,
                     force_scale: bool) -> LoadedModel:
  # Imported here: Orbax (and the absl it brings) load only when a checkpoint is read.
  from jaxsr import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  try:
    module, variables, meta = checkpoint_lib.load_model(directory, use_ema=use_ema)
  except checkpoint_lib.CheckpointError as e:
    raise InputError(str(e), field="checkpoint") from None
  imported = meta.get("imported") or {}
  notes = list(imported.get("notes") or ())
  own = int(module.scale)
  if scale is not None and int(scale) != own:
    rescaled = models.get_model(meta["model"]["name"], scale=int(scale),
                                **meta["model"].get("overrides", {}))
    if not _fits(rescaled, variables):
      raise InputError(f"{directory} is a x{own} model, not x{scale} (its architecture fixes "
                       f"the scale; no forcing changes that)", field="scale")
    if not force_scale:
      raise InputError(f"{directory} is a x{own} model, not x{scale} (its recorded scale); "
                       f"force the scale to use it at x{scale} anyway", field="scale")
    notes.append(_forced_note(directory, own, int(scale)))
    module = rescaled
  return LoadedModel(module=module, variables=variables, scale=int(module.scale),
                     luma=_luma(imported.get("luma")), name=meta["model"]["name"],
                     format="checkpoint", source=str(directory), meta=meta, notes=tuple(notes))


def import_weights(path: str | os.PathLike, *, model: str | None = None,
                   scale: int | None = None, force_scale: bool = False) -> convert.Imported:
  """``convert.load_weights`` with the loader's scale rule (see the module docstring).

  Args:
    path: a published weights file.
    model: its registry name (default: recognised from the file).
    scale: the scale wanted; None: the file's own.
    force_scale: use a scale-free file at a scale other than its name's ``xN``.

  Returns:
    A ``convert.Imported`` at ``scale`` (or the file's own scale); forcing adds a note.

  Raises:
    InputError: what ``convert.load_weights`` raises; ``field='scale'`` when ``scale``
      disagrees with the file's architecture (always) or its name's ``xN`` (unless forced).
  """
  try:
    imported = convert.load_weights(path, model=model)
  except InputError as e:
    if e.field != "scale" or scale is None:
      raise
    # The file states no scale (a scale-free file without xN in its name): the request holds.
    return convert.load_weights(path, model=model, scale=scale)
  own = int(imported.scale)
  if scale is None or int(scale) == own:
    return imported
  scale = int(scale)
  if imported.format not in _SCALE_FREE_FORMATS:
    raise _mismatch(path, own, scale, "its architecture fixes the scale", forcible=False)
  if not force_scale:
    raise _mismatch(path, own, scale, f"its file name says x{own}", forcible=True)
  forced = convert.load_weights(path, model=model, scale=scale)
  forced.notes.append(_forced_note(path, own, scale))
  return forced


def _from_weights(path: str | os.PathLike, *, model: str | None, scale: int | None,
                  force_scale: bool) -> LoadedModel:
  imported = import_weights(path, model=model or None, scale=scale, force_scale=force_scale)
  notes = list(imported.notes)
  meta = {"model": {"name": imported.name, "scale": int(imported.scale),
                    "overrides": dict(imported.overrides)},
          "imported": {"source": str(path), "format": imported.format, "luma": imported.luma,
                       "notes": list(notes)}}
  return LoadedModel(module=imported.module, variables=imported.variables,
                     scale=int(imported.scale), luma=_luma(imported.luma), name=imported.name,
                     format=imported.format, source=str(path), meta=meta, notes=tuple(notes))


def load_model(*, checkpoint: str | os.PathLike | None = None,
               weights: str | os.PathLike | None = None, model: str | None = None,
               scale: int | None = None, use_ema: bool = True,
               force_scale: bool = False) -> LoadedModel:
  """Loads a super-resolution model from a jaxsr checkpoint or a published weights file.

  Args:
    checkpoint: a jaxsr checkpoint directory (``jaxsr convert`` output or a training workdir).
    weights: a published weights file, converted on the fly; its architecture, configuration
      and scale are recognised from the file (``model`` only checks it).
    model: the registry name of the weights file's model family (e.g. ``'srcnn'``,
      ``'edsr'``; optional: recognised from the file); ignored with ``checkpoint`` (the
      checkpoint names its model).
    scale: the scale wanted; None: the checkpoint's / file's own. It must match the scale
      the source states (see the module docstring) unless ``force_scale``.
    use_ema: a training checkpoint's EMA weights when it has them (as published models are
      evaluated), else its raw parameters.
    force_scale: use weights at a ``scale`` other than the one they were trained for, where
      their parameters fit a model of that scale (scale-free models: SRCNN, FSRCNN).

  Returns:
    A :class:`LoadedModel`.

  Raises:
    InputError: neither or both of ``checkpoint`` and ``weights``; no intact checkpoint in
      ``checkpoint`` (field ``checkpoint``); an unknown or unfitting ``model`` (field
      ``model``); a ``scale`` that disagrees with the source's
      (field ``scale``, naming both; unless forced where the parameters fit); an unreadable or unsupported weights file.
  """
  if checkpoint is not None and weights is not None:
    raise InputError(f"give either a checkpoint ({checkpoint}) or a weights file ({weights}), "
                     f"not both")
  if checkpoint is not None:
    return _from_checkpoint(checkpoint, scale=scale, use_ema=use_ema, force_scale=force_scale)
  if weights is not None:
    return _from_weights(weights, model=model, scale=scale, force_scale=force_scale)
  raise InputError("give a model: a checkpoint directory, or a weights file with its model name")

