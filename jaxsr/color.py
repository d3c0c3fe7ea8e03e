"""Colour conversions of the super-resolution protocols: the one home of YCbCr and luma.

Two YCbCr standards are in use, named by the strings recorded in checkpoints (``"luma"`` of
imported weights):

  * ``MATLAB`` (``"matlab"``): MATLAB ``rgb2ycbcr``, studio range. With R, G, B in [0, 1]:
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (16..235),
    ``Cb = 128 - 37.797 R - 74.203 G + 112 B``, ``Cr = 128 + 112 R - 93.786 G - 18.214 B``
    (16..240). The evaluation protocols and the classic Y-channel models (SRCNN, FSRCNN, VDSR,
    ESPCN as trained here) use this one.
  * ``OPENCV`` (``"opencv"``): OpenCV's full-range ``COLOR_RGB2YCrCb`` on 0..255 values,
    ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cr = (R - Y) 0.713 + 128``,
    ``Cb = (B - Y) 0.564 + 128``, reordered here to (Y, Cb, Cr). OpenCV dnn_superres models
    were trained on this Y.

Two worlds, two sets of functions:

  * numpy, 0..255 (image files): ``rgb_to_ycbcr`` / ``ycbcr_to_rgb`` take uint8 or 0..255 float
    ``[..., 3]`` and return float64 ``[..., 3]`` in 0..255 (not rounded, not clipped; each is the
    exact inverse of the other up to float64 rounding). ``y_uint8`` / ``y_float`` give the MATLAB
    Y plane ``[H, W, 1]`` the evaluation protocols compare (rounded to uint8, or not); a
    1-channel image is its own Y.
  * jax.numpy, [0, 1] (the library convention, jit-able): ``rgb_to_y`` (MATLAB luma divided by
    255, in [16/255, 235/255]; a 1-channel input is returned unchanged) and
    ``rgb_to_ycbcr_jnp`` / ``ycbcr_to_rgb_jnp`` (the full conversion of either standard with
    every channel divided by 255). They compute in the input's float dtype (float32 by
    default) with ``Precision.HIGHEST``; they agree with the numpy functions divided by 255 to
    float32 rounding (about 1e-7).

``standard=None`` means MATLAB; any other name than the two raises ``InputError``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.errors import InputError

__all__ = [
    "MATLAB", "OPENCV", "STANDARDS", "rgb_to_ycbcr", "ycbcr_to_rgb", "y_uint8", "y_float",
    "rgb_to_y", "rgb_to_ycbcr_jnp", "ycbcr_to_rgb_jnp",
]

MATLAB = "matlab"
OPENCV = "opencv"
STANDARDS = (MATLAB, OPENCV)

_HIGHEST = jax.lax.Precision.HIGHEST

# MATLAB rgb2ycbcr luma weights (R, G, B in [0, 1] -> Y in 16..235).
_Y_WEIGHTS = (65.481, 128.553, 24.966)

# Per standard: (matrix, offset, unit) with ycbcr = (rgb * unit) @ matrix.T + offset on 0..255
# values; unit rescales 0..255 RGB to the range the matrix is written for.
_TABLES = {
    MATLAB: (np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]]),
             np.array([16.0, 128.0, 128.0]), 1.0 / 255.0),
    OPENCV: (np.array([[0.299, 0.587, 0.114],
                       [-0.299 * 0.564, -0.587 * 0.564, 0.886 * 0.564],
                       [0.701 * 0.713, -0.587 * 0.713, -0.114 * 0.713]]),
             np.array([0.0, 128.0, 128.0]), 1.0),
}
# For [0, 1] images: ycbcr01 = (rgb01 @ (matrix * gain).T + offset) / 255, where gain turns
# [0, 1] RGB into the matrix's range (1 for MATLAB, 255 for OpenCV's 0..255).
_GAIN = {MATLAB: 1.0, OPENCV: 255.0}


def _standard(standard: str | None) -> str:
  if standard is None:
    return MATLAB
  if standard not in STANDARDS:
    raise InputError(f"unknown YCbCr standard {standard!r}; expected one of "
                     f"{', '.join(STANDARDS)}", field="standard")
  return standard


def _check_rgb(shape, what: str) -> None:
  if not shape or shape[-1] != 3:
    raise ValueError(f"{what}: expected 3 channels in the last axis, got shape {tuple(shape)}")


def rgb_to_ycbcr(rgb: np.ndarray, *, standard: str | None = MATLAB) -> np.ndarray:
  """RGB -> YCbCr of one standard, numpy in 0..255.

  Args:
    rgb: ``[..., 3]`` uint8, or float in 0..255.
    standard: ``MATLAB`` (default; also for None) or ``OPENCV``.

  Returns:
    float64 ``[..., 3]`` (Y, Cb, Cr) in 0..255, not rounded.
  """
  rgb = np.asarray(rgb)
  _check_rgb(rgb.shape, "rgb_to_ycbcr")
  m, offset, unit = _TABLES[_standard(standard)]
  return rgb.astype(np.float64) * unit @ m.T + offset


def ycbcr_to_rgb(ycbcr: np.ndarray, *, standard: str | None = MATLAB) -> np.ndarray:
  """Inverse of ``rgb_to_ycbcr``: float64 RGB ``[..., 3]`` in 0..255, not clipped or rounded."""
  ycbcr = np.asarray(ycbcr)
  _check_rgb(ycbcr.shape, "ycbcr_to_rgb")
  m, offset, unit = _TABLES[_standard(standard)]
  return (ycbcr.astype(np.float64) - offset) @ np.linalg.inv(m).T / unit


def y_float(image: np.ndarray) -> np.ndarray:
  """MATLAB Y of uint8 RGB ``[H, W, 3]``, not rounded: float64 ``[H, W, 1]`` in 16..235.

  A 1-channel image is returned as float64 (a grey image is its own Y).
  """
  image = np.asarray(image)
  if image.shape[-1] == 1:
    return image.astype(np.float64)
  _check_rgb(image.shape, "y_float")
  rgb = image.astype(np.float64) / 255.0
  return (rgb @ np.asarray(_Y_WEIGHTS) + 16.0)[..., None]


def y_uint8(image: np.ndarray) -> np.ndarray:
  """MATLAB Y of uint8 RGB ``[H, W, 3]``, rounded half up: uint8 ``[H, W, 1]``.

  A 1-channel image is returned as is.
  """
  if image.shape[-1] == 1:
    return image
  return np.floor(y_float(image) + 0.5).astype(np.uint8)


def rgb_to_y(images: jax.Array, *, keepdims: bool = True) -> jax.Array:
  """MATLAB ``rgb2ycbcr`` luma of RGB images in [0, 1], divided by 255.

  Args:
    images: ``[..., 3]`` float in [0, 1] (a 1-channel input is returned unchanged: a grey
      image is its own Y, as in the published protocol).
    keepdims: keep a trailing channel dimension of size 1.

  Returns:
    ``[..., 1]`` (or ``[...]``) float in [16/255, 235/255].
  """
  images = jnp.asarray(images)
  if images.shape[-1] == 1:
    return images if keepdims else images[..., 0]
  if images.shape[-1] != 3:
    raise ValueError(f"rgb_to_y: expected 1 or 3 channels, got shape {images.shape}")
  weights = jnp.asarray(_Y_WEIGHTS, images.dtype)
  y = (jnp.einsum("...c,c->...", images, weights, precision=_HIGHEST) + 16.0) / 255.0
  return y[..., None] if keepdims else y


def _float(images) -> jax.Array:
  images = jnp.asarray(images)
  if not jnp.issubdtype(images.dtype, jnp.floating):
    images = images.astype(jnp.float32)
  return images


def rgb_to_ycbcr_jnp(images: jax.Array, *, standard: str | None = MATLAB) -> jax.Array:
  """RGB -> YCbCr of one standard, jax.numpy in [0, 1].

  Args:
    images: ``[..., 3]`` float RGB in [0, 1].
    standard: ``MATLAB`` (default; also for None) or ``OPENCV``.

  Returns:
    ``[..., 3]`` (Y, Cb, Cr) divided by 255, in the input's float dtype, not clipped. For
    MATLAB, channel 0 is ``rgb_to_y`` up to float rounding.
  """
  images = _float(images)
  _check_rgb(images.shape, "rgb_to_ycbcr_jnp")
  standard = _standard(standard)
  m, offset, _ = _TABLES[standard]
  matrix = jnp.asarray(m * _GAIN[standard], images.dtype)
  out = jnp.einsum("...c,kc->...k", images, matrix, precision=_HIGHEST)
  return (out + jnp.asarray(offset, images.dtype)) / 255.0


def ycbcr_to_rgb_jnp(images: jax.Array, *, standard: str | None = MATLAB) -> jax.Array:
  """Inverse of ``rgb_to_ycbcr_jnp``: RGB ``[..., 3]`` in [0, 1] (not clipped), same dtype."""
  images = _float(images)
  _check_rgb(images.shape, "ycbcr_to_rgb_jnp")
  standard = _standard(standard)
  m, offset, _ = _TABLES[standard]
  inverse = jnp.asarray(np.linalg.inv(m * _GAIN[standard]), images.dtype)
  centred = images * 255.0 - jnp.asarray(offset, images.dtype)
  return jnp.einsum("...k,ck->...c", centred, inverse, precision=_HIGHEST)
