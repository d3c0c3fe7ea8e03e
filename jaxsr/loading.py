"""The one model loader: a jaxsr checkpoint or a published weights file -> a ready model.

``load_model(checkpoint=DIR)`` reads a jaxsr checkpoint (imported weights or a training run's
workdir; ``jaxsr.checkpoint.load_model``); ``load_model(weights=FILE, model=NAME)`` converts a
published file on the fly (``jaxsr.convert.load_weights``: SRCNN .mat, OpenCV .pb, BasicSR /
FSRCNN-pytorch .pth). Either way the result is a :class:`LoadedModel`: the Flax module, its
variables, its scale, and the YCbCr standard (``luma``) a 1-channel model's weights were
trained on, so that callers (evaluation, the ``jaxsr`` command, training's ``init_from``)
treat both sources alike.

Scale: a checkpoint is a model of one scale, and asking for another is an error. A weights
file whose architecture fixes its scale is checked the same way (by the importer); a
scale-free file (SRCNN .mat, FSRCNN-pytorch .pth) is built at the requested scale, default
its file name's ``xN``, with a logged warning when the two differ (the weights were trained
for the name's scale).

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

__all__ = ["LoadedModel", "load_model"]

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


def _from_checkpoint(directory: str | os.PathLike, *, scale: int | None,
                     use_ema: bool) -> LoadedModel:
  # Imported here: Orbax (and the absl it brings) load only when a checkpoint is read.
  from jaxsr import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top

  try:
    module, variables, meta = checkpoint_lib.load_model(directory, use_ema=use_ema)
  except checkpoint_lib.CheckpointError as e:
    raise InputError(str(e), field="checkpoint") from None
  if scale is not None and int(scale) != int(module.scale):
    raise InputError(f"{directory} is a x{module.scale} model, not x{scale}", field="scale")
  imported = meta.get("imported") or {}
  return LoadedModel(module=module, variables=variables, scale=int(module.scale),
                     luma=_luma(imported.get("luma")), name=meta["model"]["name"],
                     format="checkpoint", source=str(directory), meta=meta,
                     notes=tuple(imported.get("notes") or ()))


def _from_weights(path: str | os.PathLike, *, model: str | None,
                  scale: int | None) -> LoadedModel:
  if not model:
    raise InputError(f"the registry name of the model of weights file {path} is needed (e.g. "
                     f"srcnn, fsrcnn, espcn, edsr, rcan, msrresnet, rrdbnet)", field="model")
  imported = convert.load_weights(path, model=model, scale=scale)
  notes = list(imported.notes)
  trained = convert.scale_from_filename(path)
  if imported.format in _SCALE_FREE_FORMATS and trained not in (None, imported.scale):
    message = f"{path}: weights trained for x{trained} used at x{imported.scale}"
    _log.warning("%s", message)
    notes.append(message)
  meta = {"model": {"name": imported.name, "scale": int(imported.scale),
                    "overrides": dict(imported.overrides)},
          "imported": {"source": str(path), "format": imported.format, "luma": imported.luma,
                       "notes": list(notes)}}
  return LoadedModel(module=imported.module, variables=imported.variables,
                     scale=int(imported.scale), luma=_luma(imported.luma), name=imported.name,
                     format=imported.format, source=str(path), meta=meta, notes=tuple(notes))


def load_model(*, checkpoint: str | os.PathLike | None = None,
               weights: str | os.PathLike | None = None, model: str | None = None,
               scale: int | None = None, use_ema: bool = True) -> LoadedModel:
  """Loads a super-resolution model from a jaxsr checkpoint or a published weights file.

  Args:
    checkpoint: a jaxsr checkpoint directory (``jaxsr convert`` output or a training workdir).
    weights: a published weights file, converted on the fly; needs ``model``.
    model: the registry name of the weights file's model family (e.g. ``'srcnn'``,
      ``'edsr'``); ignored with ``checkpoint`` (the checkpoint names its model).
    scale: the scale wanted; None: the checkpoint's / file's own. A checkpoint or a file
      whose architecture fixes the scale must match it.
    use_ema: a training checkpoint's EMA weights when it has them (as published models are
      evaluated), else its raw parameters.

  Returns:
    A :class:`LoadedModel`.

  Raises:
    InputError: neither or both of ``checkpoint`` and ``weights``; no intact checkpoint in
      ``checkpoint`` (field ``checkpoint``); ``weights`` without ``model``, or an unknown or
      unfitting ``model`` (field ``model``); a ``scale`` the model cannot have (field
      ``scale``); an unreadable or unsupported weights file.
  """
  if checkpoint is not None and weights is not None:
    raise InputError(f"give either a checkpoint ({checkpoint}) or a weights file ({weights}), "
                     f"not both")
  if checkpoint is not None:
    return _from_checkpoint(checkpoint, scale=scale, use_ema=use_ema)
  if weights is not None:
    return _from_weights(weights, model=model, scale=scale)
  raise InputError("give a model: a checkpoint directory, or a weights file with its model name")

