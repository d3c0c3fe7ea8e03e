"""SRResNet (the SRGAN generator) and MSRResNet (BasicSR's version without BN).

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``,
``s`` in {2, 3, 4, 8}. RGB models (``channels=3``). Both output linear values
(no tanh), meant to be in [0, 1].
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


def _bn(name: str, train: bool) -> nn.BatchNorm:
  # PyTorch BatchNorm2d defaults: momentum 0.1 (flax 0.9), eps 1e-5.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class SRResNetBlock(nn.Module):
  """``x + BN(conv2(PReLU(BN(conv1(x)))))`` (SRGAN residual block)."""
  num_feat: int = 64

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    y = _bn('bn1', train)(common.Conv(self.num_feat, 3, name='conv1')(x))
    y = common.PReLU(per_channel=False, name='prelu')(y)
    y = _bn('bn2', train)(common.Conv(self.num_feat, 3, name='conv2')(y))
    return x + y


class SRResNet(nn.Module):
  """SRResNet, the SRGAN generator (with batch normalisation).

  C. Ledig, L. Theis, F. Huszar, J. Caballero, A. Cunningham, A. Acosta,
  A. Aitken, A. Tejani, J. Totz, Z. Wang, W. Shi, "Photo-Realistic Single
  Image Super-Resolution Using a Generative Adversarial Network", CVPR 2017.

  ``conv_first 9x9 -> PReLU -> 16 x [conv-BN-PReLU-conv-BN + skip] -> conv_body
  -> BN + skip -> per x2 stage: conv(256) -> depth_to_space(2) -> PReLU ->
  conv_last 9x9``. PReLU has one shared slope (``torch.nn.PReLU()``); x3 uses one
  x3 stage. Call with ``train=True`` and ``mutable=['batch_stats']`` to train.
  Submodules: ``conv_first``, ``prelu``, ``body_0`` ... (``conv1``, ``bn1``,
  ``prelu``, ``conv2``, ``bn2``), ``conv_body``, ``bn_body``, ``upsample``,
  ``conv_last``.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_block: int = 16

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    common.check_channels(x, self.channels, 'SRResNet')
    x = common.Conv(self.num_feat, 9, name='conv_first')(x)
    x = common.PReLU(per_channel=False, name='prelu')(x)
    y = x
    for i in range(self.num_block):
      y = SRResNetBlock(self.num_feat, name=f'body_{i}')(y, train)
    x = x + _bn('bn_body', train)(common.Conv(self.num_feat, 3, name='conv_body')(y))
    x = common.Upsampler(self.scale, self.num_feat, activation='prelu', name='upsample')(x)
    return common.Conv(self.channels, 9, name='conv_last')(x)


class MSRResNet(nn.Module):
  """Modified SRResNet (no batch normalisation), as in BasicSR / ESRGAN.

  X. Wang, K. Yu, S. Wu, J. Gu, Y. Liu, C. Dong, Y. Qiao, C. C. Loy, "ESRGAN:
  Enhanced Super-Resolution Generative Adversarial Networks", ECCV Workshops
  2018 (the SRResNet of Ledig et al., CVPR 2017, with BN removed).

  ``conv_first -> lrelu(0.1) -> 16 ResidualBlockNoBN -> per stage: upconv ->
  depth_to_space -> lrelu -> conv_hr -> lrelu -> conv_last``, plus the bilinear
  upscaled input (global residual). x4: 1,517,571 parameters. Submodule names
  are BasicSR's: ``conv_first``, ``body_0`` ... (``conv1``, ``conv2``),
  ``upconv1``, ``upconv2`` (``upconv3`` at x8), ``conv_hr``, ``conv_last``.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_block: int = 16

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'MSRResNet')
    lrelu = common.activation_fn('lrelu0.1')
    base = common.Upsample(self.scale, 'bilinear', name='base')(x)
    y = lrelu(common.Conv(self.num_feat, 3, name='conv_first')(x))
    for i in range(self.num_block):
      y = common.ResidualBlock(self.num_feat, name=f'body_{i}')(y)
    for i, r in enumerate(common.upsample_stages(self.scale)):
      y = common.Conv(self.num_feat * r * r, 3, name=f'upconv{i + 1}')(y)
      y = lrelu(common.depth_to_space(y, r))
    y = lrelu(common.Conv(self.num_feat, 3, name='conv_hr')(y))
    return common.Conv(self.channels, 3, name='conv_last')(y) + base
