"""Unsharp masking (USM) of Real-ESRGAN's HR targets, in JAX.

For an NHWC float32 image ``I`` in [0, 1] and its Gaussian blur ``B`` (kernel ``radius`` taps,
rounded up to odd, sigma from OpenCV's rule ``0.3 ((k - 1) / 2 - 1) + 0.8``, reflect padding):
``sharp = clip(I + weight (I - B), 0, 1)``, ``mask = [255 |I - B| > threshold]``, the mask is
blurred with the same kernel to ``m``, and the result is ``m sharp + (1 - m) I`` (BasicSR's
``USMSharp``). The 2-D kernel is separable, so the blur runs as two 1-D passes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.errors import InputError

__all__ = ["gaussian_kernel_cv2", "usm_sharpen"]


def gaussian_kernel_cv2(ksize: int, sigma: float = 0.0) -> np.ndarray:
  """OpenCV's ``getGaussianKernel(ksize, sigma)`` as float64 ``[ksize]`` (sigma <= 0: derived)."""
  if sigma <= 0:
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
  x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
  g = np.exp(-x * x / (2 * sigma * sigma))
  return g / g.sum()


def _reflect(n: int, p: int) -> np.ndarray:
  i = np.arange(-p, n + p)
  i = np.where(i < 0, -i, i)
  return np.where(i > n - 1, 2 * (n - 1) - i, i)


def _blur(img, g):
  """Separable reflect-padded blur of NHWC ``img`` with the 1-D kernel ``g`` (numpy)."""
  _, h, w, c = img.shape
  k = len(g)
  p = k // 2
  if p >= h or p >= w:
    raise InputError(f"image {h}x{w} is too small for the {k}-tap USM blur (needs more than "
                     f"{p} pixels a side)", field="img")
  padded = img[:, _reflect(h, p)][:, :, _reflect(w, p)]
  hi = jax.lax.Precision.HIGHEST
  kh = jnp.tile(jnp.asarray(g, jnp.float32)[:, None, None, None], (1, 1, 1, c))
  kw = jnp.tile(jnp.asarray(g, jnp.float32)[None, :, None, None], (1, 1, 1, c))
  dn = ("NHWC", "HWIO", "NHWC")
  out = jax.lax.conv_general_dilated(padded, kh, (1, 1), "VALID", dimension_numbers=dn,
                                     feature_group_count=c, precision=hi)
  return jax.lax.conv_general_dilated(out, kw, (1, 1), "VALID", dimension_numbers=dn,
                                      feature_group_count=c, precision=hi)


def usm_sharpen(img, *, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> jax.Array:
  """Unsharp-masks ``img [N, H, W, C]`` float32 in [0, 1] (module doc); H, W > radius // 2."""
  if radius % 2 == 0:
    radius += 1
  g = gaussian_kernel_cv2(radius)
  img = jnp.asarray(img, jnp.float32)
  residual = img - _blur(img, g)
  mask = (jnp.abs(residual) * 255 > threshold).astype(jnp.float32)
  soft = _blur(mask, g)
  sharp = jnp.clip(img + weight * residual, 0.0, 1.0)
  return soft * sharp + (1 - soft) * img
