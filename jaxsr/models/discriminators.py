"""GAN discriminators: SRGAN's and ESRGAN's (BasicSR VGGStyleDiscriminator).

Contract: image ``[N, H, W, C]`` float32 in [0, 1] (HR or SR) -> logits
``[N, 1]`` float32 (no sigmoid; the losses apply it). Both contain batch
normalisation: call with ``train=True`` and ``mutable=['batch_stats']`` when
training.

Patch size. The papers flatten the last feature map into a dense layer, which
ties the parameters to the training patch size (SRGAN 96x96 -> 6x6x512,
ESRGAN 128x128 -> 4x4x512). With ``pooling='flatten'`` (the default, the
papers' structure) the dense layer's input size is taken from the input given
at ``init`` (Flax infers it), so any patch size that is a multiple of 16
(SRGAN) or 32 (ESRGAN) works, but a model initialised at one size only
applies to that size. ``pooling='avg'`` replaces the flatten by global average
pooling, so one set of parameters accepts any input size (at least 16/32
pixels).

Flattening is in NHWC ``(h, w, c)`` order; a converter from PyTorch (which
flattens ``(c, h, w)``) permutes the rows of ``dense1``/``linear1``'s kernel.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import common

Array = jax.Array


def _bn(name: str, train: bool) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def _pool(x: Array, pooling: str) -> Array:
  if pooling == 'flatten':
    return x.reshape(x.shape[0], -1)
  if pooling == 'avg':
    return jnp.mean(x, axis=(1, 2))
  raise ValueError(f"unknown pooling {pooling!r}")


class SRGANDiscriminator(nn.Module):
  """SRGAN discriminator: 8 3x3 convs (BN, LeakyReLU 0.2) -> dense 1024 -> dense 1.

  C. Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
  Generative Adversarial Network", CVPR 2017.

  Filters 64, 64, 128, 128, 256, 256, 512, 512 with strides 1, 2, 1, 2, ...
  (padding 1); no BN after the first conv; convs followed by BN have no bias.
  Submodules ``conv0`` ... ``conv7``, ``bn1`` ... ``bn7``, ``dense1``,
  ``dense2``.
  """
  channels: int = 3
  num_feat: int = 64
  pooling: str = 'flatten'
  dense_feat: int = 1024

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    lrelu = common.activation_fn('lrelu')
    x = lrelu(common.Conv(self.num_feat, 3, name='conv0')(x))
    f = self.num_feat
    for i, (mult, stride) in enumerate(
        [(1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)], start=1):
      x = common.Conv(f * mult, 3, strides=stride, padding=1, use_bias=False, name=f'conv{i}')(x)
      x = lrelu(_bn(f'bn{i}', train)(x))
    x = _pool(x, self.pooling)
    x = lrelu(nn.Dense(self.dense_feat, name='dense1')(x))
    return nn.Dense(1, name='dense2')(x)


class VGGStyleDiscriminator(nn.Module):
  """ESRGAN's discriminator (BasicSR ``VGGStyleDiscriminator``, "VGG128").

  X. Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial
  Networks", ECCV Workshops 2018.

  Five stages ``k``: ``conv{k}_0`` (3x3, stride 1) and ``conv{k}_1`` (4x4,
  stride 2, padding 1), each followed by BN ``bn{k}_0``/``bn{k}_1`` (except
  after ``conv0_0``, which has a bias) and LeakyReLU 0.2; filters 64, 128,
  256, 512, 512; then ``linear1`` (100) -> LeakyReLU -> ``linear2`` (1). Names
  are BasicSR's.
  """
  channels: int = 3
  num_feat: int = 64
  pooling: str = 'flatten'

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    lrelu = common.activation_fn('lrelu')
    f = self.num_feat
    for k, mult in enumerate([1, 2, 4, 8, 8]):
      if k == 0:
        x = lrelu(common.Conv(f, 3, name='conv0_0')(x))
      else:
        x = common.Conv(f * mult, 3, use_bias=False, name=f'conv{k}_0')(x)
        x = lrelu(_bn(f'bn{k}_0', train)(x))
      x = common.Conv(f * mult, 4, strides=2, padding=1, use_bias=False, name=f'conv{k}_1')(x)
      x = lrelu(_bn(f'bn{k}_1', train)(x))
    x = _pool(x, self.pooling)
    x = lrelu(nn.Dense(100, name='linear1')(x))
    return nn.Dense(1, name='linear2')(x)
