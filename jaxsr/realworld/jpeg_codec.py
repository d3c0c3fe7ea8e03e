"""Differentiable-style JPEG round trip on device (DiffJPEG, as Real-ESRGAN trains with it).

Shin and Song, "JPEG-resistant Adversarial Images", NIPS 2017 MLSec workshop (the differentiable
JPEG); Real-ESRGAN uses BasicSR's version of it with hard rounding. ``jpeg(img, quality)`` takes
an ``[H, W, 3]`` float32 image in [0, 1] and a (traced) quality in (0, 100] and returns the
decoded float32 image in [0, 1]:

1. ``255 x`` to JFIF YCbCr (full range, chroma offset 128);
2. 4:2:0 chroma subsampling by 2x2 averaging;
3. zero padding at the bottom/right to multiples of 16, 8x8 blocks, orthonormal-scaled DCT-II of
   ``value - 128``;
4. division by the quality-scaled table ``table * f`` with ``f = 50 / q`` (``q < 50``) or
   ``2 - q / 50``, rounding (``round``: half to even; ``soft_round=True``: BasicSR's
   ``round(x) + (x - round(x))^3``, whose gradient is not zero), multiplication back;
5. inverse DCT, chroma upsampling by pixel repetition, YCbCr to RGB, clamp to [0, 255], ``/ 255``.

The quantisation tables are the JPEG standard (Annex K) tables. DiffJPEG indexes them
transposed (its first frequency index is the vertical one but its table is the standard one
transposed); ``standard_orientation=False`` (default) reproduces DiffJPEG, ``True`` uses the
orientation of libjpeg. Unlike libjpeg the scaled table is not rounded to integers nor clamped.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["jpeg", "quality_to_factor", "LUMA_TABLE", "CHROMA_TABLE"]

LUMA_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
CHROMA_TABLE = np.full((8, 8), 99, np.float32)
CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                      [0.5, -0.418688, -0.081312]], np.float32)
_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]],
                   np.float32)
# _COS[x, u] = cos((2x + 1) u pi / 16); _ALPHA[u] = 1/sqrt(2) for u = 0 else 1.
_COS = np.array([[math.cos((2 * x + 1) * u * math.pi / 16) for u in range(8)] for x in range(8)],
                np.float32)
_ALPHA = np.array([1 / math.sqrt(2)] + [1.0] * 7)
_SCALE = (np.outer(_ALPHA, _ALPHA) * 0.25).astype(np.float32)
_ALPHA2 = np.outer(_ALPHA, _ALPHA).astype(np.float32)
_HI = jax.lax.Precision.HIGHEST


def quality_to_factor(quality):
  """The table multiplier of a quality: ``50 / q`` below 50, else ``2 - q / 50``."""
  quality = jnp.asarray(quality, jnp.float32)
  return jnp.where(quality < 50, 5000.0 / quality, 200.0 - quality * 2) / 100.0


def _blocks(plane):
  h, w = plane.shape
  return plane.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def _unblocks(blocks):
  bh, bw = blocks.shape[:2]
  return blocks.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)


def _code(plane, table, round_fn):
  """DCT, quantise, dequantise, inverse DCT of one ``[h, w]`` plane (multiples of 8)."""
  b = _blocks(plane) - 128.0
  d = _SCALE * jnp.einsum("xu,ijxy,yv->ijuv", _COS, b, _COS, precision=_HI)
  q = round_fn(d / table) * table
  r = 0.25 * jnp.einsum("xu,ijuv,yv->ijxy", _COS, q * _ALPHA2, _COS, precision=_HI) + 128.0
  return _unblocks(r)


def jpeg(img, quality, *, soft_round: bool = False,
         standard_orientation: bool = False) -> jax.Array:
  """JPEG-compresses and decodes ``img [H, W, 3]`` at ``quality`` (module doc). Any H, W."""
  h, w, _ = img.shape
  ph, pw = -h % 16, -w % 16
  x = jnp.pad(img.astype(jnp.float32), ((0, ph), (0, pw), (0, 0))) * 255.0
  ycc = jnp.einsum("hwc,kc->hwk", x, _TO_YCBCR, precision=_HI) + jnp.asarray([0.0, 128.0, 128.0])
  hh, ww = ycc.shape[:2]
  chroma = ycc[..., 1:].reshape(hh // 2, 2, ww // 2, 2, 2).mean(axis=(1, 3))
  factor = quality_to_factor(quality)
  luma_t, chroma_t = (LUMA_TABLE, CHROMA_TABLE) if standard_orientation else (LUMA_TABLE.T,
                                                                                CHROMA_TABLE.T)
  if soft_round:
    round_fn = lambda v: jnp.round(v) + (v - jnp.round(v))**3
  else:
    round_fn = jnp.round
  y = _code(ycc[..., 0], luma_t * factor, round_fn)
  cb = _code(chroma[..., 0], chroma_t * factor, round_fn)
  cr = _code(chroma[..., 1], chroma_t * factor, round_fn)
  up = lambda p: jnp.repeat(jnp.repeat(p, 2, axis=0), 2, axis=1)
  ycc = jnp.stack([y, up(cb), up(cr)], axis=-1) - jnp.asarray([0.0, 128.0, 128.0])
  rgb = jnp.einsum("hwk,ck->hwc", ycc, _TO_RGB, precision=_HI)
  return (jnp.clip(rgb, 0.0, 255.0) / 255.0)[:h, :w]
