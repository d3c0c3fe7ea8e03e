"""SRCNN: the first CNN for single-image super-resolution (pre-upsampling).

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``. The
MATLAB bicubic upscale (:func:`jaxsr.models.common.upscale_fn`) happens inside
the model; with ``upsample=False`` the model instead takes the already
upscaled image ``[N, H, W, C]`` and returns ``[N, H, W, C]`` (this is what the
official SRCNN weights were run on). A Y-channel model in its paper
(``channels=1``).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


class SRCNN(nn.Module):
  """SRCNN: conv f1 -> ReLU -> conv f2 -> ReLU -> conv f3 (64 and 32 filters).

  C. Dong, C. C. Loy, K. He, X. Tang, "Image Super-Resolution Using Deep
  Convolutional Networks", IEEE TPAMI 38(2), 2016 (and ECCV 2014).

  Reference configurations are 9-1-5, 9-3-5 and 9-5-5 (``f2`` = 1, 3, 5);
  9-5-5 on Y has 57,281 parameters. Submodules ``conv1``, ``conv2``, ``conv3``.

  Attributes:
    scale: upscaling factor (any integer >= 1).
    channels: image channels (1 = Y as in the paper, or 3).
    f1, f2, f3: kernel sizes.
    n1, n2: filters of the first two layers.
    padding: ``'edge'`` (replicate; the official MATLAB test code's 'same'
      filtering), ``'zero'`` or ``'valid'`` (training as in the paper; output
      smaller by ``f1 + f2 + f3 - 3``).
    upsample: do the bicubic upscale inside (True) or take upscaled input.
  """
  scale: int = 3
  channels: int = 1
  f1: int = 9
  f2: int = 5
  f3: int = 5
  n1: int = 64
  n2: int = 32
  padding: str = 'edge'
  upsample: bool = True

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'SRCNN')
    if self.upsample:
      x = common.Upsample(self.scale, 'bicubic', name='upsample')(x)
    x = nn.relu(common.Conv(self.n1, self.f1, padding=self.padding, name='conv1')(x))
    x = nn.relu(common.Conv(self.n2, self.f2, padding=self.padding, name='conv2')(x))
    return common.Conv(self.channels, self.f3, padding=self.padding, name='conv3')(x)
