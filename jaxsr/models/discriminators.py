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


def _upsample2(x: Array) -> Array:
  """Bilinear x2 upsampling with half-pixel centres (PyTorch ``align_corners=False``)."""
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), method='bilinear', antialias=False)


class UNetDiscriminatorSN(nn.Module):
  """Real-ESRGAN's U-Net discriminator with spectral normalisation (per-pixel logits).

  X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training Real-World Blind
  Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021 (section 3.3).

  Contract: ``[N, H, W, C]`` float32 in [0, 1] (H, W multiples of 8) ->
  logits ``[N, H, W, 1]`` (one "realness" logit per pixel; the GAN losses
  average over every element, as BasicSR's ``GANLoss`` does).

  Structure: ``conv0`` (3x3, bias) -> three 4x4 stride-2 convs ``conv1..3``
  (features x2, x4, x8) -> three stages of bilinear x2 upsampling and a 3x3
  conv ``conv4..6`` (x4, x2, x1), each added to the encoder feature of the
  same size when ``skip_connection`` -> ``conv7``, ``conv8`` (3x3) ->
  ``conv9`` (3x3, 1 output, bias). LeakyReLU 0.2 after every conv but the
  last. ``conv1`` ... ``conv8`` have no bias and are spectrally normalised
  (``flax.linen.SpectralNorm``, one power iteration per call).

  Spectral-norm state: each normalised conv keeps its power-iteration vector
  ``u`` (``[1, features]``) and last ``sigma`` in the ``'batch_stats'``
  collection (``sn{k}`` -> ``conv{k}/kernel/u``, ``conv{k}/kernel/sigma``),
  so the GAN task's ``mutable=['batch_stats']`` carries it like batch-norm
  statistics. ``train=True``: one power iteration from the stored ``u``, the
  kernel divided by the resulting ``sigma`` and the new ``u`` stored (apply
  with ``mutable=['batch_stats']``); this is PyTorch's ``spectral_norm`` in
  training mode exactly (``u`` is in the output-channel space in both; no
  gradient flows through ``u`` and ``v``). ``train=False``: the same
  iteration but nothing is stored, so evaluation is a pure function of the
  variables (PyTorch's eval mode instead reuses the stored ``u`` and ``v``
  without iterating: after training, both are converged and agree closely).
  """
  channels: int = 3
  num_feat: int = 64
  skip_connection: bool = True

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    lrelu = common.activation_fn('lrelu')
    f = self.num_feat

    def sn_conv(features: int, kernel: int, stride: int, k: int) -> Array:
      conv = common.Conv(features, kernel, strides=stride, padding=1, use_bias=False,
                         name=f'conv{k}')
      return lambda y: nn.SpectralNorm(conv, name=f'sn{k}')(y, update_stats=train)

    x0 = lrelu(common.Conv(f, 3, padding=1, name='conv0')(x))
    x1 = lrelu(sn_conv(f * 2, 4, 2, 1)(x0))
    x2 = lrelu(sn_conv(f * 4, 4, 2, 2)(x1))
    x3 = lrelu(sn_conv(f * 8, 4, 2, 3)(x2))
    y = lrelu(sn_conv(f * 4, 3, 1, 4)(_upsample2(x3)))
    if self.skip_connection:
      y = y + x2
    y = lrelu(sn_conv(f * 2, 3, 1, 5)(_upsample2(y)))
    if self.skip_connection:
      y = y + x1
    y = lrelu(sn_conv(f, 3, 1, 6)(_upsample2(y)))
    if self.skip_connection:
      y = y + x0
    y = lrelu(sn_conv(f, 3, 1, 7)(y))
    y = lrelu(sn_conv(f, 3, 1, 8)(y))
    return common.Conv(1, 3, padding=1, name='conv9')(y)
