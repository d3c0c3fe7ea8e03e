"""RCAN: residual channel attention network.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``,
``s`` in {2, 3, 4, 8}. RGB model (``channels=3``).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


class RCAB(nn.Module):
  """Residual channel attention block: ``x + res_scale * CA(conv2(relu(conv1(x))))``."""
  num_feat: int = 64
  reduction: int = 16
  res_scale: float = 1.

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = common.Conv(self.num_feat, 3, name='conv1')(x)
    y = common.Conv(self.num_feat, 3, name='conv2')(nn.relu(y))
    y = common.ChannelAttention(self.num_feat, self.reduction, name='ca')(y)
    return x + self.res_scale * y if self.res_scale != 1 else x + y


class ResidualGroup(nn.Module):
  """``x + conv(RCAB_{n-1}(... RCAB_0(x)))`` (short skip connection)."""
  num_feat: int = 64
  num_block: int = 20
  reduction: int = 16
  res_scale: float = 1.

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = x
    for i in range(self.num_block):
      y = RCAB(self.num_feat, self.reduction, self.res_scale, name=f'block_{i}')(y)
    return x + common.Conv(self.num_feat, 3, name='conv')(y)


class RCAN(nn.Module):
  """Residual Channel Attention Network (residual in residual).

  Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu, "Image Super-Resolution
  Using Very Deep Residual Channel Attention Networks", ECCV 2018.

  ``sub_mean -> conv_first -> [num_group ResidualGroup -> conv_after_body] +
  long skip -> upsample -> conv_last -> add_mean``; each group has
  ``num_block`` RCABs with channel attention (reduction 16). Reference: 10
  groups x 20 blocks, 64 features: 15,592,355 parameters at x4.

  Channel attention pools over the whole image, so tiled inference is not
  exactly whole-image inference for RCAN (see ``jaxsr.inference``).
  Submodules: ``conv_first``, ``body_0`` ... (``block_0`` ... with ``conv1``,
  ``conv2``, ``ca/conv_down``, ``ca/conv_up``; and ``conv``),
  ``conv_after_body``, ``upsample``, ``conv_last``.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_group: int = 10
  num_block: int = 20
  reduction: int = 16
  res_scale: float = 1.
  img_range: float = 255.
  rgb_mean: tuple[float, ...] = common.DIV2K_RGB_MEAN

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'RCAN')
    x = common.MeanShift(self.rgb_mean, self.img_range, -1)(x)
    x = common.Conv(self.num_feat, 3, name='conv_first')(x)
    y = x
    for i in range(self.num_group):
      y = ResidualGroup(self.num_feat, self.num_block, self.reduction, self.res_scale,
                        name=f'body_{i}')(y)
    x = x + common.Conv(self.num_feat, 3, name='conv_after_body')(y)
    x = common.Upsampler(self.scale, self.num_feat, name='upsample')(x)
    x = common.Conv(self.channels, 3, name='conv_last')(x)
    return common.MeanShift(self.rgb_mean, self.img_range, +1)(x)
