"""RRDBNet, the ESRGAN generator.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``,
``s`` in {2, 3, 4, 8}. RGB model (``channels=3``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import common

Array = jax.Array


class ResidualDenseBlock(nn.Module):
  """Five densely connected 3x3 convs; ``x + 0.2 * conv5(...)`` (LeakyReLU 0.2)."""
  num_feat: int = 64
  num_grow_ch: int = 32
  res_scale: float = 0.2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    lrelu = common.activation_fn('lrelu')
    feats = [x]
    for i in range(1, 5):
      y = common.Conv(self.num_grow_ch, 3, name=f'conv{i}')(jnp.concatenate(feats, -1))
      feats.append(lrelu(y))
    y = common.Conv(self.num_feat, 3, name='conv5')(jnp.concatenate(feats, -1))
    return x + self.res_scale * y


class RRDB(nn.Module):
  """Residual-in-residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""
  num_feat: int = 64
  num_grow_ch: int = 32
  res_scale: float = 0.2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = x
    for i in range(1, 4):
      y = ResidualDenseBlock(self.num_feat, self.num_grow_ch, self.res_scale, name=f'rdb{i}')(y)
    return x + self.res_scale * y


class PixelUnshuffle(nn.Module):
  """``[N, r*H, r*W, C] -> [N, H, W, r*r*C]`` in PyTorch's ``F.pixel_unshuffle`` channel order.

  Output channel ``c*r*r + dy*r + dx`` holds input pixel ``(r*h + dy, r*w + dx)`` of colour
  ``c`` (CRD order), so a PyTorch ``conv_first`` that follows it needs no permutation.
  """
  factor: int

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Pointwise at the block level; the padded size must be a multiple of ``factor``."""
    return common.SpatialRule(common.POINTWISE, scale=1. / self.factor)

  def __call__(self, x: Array) -> Array:
    n, hs, ws, c = x.shape
    r = self.factor
    if hs % r or ws % r:
      raise ValueError(f"PixelUnshuffle({r}) needs a size divisible by {r}, got {hs}x{ws}")
    x = x.reshape(n, hs // r, r, ws // r, r, c)
    x = x.transpose(0, 1, 3, 5, 2, 4)  # n, h, w, c, dy, dx
    return x.reshape(n, hs // r, ws // r, c * r * r)


class RRDBNet(nn.Module):
  """RRDBNet (ESRGAN generator, no batch normalisation).

  X. Wang, K. Yu, S. Wu, J. Gu, Y. Liu, C. Dong, Y. Qiao, C. C. Loy, "ESRGAN:
  Enhanced Super-Resolution Generative Adversarial Networks", ECCV Workshops
  2018.

  ``conv_first -> [23 RRDB -> conv_body] + skip -> per stage: nearest
  upsampling -> conv_up{i} -> lrelu -> conv_hr -> lrelu -> conv_last``;
  64 features, growth 32, residual scaling 0.2, LeakyReLU 0.2. x4 (two x2
  stages, the published model): 16,697,987 parameters; x8 adds ``conv_up3``;
  x2 uses one x2 stage and x3 one x3 stage. ``unshuffle=2`` (x2) or ``4`` (x1)
  is BasicSR's / Real-ESRGAN's variant (RealESRGAN_x2plus): the input is first
  rearranged by :class:`PixelUnshuffle` into ``unshuffle**2 * C`` channels at
  ``1/unshuffle`` resolution, then the network upsamples by
  ``scale * unshuffle`` (always x4 in BasicSR); the input size must then be a
  multiple of ``unshuffle``. Submodule names are
  BasicSR's keys with ``.`` -> ``_`` for list indices: ``conv_first``,
  ``body_0/rdb1/conv1`` ..., ``conv_body``, ``conv_up1``, ``conv_up2``,
  ``conv_hr``, ``conv_last``.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_block: int = 23
  num_grow_ch: int = 32
  res_scale: float = 0.2
  unshuffle: int = 1

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'RRDBNet')
    lrelu = common.activation_fn('lrelu')
    if self.unshuffle not in (1, 2, 4):
      raise ValueError(f"RRDBNet unshuffle must be 1, 2 or 4, got {self.unshuffle}")
    if self.scale * self.unshuffle == 1:
      raise ValueError("RRDBNet x1 is BasicSR's pixel-unshuffle variant: pass unshuffle=4")
    if self.unshuffle > 1:
      x = PixelUnshuffle(self.unshuffle, name='unshuffle')(x)
    feat = common.Conv(self.num_feat, 3, name='conv_first')(x)
    y = feat
    for i in range(self.num_block):
      y = RRDB(self.num_feat, self.num_grow_ch, self.res_scale, name=f'body_{i}')(y)
    feat = feat + common.Conv(self.num_feat, 3, name='conv_body')(y)
    for i, r in enumerate(common.upsample_stages(self.scale * self.unshuffle)):
      feat = common.Upsample(r, 'nearest', name=f'up{i + 1}')(feat)
      feat = lrelu(common.Conv(self.num_feat, 3, name=f'conv_up{i + 1}')(feat))
    feat = lrelu(common.Conv(self.num_feat, 3, name='conv_hr')(feat))
    return common.Conv(self.channels, 3, name='conv_last')(feat)
