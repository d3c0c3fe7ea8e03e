"""waifu2x's cunet (x1 denoise, x2) and upconv_7 (x2) models.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> ``[N, s*h, s*w, C]``; ``CUNet`` has
``s`` in {1, 2} (x1: the denoise-only models), ``UpConv7`` ``s = 2``; RGB models
(``channels=3``). The ``train`` keyword is accepted and ignored.

Both are built from unpadded ('valid') convolutions and extend the image at its borders
first, as waifu2x does (``border='edge'``, replicate, by default; ``'reflect'`` is the
other choice): ``UpConv7`` by 7 pixels per side (six 3x3 convs and a 4x4 stride-2
transposed conv with padding 3 map ``h + 14`` to ``2h`` pixels), ``CUNet`` as described in
:mod:`jaxsr.models.realcugan` (x2: pad 18, the input extended to an even size; x1: pad
28, a multiple of 4); the result is cropped to ``s*h x s*w``.

Exactness: ``model.apply`` is the published network on the border-extended image for any
``h, w >= 1``. Both models declare the ``'true_size'`` spatial rule, so bucketed inference
(``jaxsr.inference.upscale``) equals exact-size inference to float rounding. Tiled
inference is exact for ``UpConv7`` with ``tile_overlap >= 14`` (receptive radius 7 LR
pixels) and not for ``CUNet`` (its squeeze-excitation blocks average over the whole image).

References: waifu2x, nagadomi (2015-2018), https://github.com/nagadomi/waifu2x: ``upconv_7``
(the "upconv_7_anime_style_art_rgb" and "upconv_7_photo" models, 2016) and ``cunet`` /
``upcunet`` (2018: U-Nets, O. Ronneberger et al., MICCAI 2015, with squeeze-excitation,
J. Hu et al., CVPR 2018); the ncnn ports of waifu2x-ncnn-vulkan (nihui).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from jaxsr.models import common
from jaxsr.models import realcugan

Array = jax.Array

UPCONV7_FEATURES = (16, 32, 64, 128, 128, 256)
UPCONV7_PAD = 7


class CUNet(nn.Module):
  """waifu2x's cunet: UNet1 -> UNet2 with a residual, x1 (denoise) or x2.

  The x2 network is the one Real-CUGAN's x2 model inherited (same layers and names:
  ``unet1``, ``unet2``); x1 ends UNet1 with a valid 3x3 conv instead of the transposed
  conv. See :mod:`jaxsr.models.realcugan` for borders and exactness.

  Attributes:
    scale: 1 or 2.
    channels: image channels (3).
    border: ``'edge'`` (waifu2x) or ``'reflect'``.
    num_feat: the U-Nets' base width (64 in the releases).
  """
  scale: int = 2
  channels: int = 3
  border: str = 'edge'
  num_feat: int = 64

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Emulates its own true-size borders; global SE means: infinite reach."""
    return common.SpatialRule(common.TRUE_SIZE, reach=np.inf, scale=self.scale)

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False,
               true_size: realcugan.TrueSize | None = None) -> Array:
    del train
    if self.scale not in (1, 2):
      raise ValueError(f"CUNet supports scales (1, 2), got {self.scale}")
    common.check_channels(x, self.channels, 'CUNet')
    return realcugan.cascade(x, scale=self.scale, channels=self.channels, mode=self.border,
                             true_size=true_size, num_feat=self.num_feat)


class UpConv7(nn.Module):
  """waifu2x's upconv_7: six valid 3x3 convs (16, 32, 64, 128, 128, 256; LeakyReLU 0.1),
  then a 4x4 stride-2 transposed conv (padding 3) to the image: ``h + 14 -> 2h``.

  Submodules ``conv1`` ... ``conv6``, ``conv7`` (the transposed conv).

  Attributes:
    scale: 2.
    channels: image channels (3).
    border: ``'edge'`` (waifu2x) or ``'reflect'``.
    features: the widths of the valid 3x3 convs (the releases' six); the border extension
      is one pixel per conv plus one for the transposed conv.
  """
  scale: int = 2
  channels: int = 3
  border: str = 'edge'
  features: tuple[int, ...] = UPCONV7_FEATURES

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Emulates its own true-size borders; reaches ``len(features) + 1`` (7) LR pixels."""
    return common.SpatialRule(common.TRUE_SIZE, reach=len(self.features) + 1, scale=self.scale)

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False,
               true_size: realcugan.TrueSize | None = None) -> Array:
    del train
    if self.scale != 2:
      raise ValueError(f"UpConv7 supports scale 2 only, got {self.scale}")
    common.check_channels(x, self.channels, 'UpConv7')
    _, h, w, _ = x.shape
    y, _ = realcugan.extend(x, pad=len(self.features) + 1, align=1, mode=self.border,
                            true_size=true_size)
    for i, f in enumerate(self.features):
      y = realcugan.lrelu(common.Conv(f, 3, padding='valid', name=f'conv{i + 1}')(y))
    y = common.ConvTranspose(self.channels, 4, strides=2, padding=3, name='conv7')(y)
    return realcugan.crop_to(y, 2 * h, 2 * w)
