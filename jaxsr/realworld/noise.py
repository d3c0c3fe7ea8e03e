"""Gaussian and Poisson (shot) noise of Real-ESRGAN, per image, in JAX.

Images are float32 ``[H, W, 3]`` in [0, 1]; batch with ``jax.vmap`` (one key per sample).

Gaussian: ``noise = sigma / 255 * n`` with ``n ~ N(0, 1)`` drawn per pixel and channel (colour)
or once per pixel and shared by the channels (``gray``).

Poisson (BasicSR's ``generate_poisson_noise_pt``): the image is rounded to 8 bits, ``v`` is the
number of distinct 8-bit values in it rounded up to a power of two, and
``noise = scale * (Poisson(v x) / v - x)`` on the rounded image ``x``. ``gray`` uses the luma
``0.2989 R + 0.587 G + 0.114 B`` (torchvision's ``rgb_to_grayscale``) and shares its noise across
channels. The distinct values are counted with a 256-bin histogram, so it stays jit-able.

``add_*`` adds the noise and clips to [0, 1] (``clip=True, rounds=False`` as Real-ESRGAN).
A ``valid=(h, w)`` extent restricts the value count and the noise to ``img[:h, :w]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["gaussian_noise", "poisson_noise", "add_gaussian_noise", "add_poisson_noise",
           "GRAY_WEIGHTS"]

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _valid_mask(shape, valid):
  if valid is None:
    return jnp.ones(shape[:2] + (1,), bool)
  return ((jnp.arange(shape[0])[:, None, None] < valid[0])
          & (jnp.arange(shape[1])[None, :, None] < valid[1]))


def gaussian_noise(key, shape, sigma, gray) -> jax.Array:
  """``[H, W, 3]`` noise of standard deviation ``sigma / 255``; ``gray`` (traced bool) shares it.

  One draw ``n = normal(key, (H, W, 4))``: channels 0..2 are the colour noise, channel 3 the
  grey noise.
  """
  n = jax.random.normal(key, tuple(shape[:2]) + (4,), jnp.float32) * (sigma / 255.0)
  return jnp.where(gray, jnp.broadcast_to(n[..., 3:], n[..., :3].shape), n[..., :3])


def _levels(x, mask):
  """``2^ceil(log2(#distinct 8-bit values of x[mask]))`` of a rounded image ``x``."""
  bins = jnp.round(x * 255.0).astype(jnp.int32)
  present = jnp.zeros((256,), jnp.int32).at[bins.reshape(-1)].max(
      jnp.broadcast_to(mask, x.shape).reshape(-1).astype(jnp.int32))
  count = jnp.maximum(jnp.sum(present), 1).astype(jnp.float32)
  return jnp.exp2(jnp.ceil(jnp.log2(count)))


def poisson_noise(key, img, scale, gray, *, valid=None) -> jax.Array:
  """Real-ESRGAN's Poisson noise for ``img [H, W, 3]`` (module doc); ``gray`` a traced bool.

  The colour counts are ``poisson(split(key)[0], lam [H, W, 3])``, the grey counts
  ``poisson(split(key)[1], lam [H, W, 1])`` (two calls: JAX's Poisson sampler for rates >= 10
  couples the elements of one call, so one joint call could not be replayed per channel group).
  """
  k_color, k_gray = jax.random.split(key)
  mask = _valid_mask(img.shape, valid)
  rgb = jnp.clip(jnp.round(img * 255.0), 0, 255) / 255.0
  w = jnp.asarray(GRAY_WEIGHTS, jnp.float32)
  luma = img[..., 0:1] * w[0] + img[..., 1:2] * w[1] + img[..., 2:3] * w[2]
  luma = jnp.clip(jnp.round(luma * 255.0), 0, 255) / 255.0

  def shot(k, x):
    vals = _levels(x, mask)
    lam = jnp.where(mask, x * vals, 0.0)
    return jax.random.poisson(k, lam, lam.shape).astype(jnp.float32) / vals - x

  color, grey = shot(k_color, rgb), shot(k_gray, luma)
  noise = jnp.where(gray, jnp.broadcast_to(grey, rgb.shape), color)
  return jnp.where(mask, noise * scale, 0.0)


def add_gaussian_noise(key, img, sigma, gray=False, *, valid=None) -> jax.Array:
  """``clip(img + gaussian_noise(key, img.shape, sigma, gray), 0, 1)``."""
  noise = jnp.where(_valid_mask(img.shape, valid), gaussian_noise(key, img.shape, sigma, gray), 0)
  return jnp.clip(img + noise, 0.0, 1.0)


def add_poisson_noise(key, img, scale, gray=False, *, valid=None) -> jax.Array:
  """``clip(img + poisson_noise(key, img, scale, gray), 0, 1)``."""
  return jnp.clip(img + poisson_noise(key, img, scale, gray, valid=valid), 0.0, 1.0)
