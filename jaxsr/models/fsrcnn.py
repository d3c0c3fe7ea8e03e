"""FSRCNN and FSRCNN-s: fast SRCNN with a learned final upscaling.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]`` for any
integer ``s >= 1``. Y-channel models in their paper (``channels=1``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import common

Array = jax.Array


def deconv_to_subpixel(kernel: np.ndarray, scale: int, *, padding: int = 4) -> np.ndarray:
  """Rewrites a transposed-conv kernel as an equivalent sub-pixel conv kernel.

  Args:
    kernel: ``[K, K, Cin, C]`` of :class:`~jaxsr.models.common.ConvTranspose`
      with ``strides=scale``, ``padding`` and ``output_padding=scale - 1``.
    scale: the stride ``s``.
    padding: the transposed conv's padding (FSRCNN: 4).

  Returns:
    ``[k, k, Cin, C*s*s]`` (odd ``k``, zero 'same' padding, DCR channel order)
    such that ``depth_to_space(conv(x), s) + bias`` equals the transposed
    convolution with that ``bias``.
  """
  return common.transposed_to_subpixel_kernel(np.asarray(kernel), scale, padding)


class FSRCNN(nn.Module):
  """FSRCNN(d, s, m): conv5x5(d) -> shrink 1x1(s) -> m x conv3x3(s) -> expand 1x1(d) -> head.

  C. Dong, C. C. Loy, X. Tang, "Accelerating the Super-Resolution
  Convolutional Neural Network", ECCV 2016.

  Every conv but the head is followed by a per-channel PReLU; zero 'same'
  padding. FSRCNN is (56, 12, 4), FSRCNN-s (32, 5, 1).

  Heads:
    * ``'deconv'`` (the paper): 9x9 transposed conv with stride ``scale``, as
      PyTorch ``ConvTranspose2d(d, C, 9, stride=s, padding=4,
      output_padding=s-1)``; submodule ``deconv`` (parameters in the
      transposed-conv layout, computed as the equivalent sub-pixel conv, see
      :class:`~jaxsr.models.common.ConvTranspose`). FSRCNN(56,12,4) on Y has
      12,809 parameters with this head at every scale.
    * ``'subpixel'``: conv ``k x k`` to ``C*s*s`` channels without bias ->
      depth_to_space(s) -> + one bias per output channel (submodule ``head``,
      parameter ``head_bias [C]``). ``subpixel_kernel=None`` picks
      ``ceil(9 / s)``, the same parameter count and cost class as the
      deconvolution (x3: 3x3, again 12,809 parameters); the OpenCV
      dnn_superres models use ``subpixel_kernel=1`` (8,777 parameters at x3).
      :func:`deconv_to_subpixel` converts a deconvolution kernel into the
      smallest centred sub-pixel kernel that reproduces it exactly (x2: 5x5,
      x3: 5x5 because PyTorch's ``padding=4`` alignment reaches LR pixels
      ``i-1 .. i+2``, x4: 3x3).

  Submodules: ``extract``, ``shrink``, ``map_0`` ... ``map_{m-1}``, ``expand``
  and PReLUs ``<name>_prelu``.
  """
  scale: int = 3
  channels: int = 1
  d: int = 56
  s: int = 12
  m: int = 4
  head: str = 'deconv'
  subpixel_kernel: int | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'FSRCNN')
    r = self.scale

    def conv_prelu(y, feats, k, name):
      y = common.Conv(feats, k, name=name)(y)
      return common.PReLU(name=f'{name}_prelu')(y)

    x = conv_prelu(x, self.d, 5, 'extract')
    x = conv_prelu(x, self.s, 1, 'shrink')
    for i in range(self.m):
      x = conv_prelu(x, self.s, 3, f'map_{i}')
    x = conv_prelu(x, self.d, 1, 'expand')
    if self.head == 'deconv':
      return common.ConvTranspose(self.channels, 9, strides=r, padding=4,
                                  output_padding=r - 1, name='deconv')(x)
    if self.head == 'subpixel':
      k = self.subpixel_kernel or math.ceil(9 / r)
      y = common.Conv(self.channels * r * r, k, use_bias=False, name='head')(x)
      y = common.depth_to_space(y, r)
      return y + self.param('head_bias', nn.initializers.zeros, (self.channels,), jnp.float32)
    raise ValueError(f"unknown head {self.head!r}")
