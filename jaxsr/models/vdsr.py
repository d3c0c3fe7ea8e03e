"""VDSR: very deep residual network on the bicubic-upscaled image.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]`` (any
integer ``s``). The MATLAB bicubic upscale happens inside; with
``upsample=False`` the model takes the upscaled image ``[N, H, W, C]`` and
returns ``[N, H, W, C]``. A Y-channel model in its paper (``channels=1``).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


class VDSR(nn.Module):
  """VDSR: 20 3x3 conv layers (64 filters, ReLU) predicting the residual.

  J. Kim, J. K. Lee, K. M. Lee, "Accurate Image Super-Resolution Using Very
  Deep Convolutional Networks", CVPR 2016.

  ``SR = bicubic(LR) + f(bicubic(LR))``; zero padding keeps the size. 665,921
  parameters on Y. Submodules ``conv_0`` ... ``conv_{depth-1}``.

  Attributes:
    scale: upscaling factor (one model may serve several scales).
    channels: 1 (Y, as in the paper) or 3.
    depth: number of conv layers (20).
    num_feat: filters per hidden layer (64).
    upsample: do the bicubic upscale inside (True) or take upscaled input.
  """
  scale: int = 2
  channels: int = 1
  depth: int = 20
  num_feat: int = 64
  upsample: bool = True

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'VDSR')
    if self.upsample:
      x = common.Upsample(self.scale, 'bicubic', name='upsample')(x)
    y = x
    for i in range(self.depth - 1):
      y = nn.relu(common.Conv(self.num_feat, 3, name=f'conv_{i}')(y))
    y = common.Conv(self.channels, 3, name=f'conv_{self.depth - 1}')(y)
    return x + y
