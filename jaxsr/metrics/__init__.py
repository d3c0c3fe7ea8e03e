"""Image-quality metrics as published super-resolution tables compute them.

Contract:
  * Images are ``[..., H, W, C]`` (any leading batch dimensions), float. Pass ``max_value=1.0``
    for images in [0, 1] (the library convention) or ``max_value=255.0`` for values in grey
    levels (the published protocol computes on 0..255 Y planes). Results have the leading
    batch shape: one value per image.
  * ``psnr``: ``10 * log10(max_value**2 / MSE)`` over H, W and C (base-10 logarithm).
  * ``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), 'valid' filtering,
    K1 = 0.01, K2 = 0.03, L = ``max_value``, population statistics; the mean of the SSIM map,
    averaged over channels (as BasicSR and MATLAB's ``ssim`` on one channel do).
  * ``rgb_to_y`` (defined in ``jaxsr.color``, offered here beside the metrics it feeds): MATLAB
    ``rgb2ycbcr`` luma, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1],
    returned divided by 255 (range [16/255, 235/255]) so it stays in the [0, 1] convention.
    Not rounded; see ``quantize``.
  * Everything is pure, jit-able and vmap-able; convolutions and reductions run in float32
    with ``Precision.HIGHEST`` and a per-image centring that keeps SSIM within 1e-5 of a
    float64 reference (and in float64 when ``jax_enable_x64`` is on and float64 is passed).
  * Perceptual measures live in submodules and are re-exported here: ``niqe`` /
    ``load_niqe_params`` (no-reference NIQE, ``jaxsr.metrics._niqe``) and ``lpips``
    (LPIPS v0.1, AlexNet/VGG16 trunk, ``jaxsr.metrics._lpips``; its weights are read by
    ``jaxsr.convert.load_lpips_params``). Their contracts are in those modules' docstrings.
  * The ``*_masked`` variants take the true ``height``/``width`` of images zero-padded at the
    bottom/right to a common bucket shape, so that evaluation of differently sized images
    compiles once per bucket rather than once per image. They equal the unpadded metric.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.color import rgb_to_y
from jaxsr.metrics._lpips import LPIPS_CHANNELS, lpips
from jaxsr.metrics._niqe import load_niqe_params, niqe

__all__ = [
    "psnr", "ssim", "ssim_map", "rgb_to_y", "crop_border", "quantize", "psnr_masked",
    "ssim_masked", "gaussian_window", "niqe", "load_niqe_params", "lpips", "LPIPS_CHANNELS",
]

_HIGHEST = jax.lax.Precision.HIGHEST


def crop_border(images: jax.Array, crop: int) -> jax.Array:
  """Removes ``crop`` pixels from each side of the two spatial axes of ``[..., H, W, C]``."""
  if crop < 0:
    raise ValueError(f"crop_border: crop must be >= 0, got {crop}")
  if crop == 0:
    return images
  return images[..., crop:-crop, crop:-crop, :]


def quantize(images: jax.Array, *, max_value: float = 1.0) -> jax.Array:
  """Clips to [0, max_value] and rounds to the 8-bit grid (half away from zero, as MATLAB).

  Args:
    images: float, any shape, in [0, max_value].
    max_value: 1.0 for [0, 1] images (rounded to multiples of 1/255) or 255.0.

  Returns:
    Same shape and dtype, on the grid ``k * max_value / 255``.
  """
  levels = 255.0 / max_value
  return jnp.floor(jnp.clip(images, 0.0, max_value) * levels + 0.5) / levels


def _mse(x, y, axes=(-3, -2, -1)):
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  return jnp.mean(jnp.square(x - y), axis=axes)


def psnr(x: jax.Array, y: jax.Array, *, max_value: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image.

  Args:
    x, y: ``[..., H, W, C]`` float in [0, max_value].
    max_value: the peak value L (1.0 or 255.0).

  Returns:
    ``[...]``: ``10 log10(L^2 / mean((x - y)^2))``; ``inf`` for identical images.
  """
  return 10.0 * jnp.log10(max_value**2 / _mse(x, y))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  """Normalised 1-D Gaussian (the separable factor of the SSIM window), float64 ``[size]``."""
  r = np.arange(size, dtype=np.float64) - (size - 1) / 2
  w = np.exp(-(r * r) / (2 * sigma * sigma))
  return w / w.sum()


def _filter_valid(images: jax.Array, window: np.ndarray) -> jax.Array:
  """Separable 'valid' filtering of ``[B, H, W, C]`` with a 1-D window, per channel.

  Written as a sum of shifted slices (one multiply-add per tap and pixel), which XLA fuses
  into a single loop; a grouped ``lax.conv`` is several times slower on CPU.
  """
  size = window.shape[0]
  h, w = images.shape[1], images.shape[2]
  taps = [float(v) for v in window]
  rows = sum(taps[k] * images[:, k: k + h - size + 1] for k in range(size))
  return sum(taps[k] * rows[:, :, k: k + w - size + 1] for k in range(size))


def ssim_map(x: jax.Array, y: jax.Array, *, max_value: float = 1.0, filter_size: int = 11,
             filter_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
             center: jax.Array | None = None) -> jax.Array:
  """The SSIM map of Wang et al. 2004 with a Gaussian window and 'valid' filtering.

  Args:
    x, y: ``[..., H, W, C]`` float in [0, max_value], H and W >= ``filter_size``.
    max_value: the dynamic range L.
    filter_size, filter_sigma: the Gaussian window (11, 1.5 in the published protocol).
    k1, k2: stability constants.
    center: optional ``[..., 1, 1, C]`` value subtracted before the second moments are
      filtered (variance and covariance are shift-invariant); defaults to the per-image,
      per-channel mean, which keeps float32 cancellation errors far below 1e-5 SSIM.

  Returns:
    ``[..., H - filter_size + 1, W - filter_size + 1, C]``.
  """
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  dtype = jnp.result_type(x.dtype, y.dtype, jnp.float32)
  x = x.astype(dtype)
  y = y.astype(dtype)
  batch = x.shape[:-3]
  h, w, c = x.shape[-3:]
  if y.shape != x.shape:
    raise ValueError(f"ssim: shapes differ: {x.shape} vs {y.shape}")
  if h < filter_size or w < filter_size:
    raise ValueError(f"ssim: images of {h}x{w} are smaller than the {filter_size}x{filter_size} window")
  x = x.reshape((-1, h, w, c))
  y = y.reshape((-1, h, w, c))
  if center is None:
    cx = jnp.mean(x, axis=(1, 2), keepdims=True)
    cy = jnp.mean(y, axis=(1, 2), keepdims=True)
  else:
    cx = cy = jnp.broadcast_to(jnp.asarray(center, dtype), batch + (1, 1, c)).reshape(-1, 1, 1, c)
  window = gaussian_window(filter_size, filter_sigma)
  xc = x - cx
  yc = y - cy
  stacked = jnp.concatenate([xc, yc, xc * xc, yc * yc, xc * yc], axis=-1)
  filtered = _filter_valid(stacked, window)
  mx, my, sxx, syy, sxy = jnp.split(filtered, 5, axis=-1)
  sigma_x = sxx - mx * mx
  sigma_y = syy - my * my
  sigma_xy = sxy - mx * my
  mu_x = mx + cx
  mu_y = my + cy
  c1 = (k1 * max_value) ** 2
  c2 = (k2 * max_value) ** 2
  num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
  den = (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)
  out = num / den
  return out.reshape(batch + out.shape[1:])


def ssim(x: jax.Array, y: jax.Array, *, max_value: float = 1.0, filter_size: int = 11,
         filter_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Structural similarity per image (mean of the SSIM map over H, W and C).

  Args:
    x, y: ``[..., H, W, C]`` float in [0, max_value].
    max_value, filter_size, filter_sigma, k1, k2: see ``ssim_map``.

  Returns:
    ``[...]`` float in [-1, 1].
  """
  m = ssim_map(x, y, max_value=max_value, filter_size=filter_size, filter_sigma=filter_sigma,
               k1=k1, k2=k2)
  return jnp.mean(m, axis=(-3, -2, -1))


def _valid_mask(shape_hw, height, width):
  rows = jnp.arange(shape_hw[0])
  cols = jnp.arange(shape_hw[1])
  height = jnp.asarray(height)[..., None, None]
  width = jnp.asarray(width)[..., None, None]
  return (rows[:, None] < height) & (cols[None, :] < width)


def psnr_masked(x: jax.Array, y: jax.Array, height: jax.Array, width: jax.Array, *,
                max_value: float = 1.0) -> jax.Array:
  """``psnr`` of images zero-padded at the bottom/right; ``height``/``width`` are ``[...]`` ints.

  Only the top-left ``height x width`` region of each image counts.
  """
  x = jnp.asarray(x)
  mask = _valid_mask(x.shape[-3:-1], height, width)[..., None]
  sq = jnp.where(mask, jnp.square(x - jnp.asarray(y)), 0.0)
  count = (jnp.asarray(height) * jnp.asarray(width) * x.shape[-1]).astype(sq.dtype)
  return 10.0 * jnp.log10(max_value**2 / (jnp.sum(sq, axis=(-3, -2, -1)) / count))


def ssim_masked(x: jax.Array, y: jax.Array, height: jax.Array, width: jax.Array, *,
                max_value: float = 1.0, filter_size: int = 11, filter_sigma: float = 1.5,
                k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """``ssim`` of images zero-padded at the bottom/right; ``height``/``width`` are ``[...]`` ints.

  Only windows that lie wholly inside the top-left ``height x width`` region count, so the
  result equals ``ssim`` of the unpadded image.
  """
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  valid = _valid_mask(x.shape[-3:-1], height, width)[..., None]
  count = jnp.asarray(height) * jnp.asarray(width)
  # Centre on the mean of the true region, so the zero padding does not move the centre.
  total = jnp.sum(jnp.where(valid, x + y, 0.0), axis=(-3, -2), keepdims=True)
  center = total / (2 * count.astype(x.dtype))[..., None, None, None]
  m = ssim_map(x, y, max_value=max_value, filter_size=filter_size, filter_sigma=filter_sigma,
               k1=k1, k2=k2, center=center)
  mask = _valid_mask(m.shape[-3:-1], jnp.asarray(height) - filter_size + 1,
                     jnp.asarray(width) - filter_size + 1)[..., None]
  n = ((jnp.asarray(height) - filter_size + 1) * (jnp.asarray(width) - filter_size + 1)
       * m.shape[-1]).astype(m.dtype)
  return jnp.sum(jnp.where(mask, m, 0.0), axis=(-3, -2, -1)) / n
