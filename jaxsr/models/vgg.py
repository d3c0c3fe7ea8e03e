"""VGG19 feature extractor for perceptual (feature-reconstruction) losses.

Contract: image ``[N, H, W, 3]`` float32 in [0, 1] (or [-1, 1] with
``range_norm=True``) -> ``dict[str, Array]`` of the requested layers, each
``[N, H / 2**k, W / 2**k, C]``.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015. SRGAN (Ledig et al., CVPR 2017) uses features
after activation; ESRGAN (Wang et al., ECCVW 2018) uses ``conv5_4`` before
activation.

Layer names and torchvision ``vgg19().features`` indices (``TORCHVISION_INDEX``;
a converter loads ``features.{N}.weight [out, in, 3, 3]`` into
``conv{b}_{i}/kernel`` with ``permute(2, 3, 1, 0)`` and ``features.{N}.bias``
into ``conv{b}_{i}/bias``)::

  conv1_1 0  relu1_1 1  conv1_2 2  relu1_2 3  pool1 4
  conv2_1 5  relu2_1 6  conv2_2 7  relu2_2 8  pool2 9
  conv3_1 10 relu3_1 11 conv3_2 12 relu3_2 13 conv3_3 14 relu3_3 15 conv3_4 16 relu3_4 17 pool3 18
  conv4_1 19 relu4_1 20 conv4_2 21 relu4_2 22 conv4_3 23 relu4_3 24 conv4_4 25 relu4_4 26 pool4 27
  conv5_1 28 relu5_1 29 conv5_2 30 relu5_2 31 conv5_3 32 relu5_3 33 conv5_4 34 relu5_4 35 pool5 36

``conv*`` entries are pre-activation, ``relu*`` post-activation. Only the
layers up to the deepest requested one are built (and have parameters).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import common

Array = jax.Array

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BLOCKS = (2, 2, 4, 4, 4)
_WIDTHS = (64, 128, 256, 512, 512)


def _layer_names() -> list[str]:
  names = []
  for b, (n, _) in enumerate(zip(_BLOCKS, _WIDTHS), start=1):
    for i in range(1, n + 1):
      names += [f'conv{b}_{i}', f'relu{b}_{i}']
    names.append(f'pool{b}')
  return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
TORCHVISION_INDEX: dict[str, int] = {n: i for i, n in enumerate(LAYER_NAMES)}


def resolve_layer(name: str, *, before_activation: bool) -> str:
  """'5_4' -> 'conv5_4' (before activation) or 'relu5_4'; full names pass through."""
  if name in TORCHVISION_INDEX:
    return name
  full = ('conv' if before_activation else 'relu') + name
  if full not in TORCHVISION_INDEX:
    raise ValueError(f"unknown VGG19 layer {name!r}; known: {LAYER_NAMES}")
  return full


class VGG19(nn.Module):
  """VGG19 convolutional features (no classifier).

  Attributes:
    layers: names to return: full names (``'conv5_4'``, ``'relu2_2'``,
      ``'pool4'``) or short ``'5_4'`` resolved with ``before_activation``.
    before_activation: how short names resolve (True: ``conv5_4``, the
      ESRGAN choice; False: ``relu5_4``, the SRGAN choice).
    use_input_norm: normalise with the ImageNet mean/std (torchvision
      weights expect it).
    range_norm: input is in [-1, 1]; map it to [0, 1] first.
  """
  layers: Sequence[str] = ('5_4',)
  before_activation: bool = True
  use_input_norm: bool = True
  range_norm: bool = False

  @nn.compact
  def __call__(self, x: Array) -> dict[str, Array]:
    wanted = {resolve_layer(n, before_activation=self.before_activation) for n in self.layers}
    last = max(TORCHVISION_INDEX[n] for n in wanted)
    if self.range_norm:
      x = (x + 1.) / 2.
    if self.use_input_norm:
      x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    out = {}
    for name in LAYER_NAMES[:last + 1]:
      if name.startswith('conv'):
        b = int(name[4])
        x = common.Conv(_WIDTHS[b - 1], 3, name=name)(x)
      elif name.startswith('relu'):
        x = nn.relu(x)
      else:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      if name in wanted:
        out[name] = x
    return out
