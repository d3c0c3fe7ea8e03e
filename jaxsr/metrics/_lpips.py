"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet or VGG16 trunk, as a pure JAX function.

Contract:
  * ``lpips(x, y, *, params, net='alex')``: ``x``, ``y`` are ``[..., H, W, 3]`` RGB float in
    [0, 1] (the library convention; LPIPS itself works on [-1, 1], the function maps
    ``2 x - 1`` first, as the ``lpips`` package's ``normalize=True``); returns ``[...]``, the
    distance per image pair (0 for identical images, larger is more different).
  * The computation of the ``lpips`` package's ``LPIPS(net=..., version='0.1')`` forward:
    its scaling layer (shift ``(-.030, -.088, -.188)``, scale ``(.458, .448, .450)``), the
    torchvision trunk up to five ReLU taps (AlexNet relu1..5; VGG16 relu1_2, 2_2, 3_3, 4_3,
    5_3), each tap unit-normalised over channels (``f / (|f| + 1e-10)``), the squared
    difference weighted by the learned 1x1 "lin" layer, the spatial mean, summed over taps.
  * ``params`` is ``{'backbone': [{'kernel': [kh, kw, in, out], 'bias': [out]}, ...],
    'linear': [[C1], ..., [C5]]}`` (5 convolutions for AlexNet, 13 for VGG16);
    ``jaxsr.convert.load_lpips_params`` builds it from the torchvision and ``lpips`` files.
  * float32, ``Precision.HIGHEST`` convolutions; jit-able (``net`` static), batched over the
    leading dimensions; compiles once per input shape. Images need H, W >= 32 (AlexNet's
    stride and pools) or 16 (VGG16).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from jaxsr.errors import InputError

__all__ = ["lpips", "LPIPS_NETS", "LPIPS_CHANNELS"]

_HIGHEST = jax.lax.Precision.HIGHEST

# Per net: the trunk as ('conv', stride, padding) / ('pool',) / ('tap',) steps (a ReLU follows
# every conv), and the channels of the five taps.
_ALEX = (("conv", 4, 2), ("tap",), ("pool",), ("conv", 1, 2), ("tap",), ("pool",),
         ("conv", 1, 1), ("tap",), ("conv", 1, 1), ("tap",), ("conv", 1, 1), ("tap",))
_VGG = (("conv", 1, 1), ("conv", 1, 1), ("tap",), ("pool2",),
        ("conv", 1, 1), ("conv", 1, 1), ("tap",), ("pool2",),
        ("conv", 1, 1), ("conv", 1, 1), ("conv", 1, 1), ("tap",), ("pool2",),
        ("conv", 1, 1), ("conv", 1, 1), ("conv", 1, 1), ("tap",), ("pool2",),
        ("conv", 1, 1), ("conv", 1, 1), ("conv", 1, 1), ("tap",))
LPIPS_NETS = {"alex": _ALEX, "vgg": _VGG}
LPIPS_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _trunk(x: jax.Array, backbone, steps) -> list[jax.Array]:
  """The five ReLU taps of ``[N, H, W, 3]``."""
  taps = []
  convs = iter(backbone)
  for step in steps:
    if step[0] == "conv":
      layer = next(convs)
      _, stride, pad = step
      x = jax.lax.conv_general_dilated(
          x, jnp.asarray(layer["kernel"], x.dtype), (stride, stride), [(pad, pad), (pad, pad)],
          dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HIGHEST)
      x = jax.nn.relu(x + jnp.asarray(layer["bias"], x.dtype))
    elif step[0] == "tap":
      taps.append(x)
    else:  # torch MaxPool2d, no padding, floor mode: AlexNet 3/2, VGG 2/2
      size = 3 if step[0] == "pool" else 2
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, 2, 2, 1),
                                "VALID")
  return taps


def lpips(x: jax.Array, y: jax.Array, *, params: Mapping[str, Any], net: str = "alex") -> jax.Array:
  """LPIPS v0.1 distance per image pair (see the module docstring).

  Args:
    x, y: ``[..., H, W, 3]`` RGB float in [0, 1], the same shape.
    params: ``{'backbone': [...], 'linear': [...]}`` for ``net``.
    net: ``'alex'`` or ``'vgg'``.

  Returns:
    ``[...]`` float32.

  Raises:
    InputError: unknown ``net``, params of another net, mismatched or non-RGB shapes.
  """
  if net not in LPIPS_NETS:
    raise InputError(f"expected one of {sorted(LPIPS_NETS)}, got {net!r}", field="net")
  steps = LPIPS_NETS[net]
  backbone, linear = params["backbone"], params["linear"]
  n_conv = sum(s[0] == "conv" for s in steps)
  if len(backbone) != n_conv or len(linear) != 5:
    raise InputError(f"params hold {len(backbone)} convolutions and {len(linear)} linear "
                     f"layers; LPIPS-{net} needs {n_conv} and 5", field="params")
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  if x.shape != y.shape or x.ndim < 3 or x.shape[-1] != 3:
    raise InputError(f"expected two [..., H, W, 3] images of one shape, got {x.shape} and "
                     f"{y.shape}", field="images")
  dtype = jnp.result_type(x.dtype, y.dtype, jnp.float32)
  batch = x.shape[:-3]
  both = jnp.concatenate([x.reshape((-1,) + x.shape[-3:]), y.reshape((-1,) + y.shape[-3:])])
  both = both.astype(dtype)
  both = (2 * both - 1 - jnp.asarray(_SHIFT, dtype)) / jnp.asarray(_SCALE, dtype)
  total = 0.0
  for tap, w in zip(_trunk(both, backbone, steps), linear):
    tap = tap / (jnp.sqrt(jnp.sum(tap * tap, axis=-1, keepdims=True)) + 1e-10)
    fx, fy = jnp.split(tap, 2)
    weighted = jnp.sum(jnp.square(fx - fy) * jnp.asarray(w, dtype).reshape(-1), axis=-1)
    total = total + jnp.mean(weighted, axis=(-2, -1))
  return jnp.asarray(total).reshape(batch)
