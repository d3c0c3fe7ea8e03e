"""The degradations of the evaluation and training protocols (numpy, exact, no compilation).

Two protocols reproduce the two families of published super-resolution tables:

``y`` (SRCNN/FSRCNN/VDSR era, Y-channel models, the published bicubic rows):
  HR = ``modcrop(Y, scale)`` with Y the MATLAB ``rgb2ycbcr`` luma of the uint8 RGB image rounded
  to uint8 (``jaxsr.color.y_uint8``; a 1-channel image is its own Y).
  LR = ``imresize(HR / 255, 1 / scale)`` computed in float64 and kept in float (not quantised):
  ``lr_y``. Metrics compare uint8 Y planes.

``rgb`` (EDSR/RCAN/ESRGAN era, RGB models, BasicSR's test code):
  HR = ``modcrop(RGB, scale)`` (a 1-channel image is replicated to 3 channels).
  LR = ``imresize(HR, 1 / scale)`` on uint8, rounded to uint8 -- the stored LR PNGs of DIV2K
  and of the benchmark sets: ``lr_rgb``. Metrics compare the unrounded Y of HR and of the
  (uint8) SR.

``imresize`` is ``jaxsr.imresize.imresize_np``, MATLAB's bicubic with antialiasing. ``modcrop``
keeps the top-left ``[H - H % scale, W - W % scale]`` region, so LR pixel ``(i, j)`` covers HR
pixels ``[s*i, s*(i+1)) x [s*j, s*(j+1))``. Images are ``[H, W, C]`` numpy arrays.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from jaxsr import color
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np

__all__ = ["PROTOCOLS", "Protocol", "Degraded", "MIN_EVAL_SIZE", "modcrop", "lr_y", "lr_rgb",
           "degrade"]

Protocol = Literal["y", "rgb"]
PROTOCOLS = ("y", "rgb")
MIN_EVAL_SIZE = 11  # the SSIM window: the shaved HR must be at least this large


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
  """Crops ``[H, W, ...]`` at the bottom/right to multiples of ``scale`` (MATLAB's modcrop)."""
  h, w = image.shape[:2]
  return image[: h - h % scale, : w - w % scale]


def lr_y(hr: np.ndarray, scale: int) -> np.ndarray:
  """The ``y`` protocol's LR: ``imresize(modcrop(hr, scale) / 255, 1 / scale)``, not quantised.

  Args:
    hr: uint8 ``[H, W, C]``, normally the rounded Y plane (``color.y_uint8``), C = 1.
    scale: integer downscaling factor.

  Returns:
    float32 ``[H // scale, W // scale, C]`` in [0, 1] (computed in float64, then cast).
  """
  return imresize_np(modcrop(hr, scale).astype(np.float64) / 255.0, 1.0 / scale).astype(np.float32)


def lr_rgb(hr: np.ndarray, scale: int) -> np.ndarray:
  """The ``rgb`` protocol's LR: ``imresize(modcrop(hr, scale), 1 / scale)`` rounded to uint8.

  Args:
    hr: uint8 ``[H, W, C]`` (any C; the protocol uses RGB, training pipelines also grey).
    scale: integer downscaling factor.

  Returns:
    uint8 ``[H // scale, W // scale, C]``, as the stored LR images of the published sets.
  """
  return imresize_np(modcrop(hr, scale), 1.0 / scale)


def degrade(hr: np.ndarray, *, scale: int, protocol: Protocol, name: str = "image") -> Degraded:
  """Makes the protocol's (LR, reference) pair from an HR uint8 image.

  Args:
    hr: uint8 ``[H, W, 1|3]``, the un-cropped HR image.
    scale: integer scale.
    protocol: ``'y'`` or ``'rgb'``.
    name: the image's name (kept in the pair and used in messages).

  Raises:
    InputError: an unknown protocol, or an image too small for this scale (the HR shaved by
      ``scale`` pixels per side must be at least ``MIN_EVAL_SIZE`` pixels).
  """
  if protocol not in PROTOCOLS:
    raise InputError(f"unknown value {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
                     field="protocol")
  h, w = hr.shape[:2]
  if h // scale < 1 or w // scale < 1 or (h // scale) * scale - 2 * scale < MIN_EVAL_SIZE \
      or (w // scale) * scale - 2 * scale < MIN_EVAL_SIZE:
    raise InputError(f"{name}: image of {h}x{w} is too small to evaluate at x{scale}")
  if protocol == "y":
    hr_plane = modcrop(color.y_uint8(hr), scale)
    return Degraded(name, lr_y(hr_plane, scale), hr_plane, hr_plane.astype(np.float64))
  rgb = np.repeat(hr, 3, axis=-1) if hr.shape[-1] == 1 else hr
  rgb = modcrop(rgb, scale)
  lr = lr_rgb(rgb, scale)
  return Degraded(name, (lr.astype(np.float64) / 255.0).astype(np.float32), rgb,
                  color.y_float(rgb))
