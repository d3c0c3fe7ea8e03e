"""ESPCN: efficient sub-pixel convolutional network.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]`` for any
integer ``s >= 1``. A Y-channel model in its paper (``channels=1``).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsr.models import common

Array = jax.Array


class ESPCN(nn.Module):
  """ESPCN: conv5x5(64) -> conv3x3(32) -> conv3x3(C*s*s) -> depth_to_space(s).

  W. Shi, J. Caballero, F. Huszar, J. Totz, A. P. Aitken, R. Bishop,
  D. Rueckert, Z. Wang, "Real-Time Single Image and Video Super-Resolution
  Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016.

  Hidden activations are tanh as in the paper; the last layer is linear
  (``output_activation=None``). The OpenCV dnn_superres ESPCN uses
  ``activation='relu', output_activation='tanh'``. Zero 'same' padding.
  22,729 parameters on Y at x3. Submodules ``conv1``, ``conv2``, ``conv3``.
  """
  scale: int = 3
  channels: int = 1
  n1: int = 64
  n2: int = 32
  activation: str = 'tanh'
  output_activation: str | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'ESPCN')
    act = common.activation_fn(self.activation)
    r = self.scale
    x = act(common.Conv(self.n1, 5, name='conv1')(x))
    x = act(common.Conv(self.n2, 3, name='conv2')(x))
    x = common.Conv(self.channels * r * r, 3, name='conv3')(x)
    x = common.depth_to_space(x, r)
    if self.output_activation is not None:
      x = common.activation_fn(self.output_activation)(x)
    return x
