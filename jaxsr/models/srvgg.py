"""SRVGGNetCompact, the compact VGG-style network of Real-ESRGAN's anime-video / general-v3 models.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``, any integer
``s >= 1`` for which ``net_scale`` is given (default: ``s`` itself). RGB model (``channels=3``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import common

Array = jax.Array


def cubic_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """``[n_out, n_in]`` weights of a bicubic resize without antialiasing.

  The convention of PyTorch's ``F.interpolate(mode='bicubic', align_corners=False)`` and ncnn's
  ``Interp`` (resize_type 3): output pixel ``i`` samples the input at ``(i + 0.5) * n_in / n_out
  - 0.5`` with Keys' cubic kernel (``a = -0.75``) on the four nearest pixels, indices clamped
  to the border (edge replication).
  """
  a = -0.75
  m = np.zeros((n_out, n_in), np.float64)
  ratio = n_in / n_out
  for i in range(n_out):
    x = (i + 0.5) * ratio - 0.5
    x0 = math.floor(x)
    t = x - x0
    d = np.array([1 + t, t, 1 - t, 2 - t])
    w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                 ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)
    for k in range(4):
      m[i, min(max(x0 - 1 + k, 0), n_in - 1)] += w[k]
  return m.astype(np.float32)


class CubicResize(nn.Module):
  """Bicubic resize by ``ratio = numerator / denominator`` (see :func:`cubic_resize_matrix`).

  ``[N, H, W, C] -> [N, H*ratio, W*ratio, C]`` (the sizes must be integers). Computed as two
  matrix products, exact for any static shape.
  """
  numerator: int
  denominator: int

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Edge replication (clamped taps), reach 2 input pixels."""
    return common.SpatialRule(common.EDGE, reach=2, scale=self.numerator / self.denominator)

  def __call__(self, x: Array) -> Array:
    _, h, w, _ = x.shape
    if (h * self.numerator) % self.denominator or (w * self.numerator) % self.denominator:
      raise ValueError(f"CubicResize x{self.numerator}/{self.denominator}: {h}x{w} does not "
                       f"give an integer size")
    oh, ow = h * self.numerator // self.denominator, w * self.numerator // self.denominator
    mh = jnp.asarray(cubic_resize_matrix(h, oh))
    mw = jnp.asarray(cubic_resize_matrix(w, ow))
    hp = jax.lax.Precision.HIGHEST
    y = jnp.einsum('oh,nhwc->nowc', mh, x, precision=hp)
    return jnp.einsum('pw,nowc->nopc', mw, y, precision=hp)


class SRVGGNetCompact(nn.Module):
  """SRVGGNetCompact: a plain stack of 3x3 convs, then sub-pixel upsampling plus a nearest skip.

  X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training Real-World Blind Super-Resolution
  with Pure Synthetic Data", ICCV Workshops 2021 (the compact model of the Real-ESRGAN
  repository: realesr-animevideov3, realesr-general-x4v3).

  ``conv(C -> F) -> act -> num_conv x [conv(F -> F) -> act] -> conv(F -> C*r*r) ->
  depth_to_space(r) + nearest_upsample(x, r)`` with ``r = net_scale``. When ``scale`` differs
  from ``net_scale`` (the x2/x3 graphs of the sr-vulkan ncnn packages run the x4 network and
  then resize), the result is resized by ``scale / net_scale`` with :class:`CubicResize`.
  Activation: per-channel PReLU (``act='prelu'``, the published models), ``'relu'`` or
  ``'lrelu'`` (0.1, as BasicSR). Submodules follow BasicSR's ``body.N`` list: ``body_0`` (first
  conv), ``body_1`` (its PReLU), ``body_2``, ``body_3``, ..., ``body_{2*num_conv+2}`` (the last
  conv); ReLU/LeakyReLU take an index but hold no parameters. Reference (64 features, 16 convs,
  PReLU, x4): 621,424 parameters.
  """
  scale: int = 4
  channels: int = 3
  num_feat: int = 64
  num_conv: int = 16
  act: str = 'prelu'
  net_scale: int | None = None

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    common.check_channels(x, self.channels, 'SRVGGNetCompact')
    r = int(self.net_scale or self.scale)

    def activate(y, index):
      if self.act == 'prelu':
        return common.PReLU(per_channel=True, name=f'body_{index}')(y)
      if self.act == 'relu':
        return nn.relu(y)
      if self.act == 'lrelu':
        return nn.leaky_relu(y, 0.1)
      raise ValueError(f"unknown act {self.act!r} (prelu, relu, lrelu)")

    y = activate(common.Conv(self.num_feat, 3, name='body_0')(x), 1)
    for i in range(self.num_conv):
      y = common.Conv(self.num_feat, 3, name=f'body_{2 * i + 2}')(y)
      y = activate(y, 2 * i + 3)
    y = common.Conv(self.channels * r * r, 3, name=f'body_{2 * self.num_conv + 2}')(y)
    y = common.depth_to_space(y, r) + common.Upsample(r, 'nearest', name='skip')(x)
    if self.scale != r:
      g = math.gcd(self.scale, r)
      y = CubicResize(self.scale // g, r // g, name='resize')(y)
    return y
