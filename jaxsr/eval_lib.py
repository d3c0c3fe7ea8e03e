"""Full-image evaluation with the two protocols of the published super-resolution tables.

Shared by ``eval.py`` (scripted evaluation) and training (periodic evaluation).

``y`` protocol (SRCNN/FSRCNN/VDSR era, Y-channel models, the published bicubic rows):
  1. Y = MATLAB ``rgb2ycbcr`` luma of the uint8 RGB image, rounded to uint8 (a 1-channel image
     is its own Y). HR = modcrop(Y, scale).
  2. LR = ``imresize(HR / 255, 1 / scale)`` in float64, not quantised; the model sees that
     1-channel LR; its output is clipped and rounded to uint8.
  3. Shave ``scale`` pixels per side; PSNR/SSIM on the uint8 Y planes (L = 255).

``rgb`` protocol (EDSR/RCAN/ESRGAN era, RGB models, BasicSR's test code):
  1. HR = modcrop(RGB, scale) (a 1-channel image is replicated to 3 channels);
     LR = ``imresize(HR, 1 / scale)`` on uint8, rounded to uint8 (the stored LR PNGs).
  2. SR = model(LR / 255), clipped and rounded to uint8.
  3. Y of HR and SR, not rounded; shave ``scale``; PSNR/SSIM (L = 255).

A *model* here is any callable ``upscale(lr) -> sr`` on one image batch ``[1, h, w, C]`` float32
in [0, 1] returning ``[1, scale*h, scale*w, C]``; ``bicubic`` gives MATLAB bicubic upscaling.
Metrics are computed in JAX on images zero-padded to size buckets (multiples of
``BUCKET``) with masks, so evaluating a set compiles the metric once per bucket, not per image.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import imresize as imresize_lib
from jaxsr import metrics
from jaxsr.data.eval_sets import EvalImage
from jaxsr.errors import InputError

__all__ = [
    "PROTOCOLS", "BUCKET", "Degraded", "bicubic", "degrade", "evaluate", "format_table",
    "model_upscaler", "modcrop", "y_uint8",
]

Protocol = Literal["y", "rgb"]
Upscaler = Callable[[np.ndarray], np.ndarray]
PROTOCOLS = ("y", "rgb")
BUCKET = 64
_MIN_EVAL_SIZE = 11  # the SSIM window


@dataclasses.dataclass(frozen=True)
class Degraded:
  """An evaluation pair: model input and the reference plane the metrics compare with.

  Attributes:
    name: image name.
    lr: float32 ``[h, w, C]`` in [0, 1] (C = 1 for ``y``, 3 for ``rgb``).
    hr: uint8 ``[scale*h, scale*w, C]``, the modcropped reference image.
    hr_y: float64 ``[scale*h, scale*w, 1]``, its Y plane in 0..255 as the protocol defines.
  """
  name: str
  lr: np.ndarray
  hr: np.ndarray
  hr_y: np.ndarray


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
  """Crops ``[H, W, ...]`` to the largest size divisible by ``scale`` (top-left kept)."""
  h, w = image.shape[:2]
  return image[: h - h % scale, : w - w % scale]


def y_uint8(image: np.ndarray) -> np.ndarray:
  """MATLAB ``rgb2ycbcr`` Y of uint8 RGB ``[H, W, 3]``, rounded: uint8 ``[H, W, 1]``.

  A 1-channel image is returned as is.
  """
  if image.shape[-1] == 1:
    return image
  return np.floor(_y_float(image) + 0.5).astype(np.uint8)


def _y_float(image: np.ndarray) -> np.ndarray:
  """Unrounded Y in 0..255 (float64 ``[H, W, 1]``) of uint8 RGB; a grey image as is."""
  if image.shape[-1] == 1:
    return image.astype(np.float64)
  rgb = image.astype(np.float64) / 255.0
  return (rgb @ np.asarray(metrics._Y_WEIGHTS) + 16.0)[..., None]  # pylint: disable=protected-access


def degrade(image: EvalImage, *, scale: int, protocol: Protocol) -> Degraded:
  """Makes the protocol's (LR, reference) pair from an HR uint8 image.

  Raises:
    InputError: the image is too small for this scale.
  """
  if protocol not in PROTOCOLS:
    raise InputError(f"protocol: unknown value {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
  hr = image.hr
  h, w = hr.shape[:2]
  if h // scale < 1 or w // scale < 1 or (h // scale) * scale - 2 * scale < _MIN_EVAL_SIZE \
      or (w // scale) * scale - 2 * scale < _MIN_EVAL_SIZE:
    raise InputError(f"{image.name}: image of {h}x{w} is too small to evaluate at x{scale}")
  if protocol == "y":
    hr_plane = modcrop(y_uint8(hr), scale)
    lr = imresize_lib.imresize_np(hr_plane.astype(np.float64) / 255.0, 1.0 / scale)
    return Degraded(image.name, lr.astype(np.float32), hr_plane, hr_plane.astype(np.float64))
  rgb = np.repeat(hr, 3, axis=-1) if hr.shape[-1] == 1 else hr
  rgb = modcrop(rgb, scale)
  lr = imresize_lib.imresize_np(rgb, 1.0 / scale)  # uint8 in, rounded uint8 out
  return Degraded(image.name, (lr.astype(np.float64) / 255.0).astype(np.float32), rgb,
                  _y_float(rgb))


def bicubic(scale: int) -> Upscaler:
  """MATLAB bicubic upscaling as an ``Upscaler`` (numpy float64; exact, no compilation)."""

  def upscale(lr: np.ndarray) -> np.ndarray:
    return imresize_lib.imresize_np(np.asarray(lr, np.float64), scale)

  return upscale


def model_upscaler(module, variables, *, scale: int) -> tuple[Upscaler, Protocol]:
  """An ``Upscaler`` running a Flax SR model through ``jaxsr.inference.upscale``.

  Bucketed: one compilation per size bucket, not per image. Returns it with the model's default
  protocol (1-channel models: ``y``; RGB models: ``rgb``).
  """
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  channels = int(getattr(module, "channels", 3))

  def upscale(lr: np.ndarray) -> np.ndarray:
    if lr.shape[-1] != channels:
      raise InputError(
          f"the model takes {channels}-channel input but the protocol gives {lr.shape[-1]} "
          f"(a Y-channel model needs --protocol y, an RGB model --protocol rgb)")
    return inference.upscale(module, variables, np.asarray(lr), scale=scale)

  return upscale, ("y" if channels == 1 else "rgb")


def _bucket(n: int) -> int:
  return int(math.ceil(n / BUCKET) * BUCKET)


@functools.lru_cache(maxsize=None)
def _metric_fn():
  def fn(x, y, height, width):
    return (metrics.psnr_masked(x, y, height, width, max_value=255.0),
            metrics.ssim_masked(x, y, height, width, max_value=255.0))
  return jax.jit(fn)


def score(sr_y: np.ndarray, hr_y: np.ndarray, *, crop: int) -> tuple[float, float]:
  """PSNR/SSIM of two ``[H, W, 1]`` 0..255 planes after shaving ``crop`` pixels per side.

  Images are zero-padded to a ``BUCKET`` multiple and scored with masks, so the metric
  compiles once per bucket shape.
  """
  x = sr_y[crop: sr_y.shape[0] - crop, crop: sr_y.shape[1] - crop]
  y = hr_y[crop: hr_y.shape[0] - crop, crop: hr_y.shape[1] - crop]
  h, w = x.shape[:2]
  pad = ((0, _bucket(h) - h), (0, _bucket(w) - w), (0, 0))
  xp = jnp.asarray(np.pad(x, pad), jnp.float32)
  yp = jnp.asarray(np.pad(y, pad), jnp.float32)
  p, s = _metric_fn()(xp, yp, jnp.int32(h), jnp.int32(w))
  return float(p), float(s)


def evaluate(upscale: Upscaler, images: Sequence[EvalImage], *, scale: int, protocol: Protocol,
             dataset: str) -> dict:
  """Evaluates one model on one set at one scale with one protocol.

  Args:
    upscale: ``[1, h, w, C]`` float32 [0, 1] -> ``[1, scale*h, scale*w, C]``.
    images: the set's HR images.
    scale: integer upscaling factor.
    protocol: ``'y'`` or ``'rgb'`` (see the module docstring).
    dataset: the set's display name.

  Returns:
    ``{"dataset", "scale", "protocol", "psnr", "ssim", "images": [{"name", "psnr", "ssim"}]}``
    with set means of the per-image values.
  """
  rows = []
  for image in images:
    pair = degrade(image, scale=scale, protocol=protocol)
    sr = np.asarray(upscale(pair.lr[None]))[0]
    if sr.shape != pair.hr.shape:
      raise InputError(f"{image.name}: model output shape {sr.shape} differs from the HR "
                       f"shape {pair.hr.shape} at x{scale}")
    sr_u8 = np.floor(np.clip(np.asarray(sr, np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    sr_y = sr_u8.astype(np.float64) if protocol == "y" else _y_float(sr_u8)
    p, s = score(sr_y, pair.hr_y, crop=scale)
    rows.append({"name": image.name, "psnr": p, "ssim": s})
  return {
      "dataset": dataset,
      "scale": scale,
      "protocol": protocol,
      "psnr": float(np.mean([r["psnr"] for r in rows])),
      "ssim": float(np.mean([r["ssim"] for r in rows])),
      "images": rows,
  }


def format_table(results: Sequence[dict], *, model: str) -> str:
  """The paper-style table: one row per (protocol, scale), one PSNR/SSIM column per set."""
  datasets = list(dict.fromkeys(r["dataset"] for r in results))
  keys = list(dict.fromkeys((r["protocol"], r["scale"]) for r in results))
  cell = {(r["protocol"], r["scale"], r["dataset"]): r for r in results}
  width = max([16] + [len(d) + 2 for d in datasets])
  lines = [f"{'Model':<12}{'Protocol':<10}{'Scale':<7}" + "".join(f"{d:<{width}}" for d in datasets)]
  for protocol, scale in keys:
    row = f"{model:<12}{protocol:<10}{'x' + str(scale):<7}"
    for d in datasets:
      r = cell.get((protocol, scale, d))
      row += f"{r['psnr']:.2f}/{r['ssim']:.4f}".ljust(width) if r else "-".ljust(width)
    lines.append(row)
  return "\n".join(lines)
