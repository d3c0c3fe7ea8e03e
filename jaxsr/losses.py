"""Training losses: pure functions of arrays, jit-able, mean-reduced unless stated.

Contract: images are ``[N, H, W, C]`` float in [0, 1]; every loss returns a scalar (the mean
over all elements) unless it says otherwise. Losses know nothing of models.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["charbonnier", "l1", "mse", "pixel_loss"]


def l1(x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean absolute error ``mean(|x - y|)`` (EDSR, RCAN, RRDB)."""
  return jnp.mean(jnp.abs(x - y))


def mse(x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean squared error ``mean((x - y)^2)`` (SRCNN, FSRCNN, ESPCN, VDSR)."""
  return jnp.mean(jnp.square(x - y))


def charbonnier(x: jax.Array, y: jax.Array, *, eps: float = 1e-3) -> jax.Array:
  """Charbonnier (smooth L1) ``mean(sqrt((x - y)^2 + eps^2))`` (LapSRN)."""
  return jnp.mean(jnp.sqrt(jnp.square(x - y) + eps * eps))


_PIXEL = {"l1": l1, "mse": mse, "l2": mse, "charbonnier": charbonnier}


def pixel_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The pixel loss called ``name``: 'l1', 'mse' (or 'l2'), 'charbonnier'."""
  try:
    return _PIXEL[name]
  except KeyError:
    raise ValueError(f"unknown pixel loss {name!r}; expected one of {sorted(_PIXEL)}") from None
