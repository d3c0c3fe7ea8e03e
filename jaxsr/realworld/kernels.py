"""Blur kernels of Real-ESRGAN and a reflect-padded 2-D filter, in JAX (jit-able, vmappable).

Every kernel is a float32 ``[size, size]`` array that sums to 1, centred; ``size`` is static
(21 in the pipeline) and the *effective* kernel size ``k`` (odd, ``k <= size``) may be a traced
value: taps farther than ``(k - 1) / 2`` from the centre are zero, which is exactly BasicSR's
``np.pad`` of a ``k x k`` kernel to ``size x size`` (a zero-padded, centred kernel filters the same
way as the small one). Coordinates follow BasicSR's ``mesh_grid``: ``x`` runs along columns,
``y`` along rows, both ``-(k-1)/2 .. (k-1)/2``.

The anisotropic covariance is ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T`` and, with
``q = g^T Sigma^-1 g``, the kernels are ``exp(-q / 2)`` (Gaussian), ``exp(-q^beta / 2)``
(generalised Gaussian) and ``1 / (1 + q^beta)`` (plateau), each normalised to sum 1. The
circular low-pass ("sinc") filter is ``omega J1(omega r) / (2 pi r)`` (``omega^2 / (4 pi)`` at
``r = 0``), normalised; J1 is evaluated by the trapezoidal rule on its integral representation
with an exactly reduced phase (``_sinc_numerator``).

``filter2d`` correlates an ``[H, W, C]`` image with one kernel after reflect padding (PyTorch's
``'reflect'``, the edge pixel not repeated; BasicSR's ``filter2D``); a dynamic valid extent
``(h, w)`` inside a larger static buffer is supported for the pipeline's variable-size stages.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.realworld.options import KERNEL_TYPES

__all__ = ["gaussian_kernel", "generalized_gaussian_kernel", "plateau_kernel",
           "circular_lowpass_kernel", "pad_kernel", "filter2d", "random_kernel",
           "random_sinc_kernel", "identity_kernel"]

_J1_POINTS = 96


def _grid(size: int, k):
  """Column/row offsets ``[size, size]`` and the mask of taps inside the ``k x k`` window."""
  ax = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  xx, yy = jnp.meshgrid(ax, ax)  # xx varies along columns
  half = (jnp.asarray(k, jnp.float32) - 1) / 2
  mask = (jnp.abs(xx) <= half) & (jnp.abs(yy) <= half)
  return xx, yy, mask


def _quadratic_form(xx, yy, sigma_x, sigma_y, theta):
  """``g^T Sigma^-1 g`` for the rotated covariance (closed-form inverse)."""
  sigma_x = jnp.asarray(sigma_x, jnp.float32)
  sigma_y = jnp.asarray(sigma_y, jnp.float32)
  c, s = jnp.cos(theta), jnp.sin(theta)
  a, b = 1 / sigma_x**2, 1 / sigma_y**2
  i11 = c * c * a + s * s * b
  i22 = s * s * a + c * c * b
  i12 = c * s * (a - b)
  return i11 * xx * xx + 2 * i12 * xx * yy + i22 * yy * yy


def _normalise(kernel, mask):
  kernel = jnp.where(mask, kernel, 0.0)
  return (kernel / jnp.sum(kernel)).astype(jnp.float32)


def gaussian_kernel(sigma_x, sigma_y=None, theta=0.0, *, k=21, size: int = 21) -> jax.Array:
  """Normalised (an)isotropic Gaussian; isotropic when ``sigma_y`` is None."""
  sigma_y = sigma_x if sigma_y is None else sigma_y
  xx, yy, mask = _grid(size, k)
  return _normalise(jnp.exp(-0.5 * _quadratic_form(xx, yy, sigma_x, sigma_y, theta)), mask)


def generalized_gaussian_kernel(sigma_x, sigma_y=None, theta=0.0, beta=1.0, *, k=21,
                                size: int = 21) -> jax.Array:
  """Normalised generalised Gaussian ``exp(-q^beta / 2)`` (``beta = 1``: Gaussian)."""
  sigma_y = sigma_x if sigma_y is None else sigma_y
  xx, yy, mask = _grid(size, k)
  q = _quadratic_form(xx, yy, sigma_x, sigma_y, theta)
  return _normalise(jnp.exp(-0.5 * jnp.power(q, beta)), mask)


def plateau_kernel(sigma_x, sigma_y=None, theta=0.0, beta=1.0, *, k=21,
                   size: int = 21) -> jax.Array:
  """Normalised plateau-shaped kernel ``1 / (1 + q^beta)``."""
  sigma_y = sigma_x if sigma_y is None else sigma_y
  xx, yy, mask = _grid(size, k)
  q = _quadratic_form(xx, yy, sigma_x, sigma_y, theta)
  return _normalise(1 / (jnp.power(q, beta) + 1), mask)


def _split12(x):
  """``x`` with its 12 low mantissa bits cleared (products of two such floats are exact)."""
  bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)
  return jax.lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFF000), jnp.float32)


def _split12_np(x: np.ndarray) -> np.ndarray:
  return (np.asarray(x, np.float32).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32)


_TWO_PI = 2 * math.pi
_P1 = float(_split12_np(np.float32(_TWO_PI)))
_P2 = float(np.float32(_TWO_PI - _P1))
_P3 = float(np.float32(_TWO_PI - _P1 - np.float64(np.float32(_TWO_PI - _P1))))


def _sinc_numerator(omega, r: np.ndarray) -> jax.Array:
  """``J1(omega r)`` for a static float64 radius grid ``r`` and a traced float32 ``omega``.

  J1 by the trapezoidal rule on ``(1 / 2 pi) int_0^2pi cos(t - x sin t) dt`` (periodic, exact to
  float32 with 96 nodes for ``x < 50``). The phase ``t - omega r sin t`` is formed without
  float32 rounding of the large product (split products, Cody-Waite reduction by 2 pi), so the
  error stays at the float32 level of J1 itself instead of growing with ``omega r``.
  """
  t = np.arange(_J1_POINTS) * (_TWO_PI / _J1_POINTS)
  c = r[..., None] * np.sin(t)  # float64 [size, size, N]
  c_hi = c.astype(np.float32)
  c_lo = (c - c_hi).astype(np.float32)
  ch = _split12_np(c_hi)
  cl = c_hi - ch
  t_hi = t.astype(np.float32)
  t_lo = (t - t_hi).astype(np.float32)
  omega = jnp.asarray(omega, jnp.float32)
  oh = _split12(omega)
  ol = omega - oh
  prod = oh * ch  # exact
  tail = oh * cl + ol * ch + ol * cl + omega * c_lo
  n = jnp.round(prod * (1 / _TWO_PI))
  reduced = (prod - n * _P1) - n * _P2  # prod - n * 2pi, exact to float32 of the remainder
  phase = (t_hi - reduced) + (t_lo + n * _P3 - tail)
  return jnp.mean(jnp.cos(phase), axis=-1)


def circular_lowpass_kernel(omega, *, k=21, size: int = 21) -> jax.Array:
  """The 2-D sinc filter with cutoff ``omega`` (radians, pi = Nyquist), normalised."""
  xx, yy, mask = _grid(size, k)
  ax = np.arange(size) - (size - 1) / 2
  r = np.sqrt(ax[None, :] ** 2 + ax[:, None] ** 2)
  safe_r = np.where(r > 0, r, 1.0)
  omega = jnp.asarray(omega, jnp.float32)
  kernel = omega * _sinc_numerator(omega, safe_r) / jnp.asarray(2 * math.pi * safe_r, jnp.float32)
  kernel = jnp.where(r > 0, kernel, omega**2 / (4 * math.pi))
  del xx, yy
  return _normalise(kernel, mask)


def identity_kernel(size: int = 21) -> jax.Array:
  """The pulse kernel (no blur)."""
  return jnp.zeros((size, size), jnp.float32).at[size // 2, size // 2].set(1.0)


def pad_kernel(kernel, size: int = 21) -> jax.Array:
  """Zero-pads an odd ``[k, k]`` kernel to ``[size, size]``, centred (static shapes)."""
  k = kernel.shape[0]
  if k % 2 != 1 or size % 2 != 1 or k > size:
    raise ValueError(f"kernel size {k} must be odd and <= {size}")
  p = (size - k) // 2
  return jnp.pad(jnp.asarray(kernel, jnp.float32), ((p, p), (p, p)))


def _reflect_index(n_out: int, pad: int, valid):
  """Source indices for PyTorch 'reflect' padding by ``pad`` of a length-``valid`` axis."""
  i = jnp.arange(n_out) - pad
  i = jnp.where(i < 0, -i, i)
  i = jnp.where(i > valid - 1, 2 * (valid - 1) - i, i)
  return jnp.clip(i, 0, jnp.maximum(valid - 1, 0))


def filter2d(img, kernel, *, valid=None) -> jax.Array:
  """Correlates ``img [H, W, C]`` with ``kernel [K, K]`` (K odd), reflect-padded, same size.

  Args:
    img: float32 ``[H, W, C]``.
    kernel: ``[K, K]``, applied to every channel.
    valid: optional (possibly traced) ``(h, w)``: only ``img[:h, :w]`` is the image; padding
      reflects at its edges and the output outside it is zero. Reflection needs ``K // 2 < h, w``
      (PyTorch raises otherwise; here indices are clamped instead).

  Returns:
    float32 ``[H, W, C]``.
  """
  h_buf, w_buf, c = img.shape
  k = kernel.shape[0]
  p = k // 2
  vh, vw = (h_buf, w_buf) if valid is None else valid
  rows = _reflect_index(h_buf + 2 * p, p, vh)
  cols = _reflect_index(w_buf + 2 * p, p, vw)
  padded = img[rows][:, cols]
  rhs = jnp.tile(kernel.astype(img.dtype)[:, :, None, None], (1, 1, 1, c))
  out = jax.lax.conv_general_dilated(
      padded[None], rhs, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=c, precision=jax.lax.Precision.HIGHEST)[0]
  if valid is not None:
    out = jnp.where((jnp.arange(h_buf)[:, None, None] < vh)
                    & (jnp.arange(w_buf)[None, :, None] < vw), out, 0.0)
  return out


def _lerp(u, low, high):
  """Maps a uniform draw ``u`` in [0, 1) to [low, high)."""
  return low + u * (high - low)


def _pick(u, probs):
  """The index drawn by the uniform ``u`` from the categorical ``probs`` (inverse CDF)."""
  cdf = jnp.cumsum(jnp.asarray(probs, jnp.float32))
  return jnp.minimum(jnp.sum(u * cdf[-1] >= cdf), len(probs) - 1)


def _beta(u_side, u, beta_range):
  """BasicSR's split draw: half the time in ``[low, 1)``, otherwise in ``[1, high)``."""
  return jnp.where(u_side < 0.5, _lerp(u, beta_range[0], 1.0), _lerp(u, 1.0, beta_range[1]))


def random_sinc_kernel(u, *, k, size: int = 21, omega_range=None) -> jax.Array:
  """A sinc kernel of effective size ``k`` from the uniform draw ``u`` in [0, 1).

  The cutoff is in ``omega_range``, by default [pi/3, pi] (k < 13) or [pi/5, pi] (BasicSR).
  """
  if omega_range is None:
    low = jnp.where(k < 13, math.pi / 3, math.pi / 5)
    omega = low + u * (math.pi - low)
  else:
    omega = _lerp(u, *omega_range)
  return circular_lowpass_kernel(omega, k=k, size=size)


def random_kernel(key, *, kernel_sizes, kernel_probs, sinc_prob, blur_sigma, betag_range,
                  betap_range, size: int = 21) -> jax.Array:
  """Real-ESRGAN's random blur kernel (as ``RealESRGANDataset``), zero-padded to ``size``.

  Draws the effective size from ``kernel_sizes``; with probability ``sinc_prob`` a sinc filter,
  otherwise a kernel type from ``KERNEL_TYPES`` with ``kernel_probs``, ``sigma_x, sigma_y`` in
  ``blur_sigma``, rotation in [-pi, pi) (isotropic types: ``sigma_y = sigma_x``, no rotation),
  generalised/plateau shapes from ``betag_range``/``betap_range`` (half the draws below 1).
  ``key`` may also be a float32 ``[10]`` vector of uniform draws (one call of the RNG).
  """
  u = key if getattr(key, "dtype", None) == jnp.float32 else jax.random.uniform(key, (10,))
  assert len(kernel_probs) == len(KERNEL_TYPES)
  k = jnp.asarray(kernel_sizes, jnp.int32)[_pick(u[0], [1.0] * len(kernel_sizes))]
  sx = _lerp(u[1], *blur_sigma)
  sy = _lerp(u[2], *blur_sigma)
  theta = _lerp(u[3], -math.pi, math.pi)
  bg = _beta(u[4], u[5], betag_range)
  bp = _beta(u[4], u[6], betap_range)
  candidates = jnp.stack([
      gaussian_kernel(sx, k=k, size=size),
      gaussian_kernel(sx, sy, theta, k=k, size=size),
      generalized_gaussian_kernel(sx, beta=bg, k=k, size=size),
      generalized_gaussian_kernel(sx, sy, theta, bg, k=k, size=size),
      plateau_kernel(sx, beta=bp, k=k, size=size),
      plateau_kernel(sx, sy, theta, bp, k=k, size=size),
      random_sinc_kernel(u[7], k=k, size=size),
  ])
  kind = jnp.where(u[8] < sinc_prob, len(KERNEL_TYPES), _pick(u[9], kernel_probs))
  return candidates[kind]
