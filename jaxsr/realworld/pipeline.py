"""Real-ESRGAN's second-order degradation pipeline on device (static shapes, per-sample draws).

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
ICCVW 2021; the order of operations is BasicSR's ``RealESRGANModel.feed_data``:

  x = usm_sharpen(hr)                            (``options.sharpen_input``)
  stage 1: blur(kernel1) -> resize(scale1, mode1) -> noise1 -> clamp -> jpeg(quality1)
  stage 2: blur(kernel2) with prob. second_blur_prob -> resize to (H/s * scale2, mode2)
           -> noise2 -> one of (equally likely)
             resize to H/s (mode3) -> sinc -> clamp -> jpeg(quality2)
             clamp -> jpeg(quality2) -> resize to H/s (mode3) -> sinc
  lr = clamp(round(255 x), 0, 255) / 255

``draw_params(key, hr_shape, scale=..., options=...)`` draws one sample's ``Draws``;
``degrade(hr, draws, ...)`` applies them to one ``[H, W, 3]`` image; ``degrade_batch`` vmaps
both over ``jax.random.split(key, N)``, so every sample draws its own parameters and the batch
depends only on ``key`` (not on the device count: shard the batch after or before, the per-sample
keys are the same).

Static shapes: the random-size intermediate images live in fixed buffers (``buffer_shapes``),
zero outside their valid extent, which is a traced ``(h, w)``. Resizes are per-axis matrices
built on device for the traced sizes (``resampling.resize_matrix``), blurs reflect at the traced
edges (``kernels.filter2d(valid=...)``), the Poisson value count and the noise are masked to the
valid extent, and the JPEG blocks past the valid extent are zero, as DiffJPEG's zero padding.
Differences from BasicSR: the random stream (JAX's, not NumPy's/PyTorch's); sizes
``floor(H * scale)`` are computed in float32 (PyTorch: float64; they can differ by one pixel when
the product is within one float32 ulp below an integer); a stage-1 output narrower than the
kernel's half width reflects with clamped indices where PyTorch raises.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsr.errors import InputError
from jaxsr.realworld import kernels, noise, resampling
from jaxsr.realworld.jpeg_codec import jpeg
from jaxsr.realworld.options import RealESRGANOptions
from jaxsr.realworld.sharpen import usm_sharpen

__all__ = ["Draws", "draw_params", "buffer_shapes", "degrade", "degrade_batch",
           "paired_random_crop"]

DEFAULT_OPTIONS = RealESRGANOptions()


class Draws(NamedTuple):
  """One sample's random choices (arrays; stack them along axis 0 for a batch).

  Attributes:
    kernel1, kernel2, sinc_kernel: float32 ``[K, K]`` blur kernels (``sinc_kernel`` is the pulse
      when there is no final sinc filter).
    second_blur: bool, whether stage 2 blurs.
    scale1: float32 resize factor of stage 1 (1: keep); mode1: int32 resize mode.
    gaussian1: bool (else Poisson); sigma1: Gaussian std in 0..255 units; poisson1: Poisson scale;
      gray1: bool, grey noise; noise_key1: the noise key; quality1: float32 JPEG quality.
    scale2, mode2, gaussian2, sigma2, poisson2, gray2, noise_key2, quality2: stage 2 (``scale2``
      multiplies the LR size ``H / scale``).
    sinc_first: bool, resize+sinc before the last JPEG; mode3: int32 mode of the final resize.
  """
  kernel1: jax.Array
  kernel2: jax.Array
  sinc_kernel: jax.Array
  second_blur: jax.Array
  scale1: jax.Array
  mode1: jax.Array
  gaussian1: jax.Array
  sigma1: jax.Array
  poisson1: jax.Array
  gray1: jax.Array
  noise_key1: jax.Array
  quality1: jax.Array
  scale2: jax.Array
  mode2: jax.Array
  gaussian2: jax.Array
  sigma2: jax.Array
  poisson2: jax.Array
  gray2: jax.Array
  noise_key2: jax.Array
  quality2: jax.Array
  sinc_first: jax.Array
  mode3: jax.Array


def _lerp(u, low, high):
  return low + u * (high - low)


def _resize_scale(u_kind, u, probs, scale_range):
  kind = kernels._pick(u_kind, probs)  # pylint: disable=protected-access
  return jnp.where(kind == 0, _lerp(u, 1.0, scale_range[1]),
                   jnp.where(kind == 1, _lerp(u, scale_range[0], 1.0), jnp.float32(1.0)))


def _mode(u, options):
  names = jnp.asarray([resampling.MODES.index(m) for m in options.resize_modes], jnp.int32)
  return names[kernels._pick(u, [1.0] * len(options.resize_modes))]  # pylint: disable=protected-access


def draw_params(key, *, options: RealESRGANOptions = DEFAULT_OPTIONS) -> Draws:
  """Draws one sample's ``Draws`` from ``key`` with Real-ESRGAN's distributions.

  All scalar choices come from one uniform vector (few RNG calls keep the compile short).
  """
  o = options
  k_u, k_n1, k_n2 = jax.random.split(key, 3)
  u = jax.random.uniform(k_u, (50,))
  size = o.max_kernel_size
  kernel1 = kernels.random_kernel(
      u[0:10], kernel_sizes=o.kernel_sizes, kernel_probs=o.kernel_probs, sinc_prob=o.sinc_prob,
      blur_sigma=o.blur_sigma, betag_range=o.betag_range, betap_range=o.betap_range, size=size)
  kernel2 = kernels.random_kernel(
      u[10:20], kernel_sizes=o.kernel_sizes, kernel_probs=o.kernel_probs2,
      sinc_prob=o.sinc_prob2, blur_sigma=o.blur_sigma2, betag_range=o.betag_range2,
      betap_range=o.betap_range2, size=size)
  k3 = jnp.asarray(o.kernel_sizes, jnp.int32)[
      kernels._pick(u[20], [1.0] * len(o.kernel_sizes))]  # pylint: disable=protected-access
  sinc = kernels.random_sinc_kernel(u[21], k=k3, size=size, omega_range=o.final_sinc_omega)
  sinc = jnp.where(u[22] < o.final_sinc_prob, sinc, kernels.identity_kernel(size))
  return Draws(
      kernel1=kernel1, kernel2=kernel2, sinc_kernel=sinc,
      second_blur=u[23] < o.second_blur_prob,
      scale1=_resize_scale(u[24], u[25], o.resize_probs, o.resize_range), mode1=_mode(u[26], o),
      gaussian1=u[27] < o.gaussian_noise_prob,
      sigma1=_lerp(u[28], *o.noise_range), poisson1=_lerp(u[29], *o.poisson_scale_range),
      gray1=u[30] < o.gray_noise_prob, noise_key1=k_n1,
      quality1=_lerp(u[31], *o.jpeg_range),
      scale2=_resize_scale(u[32], u[33], o.resize_probs2, o.resize_range2),
      mode2=_mode(u[34], o),
      gaussian2=u[35] < o.gaussian_noise_prob2,
      sigma2=_lerp(u[36], *o.noise_range2), poisson2=_lerp(u[37], *o.poisson_scale_range2),
      gray2=u[38] < o.gray_noise_prob2, noise_key2=k_n2,
      quality2=_lerp(u[39], *o.jpeg_range2),
      sinc_first=u[40] < 0.5, mode3=_mode(u[41], o))


def _round16(n: float) -> int:
  return int(math.ceil(n / 16)) * 16


def buffer_shapes(h: int, w: int, *, scale: int,
                  options: RealESRGANOptions = DEFAULT_OPTIONS) -> tuple[tuple[int, int], ...]:
  """Static buffer shapes ``((h1, w1), (h2, w2))`` of the stage-1 and stage-2 outputs."""
  up1 = max(1.0, options.resize_range[1])
  up2 = max(1.0, options.resize_range2[1])
  return ((_round16(h * up1 + 1), _round16(w * up1 + 1)),
          (_round16(h // scale * up2 + 1), _round16(w // scale * up2 + 1)))


def _noise(key, img, valid, gaussian, sigma, poisson_scale, gray):
  g = noise.add_gaussian_noise(key, img, sigma, gray, valid=valid)
  p = noise.add_poisson_noise(key, img, poisson_scale, gray, valid=valid)
  return jnp.where(gaussian, g, p)


def degrade(hr, draws: Draws, *, scale: int, options: RealESRGANOptions = DEFAULT_OPTIONS,
            sharpened: bool = False, round_output: bool = True, stages: list | None = None
            ) -> jax.Array:
  """Degrades one ``hr [H, W, 3]`` (H, W divisible by ``scale``) with fixed ``draws``.

  Args:
    hr: float32 ``[H, W, 3]`` in [0, 1].
    draws: one sample's ``Draws``.
    scale: the super-resolution factor (static).
    options: static options (buffer sizes and ``sharpen_input``).
    sharpened: ``hr`` is already USM-sharpened (``degrade_batch`` sharpens the whole batch).
    round_output: round to multiples of 1/255 (Real-ESRGAN); False returns the clamped value
      before that rounding (for comparisons).
    stages: optional list that receives ``(name, buffer, (h, w))`` after every step (the
      buffer is valid in ``[:h, :w]``), for pictures and debugging.

  Returns:
    float32 ``[H // scale, W // scale, 3]`` in [0, 1], multiples of 1/255.
  """
  h, w, _ = hr.shape
  lh, lw = h // scale, w // scale
  (b1h, b1w), (b2h, b2w) = buffer_shapes(h, w, scale=scale, options=options)
  x = hr.astype(jnp.float32)
  if options.sharpen_input and not sharpened:
    x = usm_sharpen(x[None], weight=options.usm_weight, radius=options.usm_radius,
                    threshold=options.usm_threshold)[0]
  log = (lambda name, img, v: stages.append((name, img, v))) if stages is not None else (
      lambda *_: None)
  log("input (USM)" if options.sharpen_input else "input", x, (h, w))
  # stage 1
  x = kernels.filter2d(x, draws.kernel1)
  log("blur 1", x, (h, w))
  v1 = (jnp.floor(h * draws.scale1).astype(jnp.int32),
        jnp.floor(w * draws.scale1).astype(jnp.int32))
  x = resampling.resize_valid(x, (h, w), v1, out_buf=(b1h, b1w), mode=draws.mode1,
                          scale=draws.scale1)
  log("resize 1", x, v1)
  x = _noise(draws.noise_key1, x, v1, draws.gaussian1, draws.sigma1, draws.poisson1, draws.gray1)
  log("noise 1", x, v1)
  x = jpeg(jnp.clip(x, 0.0, 1.0), draws.quality1)
  log("JPEG 1", x, v1)
  # stage 2
  x = jnp.where(draws.second_blur, kernels.filter2d(x, draws.kernel2, valid=v1), x)
  log("blur 2", x, v1)
  v2 = (jnp.floor(lh * draws.scale2).astype(jnp.int32),
        jnp.floor(lw * draws.scale2).astype(jnp.int32))
  x = resampling.resize_valid(x, v1, v2, out_buf=(b2h, b2w), mode=draws.mode2)
  log("resize 2", x, v2)
  x = _noise(draws.noise_key2, x, v2, draws.gaussian2, draws.sigma2, draws.poisson2, draws.gray2)
  log("noise 2", x, v2)
  # resize + sinc, then JPEG
  a = resampling.resize_valid(x, v2, (lh, lw), out_buf=(lh, lw), mode=draws.mode3)
  a = jpeg(jnp.clip(kernels.filter2d(a, draws.sinc_kernel), 0.0, 1.0), draws.quality2)
  # JPEG, then resize + sinc
  b = jpeg(jnp.clip(x, 0.0, 1.0), draws.quality2)
  b = resampling.resize_valid(b, v2, (lh, lw), out_buf=(lh, lw), mode=draws.mode3)
  b = kernels.filter2d(b, draws.sinc_kernel)
  out = jnp.where(draws.sinc_first, a, b)
  log("sinc+JPEG 2", out, (lh, lw))
  if not round_output:
    return jnp.clip(out, 0.0, 1.0)
  return jnp.clip(jnp.round(out * 255.0), 0, 255) / 255.0


def degrade_batch(key, hr, *, scale: int,
                  options: RealESRGANOptions = DEFAULT_OPTIONS) -> jax.Array:
  """Real-ESRGAN LR inputs for a batch ``hr [N, H, W, 3]`` -> ``[N, H/scale, W/scale, 3]``.

  Sample ``i`` uses ``draw_params(jax.random.split(key, N)[i])``. Jit with ``scale`` and
  ``options`` static. H and W must be divisible by ``scale`` and at least 22 (the blur).
  """
  if hr.ndim != 4 or hr.shape[-1] != 3 or hr.shape[1] % scale or hr.shape[2] % scale:
    raise InputError(f"must be [N, H, W, 3] with H, W divisible by {scale}, got "
                     f"{tuple(hr.shape)}", field="hr")
  n = hr.shape[0]
  x = jnp.asarray(hr, jnp.float32)
  if options.sharpen_input:
    x = usm_sharpen(x, weight=options.usm_weight, radius=options.usm_radius,
                    threshold=options.usm_threshold)
  draws = jax.vmap(lambda k: draw_params(k, options=options))(jax.random.split(key, n))
  return jax.vmap(lambda img, d: degrade(img, d, scale=scale, options=options,
                                         sharpened=True))(x, draws)


def paired_random_crop(key, hr, lr, *, lr_size: int, scale: int):
  """Aligned random crops: ``lr [N, h, w, C]`` -> ``lr_size`` squares, ``hr`` the matching
  ``scale * lr_size`` squares (LR pixel ``(i, j)`` covers HR ``[s i, s (i + 1))``), one offset
  per sample from ``jax.random.split(key, N)`` (BasicSR degrades a 400 px crop, then crops).
  """
  n, h, w = lr.shape[:3]
  if hr.shape[1] != h * scale or hr.shape[2] != w * scale or lr_size > min(h, w):
    raise InputError(f"hr {tuple(hr.shape)} / lr {tuple(lr.shape)} are not x{scale} pairs "
                     f"of at least {lr_size} LR pixels", field="lr_size")

  def one(k, hr_i, lr_i):
    k_top, k_left = jax.random.split(k)
    top = jax.random.randint(k_top, (), 0, h - lr_size + 1)
    left = jax.random.randint(k_left, (), 0, w - lr_size + 1)
    c_lr, c_hr = lr_i.shape[-1], hr_i.shape[-1]
    lr_c = jax.lax.dynamic_slice(lr_i, (top, left, 0), (lr_size, lr_size, c_lr))
    hr_c = jax.lax.dynamic_slice(hr_i, (top * scale, left * scale, 0),
                                 (lr_size * scale, lr_size * scale, c_hr))
    return hr_c, lr_c

  return jax.vmap(one)(jax.random.split(key, n), hr, lr)
