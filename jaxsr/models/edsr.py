"""EDSR and EDSR-baseline.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``,
``s`` in {2, 3, 4, 8}. RGB model (``channels=3``).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


class EDSR(nn.Module):
  """Enhanced Deep Residual Network.

  B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, "Enhanced Deep Residual Networks
  for Single Image Super-Resolution", CVPR Workshops (NTIRE) 2017.

  ``sub_mean -> conv_first -> [num_block ResidualBlock (res_scale) -> conv_body]
  + skip -> upsample (conv -> depth_to_space per x2/x3 stage) -> conv_last ->
  add_mean``. EDSR: 256 features, 32 blocks, residual scaling 0.1 (43.09M
  parameters at x4); EDSR-baseline: 64 features, 16 blocks, no scaling
  (1,517,571 at x4). x8 uses three x2 stages.

  The MeanShift follows BasicSR: the body sees ``(x - rgb_mean) * img_range``
  with ``img_range=255``, which is what the published weights expect.
  Submodules (BasicSR names): ``conv_first``, ``body_0`` ... (each ``conv1``,
  ``conv2``), ``conv_after_body``, ``upsample`` (``conv_0``, ...),
  ``conv_last``.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_block: int = 16
  res_scale: float = 1.
  img_range: float = 255.
  rgb_mean: tuple[float, ...] = common.DIV2K_RGB_MEAN

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'EDSR')
    x = common.MeanShift(self.rgb_mean, self.img_range, -1)(x)
    x = common.Conv(self.num_feat, 3, name='conv_first')(x)
    y = x
    for i in range(self.num_block):
      y = common.ResidualBlock(self.num_feat, self.res_scale, name=f'body_{i}')(y)
    x = x + common.Conv(self.num_feat, 3, name='conv_after_body')(y)
    x = common.Upsampler(self.scale, self.num_feat, name='upsample')(x)
    x = common.Conv(self.channels, 3, name='conv_last')(x)
    return common.MeanShift(self.rgb_mean, self.img_range, +1)(x)
