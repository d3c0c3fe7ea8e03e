"""PyTorch ``F.interpolate`` resampling (area, bilinear, bicubic; no antialias) as matrices.

``resize_matrix`` builds the ``[out_buf, in_buf]`` matrix of one axis for a *traced* input length
``in_len`` and output length ``out_len`` inside static buffers, so the pipeline resizes to a
random size without a dynamic shape: rows ``>= out_len`` and columns ``>= in_len`` are zero.
The conventions are PyTorch's (``align_corners=False``):

* source coordinate ``s = c (i + 0.5) - 0.5`` with ``c = 1 / scale_factor`` when a scale factor is
  given (``F.interpolate(scale_factor=...)``) and ``c = in_len / out_len`` otherwise;
* bilinear: ``s`` clamped at 0, taps ``floor(s)`` and ``min(floor(s) + 1, in_len - 1)``;
* bicubic: Keys' cubic with ``A = -0.75``, taps ``floor(s) - 1 .. floor(s) + 2`` clamped to the
  image (replicated border);
* area (adaptive average pooling): output ``i`` averages inputs
  ``floor(i in / out) .. ceil((i + 1) in / out) - 1``.

Modes are integers: ``AREA = 0``, ``BILINEAR = 1``, ``BICUBIC = 2`` (``MODES`` names them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["MODES", "AREA", "BILINEAR", "BICUBIC", "resize_matrix", "resize_valid", "resize"]

MODES = ("area", "bilinear", "bicubic")
AREA, BILINEAR, BICUBIC = 0, 1, 2
_A = -0.75


def _cubic(t):
  """Keys' cubic convolution weights for the taps at offsets -1, 0, 1, 2 of fraction ``t``."""
  def near(x):  # |x| <= 1
    return ((_A + 2) * x - (_A + 3)) * x * x + 1
  def far(x):  # 1 < |x| < 2
    return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A
  return jnp.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def resize_matrix(in_len, out_len, *, in_buf: int, out_buf: int, mode, scale=None) -> jax.Array:
  """The float32 ``[out_buf, in_buf]`` resampling matrix of one axis (see the module doc).

  Args:
    in_len, out_len: (traced) int lengths, ``<= in_buf, out_buf``.
    in_buf, out_buf: static buffer lengths.
    mode: (traced) int in ``{AREA, BILINEAR, BICUBIC}``.
    scale: optional (traced) scale factor as given to ``F.interpolate(scale_factor=...)``;
      None: the coordinate scale is ``in_len / out_len``.
  """
  in_len = jnp.asarray(in_len, jnp.int32)
  out_len = jnp.asarray(out_len, jnp.int32)
  if scale is None:
    c = in_len.astype(jnp.float32) / out_len.astype(jnp.float32)
  else:
    c = 1.0 / jnp.asarray(scale, jnp.float32)
  i = jnp.arange(out_buf, dtype=jnp.int32)
  cols = jnp.arange(in_buf, dtype=jnp.int32)
  src = c * (i.astype(jnp.float32) + 0.5) - 0.5

  def taps_matrix(index, weight):  # index, weight [out_buf, T]
    onehot = index[..., None] == cols  # [out_buf, T, in_buf]
    return jnp.sum(jnp.where(onehot, weight[..., None], 0.0), axis=1)

  # bilinear
  s_lin = jnp.maximum(src, 0.0)
  i0 = jnp.floor(s_lin).astype(jnp.int32)
  lam = s_lin - i0
  i1 = jnp.minimum(i0 + 1, in_len - 1)
  i0 = jnp.minimum(i0, in_len - 1)
  bilinear = taps_matrix(jnp.stack([i0, i1], -1), jnp.stack([1 - lam, lam], -1))
  # bicubic
  f = jnp.floor(src)
  t = src - f
  idx = jnp.clip(f.astype(jnp.int32)[:, None] + jnp.arange(-1, 3), 0, in_len - 1)
  bicubic = taps_matrix(idx, _cubic(t))
  # area (adaptive average pooling), integer bounds
  start = (i * in_len) // out_len
  end = -((-(i + 1) * in_len) // out_len)
  inside = (cols[None] >= start[:, None]) & (cols[None] < end[:, None])
  area = inside / jnp.maximum(end - start, 1)[:, None].astype(jnp.float32)

  matrix = jnp.where(mode == AREA, area, jnp.where(mode == BILINEAR, bilinear, bicubic))
  return jnp.where((i < out_len)[:, None], matrix, 0.0).astype(jnp.float32)


def _apply(img, mh, mw):
  hi = jax.lax.Precision.HIGHEST
  out = jnp.einsum("oh,hwc->owc", mh, img, precision=hi)
  return jnp.einsum("pw,owc->opc", mw, out, precision=hi)


def resize_valid(img, valid, out_size, *, out_buf, mode, scale=None) -> jax.Array:
  """Resizes ``img[:h, :w]`` (``valid = (h, w)``, traced) to ``out_size`` (traced) in a buffer.

  Args:
    img: ``[H_buf, W_buf, C]`` float32, zero outside the valid region (not required).
    valid: ``(h, w)`` valid extent of ``img``.
    out_size: ``(oh, ow)``, the output extent inside ``out_buf``.
    out_buf: static ``(OH_buf, OW_buf)``.
    mode: traced int mode.
    scale: optional traced scale factor (same for both axes), see ``resize_matrix``.

  Returns:
    ``[OH_buf, OW_buf, C]``, zero outside ``out_size``.
  """
  mh = resize_matrix(valid[0], out_size[0], in_buf=img.shape[0], out_buf=out_buf[0], mode=mode,
                     scale=scale)
  mw = resize_matrix(valid[1], out_size[1], in_buf=img.shape[1], out_buf=out_buf[1], mode=mode,
                     scale=scale)
  return _apply(img, mh, mw)


def resize(img, size: tuple[int, int], *, mode) -> jax.Array:
  """``F.interpolate(img, size=size, mode=...)`` for a whole ``[H, W, C]`` image (static sizes).

  ``mode`` is a ``MODES`` name or a (traced) int.
  """
  if isinstance(mode, str):
    mode = MODES.index(mode)
  h, w = img.shape[:2]
  return resize_valid(img, (h, w), size, out_buf=size, mode=mode)
