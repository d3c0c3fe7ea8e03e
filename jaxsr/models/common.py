"""Building blocks shared by the jaxsr model zoo.

Contract: every block works on NHWC float32 arrays. Convolution kernels are
stored as ``kernel [kh, kw, in, out]`` and ``bias [out]`` (the Flax layout), so
a converter from PyTorch ``weight [out, in, kh, kw]`` only transposes
``(2, 3, 1, 0)``.

Spatial rules
-------------
Every leaf layer here declares, next to its definition, how it mixes pixels:
its ``spatial_rule()`` method returns a :class:`SpatialRule` (how to run it on
an input whose bottom/right part is padding so that the valid part of its
output equals running it on the valid part alone; how far an output pixel
reaches into its input; its resolution change). :func:`spatial_rule_of` reads
that declaration, or recognises a few pointwise Flax layers (``nn.Dense``, 1x1
``nn.Conv``, norms over channels, ...). ``jaxsr.inference`` reads only these
declarations: to run a model on an image padded up to a size bucket while
reproducing, up to float rounding, the output of the unpadded image, and to sum
receptive fields. Modules that only compose other modules (the models,
:class:`Upsampler`, :class:`ResidualBlock`, ...) declare nothing; a leaf layer
that declares nothing (a raw ``nn.Conv`` with a larger kernel, pooling, a user
layer) makes bucketed inference refuse to run rather than give inexact output.

Sub-pixel convolution ordering
------------------------------
:func:`depth_to_space` uses TensorFlow's DCR order (``tf.nn.depth_to_space``):
the input channel index is ``(dy * s + dx) * C + c``. PyTorch's
``nn.PixelShuffle`` uses CRD order: ``c * s * s + dy * s + dx``. For ``C == 1``
both agree. To import a PyTorch conv that feeds a ``PixelShuffle``, permute its
output channels with :func:`pixel_shuffle_permutation`::

  perm = pixel_shuffle_permutation(channels, scale)
  kernel = torch_weight.permute(2, 3, 1, 0).numpy()[..., perm]
  bias = torch_bias.numpy()[perm]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Initializer = Callable[..., Array]

# DIV2K RGB mean used by EDSR, RCAN and BasicSR (in [0, 1]).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


# The valid-region rules a layer can declare (SpatialRule.valid_region).
POINTWISE = 'pointwise'
ZERO = 'zero'
EDGE = 'edge'
SYMMETRIC = 'symmetric'
MEAN = 'mean'
EXACT_SIZE_ONLY = 'exact_size_only'
TRUE_SIZE = 'true_size'
VALID_REGION_RULES = (POINTWISE, ZERO, EDGE, SYMMETRIC, MEAN, EXACT_SIZE_ONLY, TRUE_SIZE)


@dataclasses.dataclass(frozen=True)
class SpatialRule:
  """How a layer maps input pixels to output pixels.

  The *valid region* of an ``[N, H, W, C]`` activation is its top-left
  ``vh x vw`` pixels (per image); the rest is padding that must not change the
  valid part of the model's output.

  Attributes:
    valid_region: what makes the layer's valid output equal to the layer
      applied to the valid region alone:

      * ``'pointwise'``: nothing; each output pixel depends only on the input
        pixel(s) at its own position (activations, 1x1 convs, nearest
        upsampling, pixel-wise affine maps).
      * ``'zero'``: the layer pads with zeros; its input is multiplied by the
        valid-region mask, so it sees zeros beyond the valid border.
      * ``'edge'``: the layer replicates its border; its input is replaced by
        the edge (replicate) extension of the valid region.
      * ``'symmetric'``: the layer mirrors its border (half-sample symmetric,
        MATLAB ``imresize``); its input is replaced by the symmetric extension
        of the valid region, ``margin`` pixels larger, and its output is
        cropped back to ``scale`` times the input size.
      * ``'mean'``: the layer's output is the spatial mean of its input,
        ``[N, 1, 1, C]``; it is replaced by the mean over the valid region.
      * ``'exact_size_only'``: no emulation exists (e.g. 'valid' convolutions,
        whose output shrinks); padded inference refuses to run the layer.
      * ``'true_size'``: the layer emulates unpadded execution itself: it is
        called with the keyword ``true_size=(vh, vw)`` (int arrays ``[N]``, the
        valid size of its input per image) and the layers it calls run as they
        are (their own rules are not applied; ``reach`` covers them all).
        Real-CUGAN and waifu2x, whose 'valid' convolutions follow their own
        border extension, declare it.
    reach: how far, in input pixels, an output pixel depends on input pixels
      away from its own position (the largest distance in any direction;
      ``math.inf`` for global operations). A 3x3 'same' conv reaches 1.
    scale: output pixels per input pixel along each axis (2 for a x2
      upsampling, 0.5 for a stride-2 conv; ``None`` when the output size does
      not follow the input, as for ``'mean'``).
    margin: for ``'symmetric'``, the extra pixels of extension on each
      bottom/right border (more than ``reach``, so the layer never pads the
      array itself).
  """
  valid_region: str
  reach: float = 0.
  scale: float | None = 1.
  margin: int = 0

  def __post_init__(self):
    if self.valid_region not in VALID_REGION_RULES:
      raise ValueError(f"unknown valid_region {self.valid_region!r}; "
                       f"known: {VALID_REGION_RULES}")


def _no_padding(padding) -> bool:
  if isinstance(padding, str):
    return True  # 'SAME', 'VALID', 'CIRCULAR', ... add nothing around a 1x1 kernel
  if isinstance(padding, int):
    return padding == 0
  return all(_no_padding(p) for p in padding)


def _ones(v) -> bool:
  return v is None or all(int(e) == 1 for e in (v if isinstance(v, Sequence) else (v,)))


def _flax_pointwise(module: nn.Module) -> bool:
  """True for Flax built-in layers that act on each pixel separately."""
  if isinstance(module, (nn.Dense, nn.DenseGeneral)):
    return getattr(module, 'axis', -1) in (-1, (-1,))
  if isinstance(module, (nn.PReLU, nn.Dropout)):
    return True
  if isinstance(module, nn.BatchNorm):
    return module.use_running_average is True  # batch statistics would mix pixels
  if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
    return module.reduction_axes in (-1, (-1,)) and module.feature_axes in (-1, (-1,))
  if isinstance(module, nn.Conv):  # 1x1, stride 1: a per-pixel matmul
    return (_ones(module.kernel_size) and _ones(module.strides)
            and _ones(module.input_dilation) and _no_padding(module.padding))
  return False


def spatial_rule_of(module: nn.Module) -> SpatialRule | None:
  """The :class:`SpatialRule` of ``module``, or None if it declares none.

  A module declares one with a ``spatial_rule()`` method returning a
  :class:`SpatialRule`; pointwise Flax layers (``nn.Dense``, ``nn.PReLU``,
  ``nn.Dropout``, ``nn.BatchNorm`` with running averages, ``nn.LayerNorm`` /
  ``nn.RMSNorm`` over channels, 1x1 stride-1 ``nn.Conv``) count as
  ``'pointwise'``.
  """
  declare = getattr(module, 'spatial_rule', None)
  if callable(declare):
    return declare()
  if _flax_pointwise(module):
    return SpatialRule(POINTWISE)
  return None


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(v, int):
    return (v, v)
  return (int(v[0]), int(v[1]))


def depth_to_space(x: Array, scale: int) -> Array:
  """Rearranges channels into space (sub-pixel convolution), TF DCR order.

  Args:
    x: ``[N, H, W, s*s*C]``.
    scale: the block size ``s``.

  Returns:
    ``[N, s*H, s*W, C]`` with ``out[n, s*h + dy, s*w + dx, c] =
    x[n, h, w, (dy*s + dx)*C + c]``, the same as ``tf.nn.depth_to_space``.
    PyTorch's ``nn.PixelShuffle`` reads channel ``c*s*s + dy*s + dx`` instead
    (CRD order); see :func:`pixel_shuffle_permutation`.
  """
  n, h, w, cs = x.shape
  if cs % (scale * scale):
    raise ValueError(f"channels {cs} not divisible by scale**2 = {scale * scale}")
  c = cs // (scale * scale)
  x = x.reshape(n, h, w, scale, scale, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * scale, w * scale, c)


def space_to_depth(x: Array, scale: int) -> Array:
  """Inverse of :func:`depth_to_space`: ``[N, s*H, s*W, C] -> [N, H, W, s*s*C]``."""
  n, hs, ws, c = x.shape
  h, w = hs // scale, ws // scale
  x = x.reshape(n, h, scale, w, scale, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h, w, scale * scale * c)


def pixel_shuffle_permutation(channels: int, scale: int) -> np.ndarray:
  """Output-channel permutation from PyTorch ``PixelShuffle`` order to ours.

  A conv whose output feeds ``nn.PixelShuffle(scale)`` in PyTorch produces
  channel ``c*s*s + dy*s + dx`` for sub-pixel ``(dy, dx)`` of colour ``c``; our
  :func:`depth_to_space` expects it at ``(dy*s + dx)*C + c``. With
  ``perm = pixel_shuffle_permutation(C, s)``, ``ours[..., j] = torch[..., perm[j]]``
  for kernels (last axis) and biases.

  Args:
    channels: ``C``, the channel count *after* the shuffle.
    scale: ``s``.

  Returns:
    int64 array of length ``C*s*s``.
  """
  j = np.arange(channels * scale * scale)
  c = j % channels
  sub = j // channels  # dy*s + dx
  return c * scale * scale + sub


class Conv(nn.Module):
  """2-D convolution with PyTorch-style symmetric padding modes.

  ``[N, H, W, Cin] -> [N, H', W', features]``. 1x1 stride-1 convolutions are
  computed as a matmul (faster on CPU); parameters are always
  ``kernel [k, k, Cin, features]`` and ``bias [features]``.

  Attributes:
    features: output channels.
    kernel_size: square kernel size.
    strides: stride.
    padding: ``'zero'`` ('same' size with zeros: ``(k-1)//2`` before, ``k//2``
      after), ``'edge'`` (replicate, MATLAB ``imfilter(..., 'replicate')``),
      ``'valid'``, or an int ``p`` (``p`` zeros on every side, as
      ``torch.nn.Conv2d(padding=p)``).
    use_bias: add a bias.
  """
  features: int
  kernel_size: int = 3
  strides: int = 1
  padding: str | int = 'zero'
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros

  @nn.nowrap
  def pad_amounts(self) -> tuple[int, int]:
    k = self.kernel_size
    if isinstance(self.padding, int):
      return (self.padding, self.padding)
    if self.padding == 'valid':
      return (0, 0)
    if self.padding in ('zero', 'edge'):
      return ((k - 1) // 2, k // 2)
    raise ValueError(f"unknown padding {self.padding!r}")

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    """'valid': exact size only; 1x1 unpadded: pointwise; else zero or edge padding."""
    k, scale = self.kernel_size, 1. / self.strides
    if self.padding == 'valid':
      return SpatialRule(EXACT_SIZE_ONLY, reach=k // 2, scale=scale)
    pads = self.pad_amounts()
    if k == 1 and pads == (0, 0):
      return SpatialRule(POINTWISE, scale=scale)
    return SpatialRule(EDGE if self.padding == 'edge' else ZERO, reach=max(pads), scale=scale)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features), jnp.float32)
    x = x.astype(kernel.dtype)  # compute in the parameters' dtype (bf16 in mixed precision)
    lo, hi = self.pad_amounts()
    if k == 1 and self.strides == 1 and lo == hi == 0:
      y = x @ kernel[0, 0]
    else:
      if self.padding == 'edge':
        x = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode='edge')
        pads = ((0, 0), (0, 0))
      else:
        pads = ((lo, hi), (lo, hi))
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(self.strides, self.strides), padding=pads,
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32)
    return y


def subpixel_taps(kernel_size: int, stride: int, padding: int) -> tuple[np.ndarray, int]:
  """Where a transposed conv's taps land in its equivalent sub-pixel convolution.

  A transposed conv (PyTorch semantics, ``out[s*j - p + k] += x[j] * w[k]``)
  computes output phase ``r`` of LR position ``i`` (``out[s*i + r]``) from
  ``x[i + t]`` through tap ``k = r + p - s*t``. Returns ``(index, reach)``:
  ``index[t + reach, r]`` is that ``k``, or ``kernel_size`` where no tap
  exists, for ``|t| <= reach``.
  """
  k, s, p = kernel_size, stride, padding
  reach = max((abs(t) for r in range(s) for t in range(-k, k + 1) if 0 <= r + p - s * t < k),
              default=0)
  index = np.full((2 * reach + 1, s), k, np.int32)
  for r in range(s):
    for t in range(-reach, reach + 1):
      if 0 <= r + p - s * t < k:
        index[t + reach, r] = r + p - s * t
  return index, reach


def transposed_to_subpixel_kernel(kernel: Array, stride: int, padding: int) -> Array:
  """``[K, K, Cin, C]`` transposed-conv kernel -> ``[k, k, Cin, C*s*s]`` sub-pixel kernel.

  ``depth_to_space(conv_same(x, result), s)`` equals the transposed conv when
  its output is ``s`` times its input (``K + output_padding - 2*padding == s``);
  ``k = 2*reach + 1`` (see :func:`subpixel_taps`). Works on numpy and jax arrays
  (differentiable).
  """
  ksize, _, cin, c = kernel.shape
  index, reach = subpixel_taps(ksize, stride, padding)
  xp = np if isinstance(kernel, np.ndarray) else jnp
  ext = xp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index K reads zeros
  w = ext[index[:, None, :, None], index[None, :, None, :]]  # [k, k, s, s, Cin, C]
  size = 2 * reach + 1
  w = w.transpose(0, 1, 4, 2, 3, 5)
  return w.reshape(size, size, cin, stride * stride * c)


class ConvTranspose(nn.Module):
  """Transposed convolution with PyTorch ``ConvTranspose2d`` semantics.

  ``out[s*i - padding + k] += x[i] * kernel[k]`` (per spatial axis), output size
  ``(H - 1)*s - 2*padding + kernel_size + output_padding``. The kernel is stored
  ``[k, k, Cin, features]``; from PyTorch ``weight [in, out, kh, kw]`` take
  ``weight.permute(2, 3, 0, 1)``.

  When the output is exactly ``s`` times the input (FSRCNN's 9x9 stride-s
  layer with padding 4 and output_padding s-1), it is computed as the
  equivalent sub-pixel convolution (:func:`transposed_to_subpixel_kernel`,
  then :func:`depth_to_space`), which has the same result and parameters but
  skips the multiplications by the zeros an ``lhs_dilation`` convolution
  inserts (forward + backward of FSRCNN's head on a 16x17x17x56 batch: 13 ms
  instead of 47 ms on a 2-core CPU).
  """
  features: int
  kernel_size: int
  strides: int = 1
  padding: int = 0
  output_padding: int = 0
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    """Zero padding; reaches the LR pixels of its equivalent sub-pixel conv. Exact size only
    when the output is not ``strides`` times the input (Real-CUGAN's 'valid' heads)."""
    _, reach = subpixel_taps(self.kernel_size, self.strides, self.padding)
    k, s, p = self.kernel_size, self.strides, self.padding
    if k + self.output_padding - 2 * p != s:
      return SpatialRule(EXACT_SIZE_ONLY, reach=reach, scale=s)
    return SpatialRule(ZERO, reach=reach, scale=s)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, s, p = self.kernel_size, self.strides, self.padding
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features), jnp.float32)
    x = x.astype(kernel.dtype)  # compute in the parameters' dtype (bf16 in mixed precision)
    if s > 1 and k + self.output_padding - 2 * p == s:
      w = transposed_to_subpixel_kernel(kernel, s, p)
      r = (w.shape[0] - 1) // 2
      y = jax.lax.conv_general_dilated(
          x, w, window_strides=(1, 1), padding=((r, r), (r, r)),
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      y = depth_to_space(y, s)
    else:
      lo, hi = k - 1 - p, k - 1 - p + self.output_padding
      y = jax.lax.conv_general_dilated(
          x, kernel[::-1, ::-1], window_strides=(1, 1), padding=((lo, hi), (lo, hi)),
          lhs_dilation=(s, s), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32)
    return y


class PReLU(nn.Module):
  """Parametric ReLU ``max(x, 0) + alpha * min(x, 0)``.

  Attributes:
    per_channel: one ``alpha`` per channel (parameter ``alpha [C]``, as
      ``torch.nn.PReLU(C)``) or a single shared one (``alpha []``, as
      ``torch.nn.PReLU()``).
    init: initial slope (PyTorch uses 0.25).
  """
  per_channel: bool = True
  init: float = 0.25

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    return SpatialRule(POINTWISE)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    shape = (x.shape[-1],) if self.per_channel else ()
    alpha = self.param('alpha', nn.initializers.constant(self.init), shape, jnp.float32)
    return jnp.where(x >= 0, x, alpha * x)


class GlobalAvgPool(nn.Module):
  """Spatial mean, ``[N, H, W, C] -> [N, 1, 1, C]`` (a module so inference can mask it)."""

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    return SpatialRule(MEAN, reach=math.inf, scale=None)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return jnp.mean(x, axis=(1, 2), keepdims=True)


def upscale_fn(x: Array, scale: int) -> Array:
  """MATLAB-exact bicubic upscaling of ``[N, h, w, C]`` to ``[N, s*h, s*w, C]``.

  Uses :func:`jaxsr.imresize.imresize` (imported lazily). Only if that module
  cannot be imported, falls back to ``jax.image.resize(..., 'bicubic')``, which
  differs from MATLAB near the borders.
  """
  try:
    from jaxsr import imresize  # pylint: disable=g-import-not-at-top
  except ImportError:
    imresize = None
  if imresize is not None:
    return imresize.imresize(x, scale=scale)
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, h * scale, w * scale, c), 'bicubic')


class Upsample(nn.Module):
  """Parameter-free interpolation by an integer factor.

  Attributes:
    scale: integer factor.
    method: ``'bicubic'`` (MATLAB ``imresize``, see :func:`upscale_fn`),
      ``'bilinear'`` (``align_corners=False``, as ``F.interpolate``) or
      ``'nearest'``.
  """
  scale: int
  method: str = 'bicubic'

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    """Bicubic: symmetric borders, reach 2; bilinear: edge, 1; nearest: pointwise."""
    if self.method == 'bicubic':
      # margin 4 > the 2-pixel reach of the bicubic kernel, so imresize never pads itself.
      return SpatialRule(SYMMETRIC, reach=2, scale=self.scale, margin=4)
    if self.method == 'bilinear':
      return SpatialRule(EDGE, reach=1, scale=self.scale)
    if self.method == 'nearest':
      return SpatialRule(POINTWISE, scale=self.scale)
    raise ValueError(f"unknown method {self.method!r}")

  @nn.compact
  def __call__(self, x: Array) -> Array:
    s = self.scale
    if self.method == 'bicubic':
      return upscale_fn(x, s)
    if self.method == 'nearest':
      return jnp.repeat(jnp.repeat(x, s, axis=1), s, axis=2)
    if self.method == 'bilinear':
      n, h, w, c = x.shape
      return jax.image.resize(x, (n, h * s, w * s, c), 'bilinear')
    raise ValueError(f"unknown method {self.method!r}")


class MeanShift(nn.Module):
  """``(x - mean) * img_range`` (``sign=-1``) or ``x / img_range + mean`` (``sign=+1``).

  BasicSR's form of EDSR's MeanShift for inputs in [0, 1]: the body works on
  [0, img_range]-scaled, mean-subtracted values, which is what the published
  EDSR/RCAN weights (trained with rgb_range 255) expect. For a channel count
  other than ``len(mean)`` every channel uses the average of ``mean``.
  """
  mean: Sequence[float] = DIV2K_RGB_MEAN
  img_range: float = 255.
  sign: int = -1

  @nn.nowrap
  def spatial_rule(self) -> SpatialRule:
    return SpatialRule(POINTWISE)

  def __call__(self, x: Array) -> Array:
    c = x.shape[-1]
    mean = jnp.asarray(self.mean, jnp.float32)
    if mean.shape[0] != c:
      mean = jnp.full((c,), jnp.mean(mean), jnp.float32)
    if self.sign < 0:
      return (x - mean) * self.img_range
    return x / self.img_range + mean


def upsample_stages(scale: int) -> list[int]:
  """Factors of the sub-pixel stages for ``scale``: 2**k -> [2]*k, 3 -> [3]."""
  if scale == 3:
    return [3]
  if scale >= 2 and scale & (scale - 1) == 0:
    return [2] * int(math.log2(scale))
  raise ValueError(f"scale {scale} not supported (use 2, 3, 4 or 8)")


class Upsampler(nn.Module):
  """EDSR/RCAN upsampler: per stage ``Conv(num_feat*r*r) -> depth_to_space(r)``.

  ``scale`` 2**k uses k x2 stages, 3 one x3 stage. Submodules ``conv_0``,
  ``conv_1``, ... (PyTorch ``upsample.0``, ``upsample.2``, ...; permute their
  output channels with :func:`pixel_shuffle_permutation`).

  Attributes:
    scale: 2, 3, 4 or 8.
    num_feat: channels in and out.
    activation: optional activation after each shuffle (SRResNet uses PReLU;
      pass ``'prelu'``).
  """
  scale: int
  num_feat: int
  activation: str | None = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i, r in enumerate(upsample_stages(self.scale)):
      x = Conv(self.num_feat * r * r, 3, name=f'conv_{i}')(x)
      x = depth_to_space(x, r)
      if self.activation == 'prelu':
        x = PReLU(per_channel=False, name=f'prelu_{i}')(x)
      elif self.activation is not None:
        x = activation_fn(self.activation)(x)
    return x


class ResidualBlock(nn.Module):
  """EDSR ResBlock / BasicSR ResidualBlockNoBN: ``x + res_scale * conv2(relu(conv1(x)))``."""
  num_feat: int = 64
  res_scale: float = 1.

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = Conv(self.num_feat, 3, name='conv1')(x)
    y = Conv(self.num_feat, 3, name='conv2')(nn.relu(y))
    return x + self.res_scale * y if self.res_scale != 1 else x + y


class ChannelAttention(nn.Module):
  """RCAN channel attention: ``x * sigmoid(W_up relu(W_down mean_hw(x)))``.

  Submodules ``conv_down`` (1x1, C -> C//reduction) and ``conv_up`` (1x1,
  C//reduction -> C), both with bias (PyTorch ``conv_du.0`` / ``conv_du.2``).
  """
  num_feat: int = 64
  reduction: int = 16

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = GlobalAvgPool()(x)
    y = nn.relu(Conv(self.num_feat // self.reduction, 1, name='conv_down')(y))
    y = nn.sigmoid(Conv(self.num_feat, 1, name='conv_up')(y))
    return x * y


def activation_fn(name: str) -> Callable[[Array], Array]:
  """Named activation: 'relu', 'tanh', 'sigmoid', 'lrelu' (0.2), 'lrelu0.1', 'identity'."""
  if name == 'relu':
    return nn.relu
  if name == 'tanh':
    return jnp.tanh
  if name == 'sigmoid':
    return nn.sigmoid
  if name.startswith('lrelu'):
    slope = float(name[5:]) if len(name) > 5 else 0.2
    return lambda x: nn.leaky_relu(x, slope)
  if name in ('identity', 'none'):
    return lambda x: x
  raise ValueError(f"unknown activation {name!r}")


def check_channels(x: Array, channels: int, model: str) -> None:
  """Raises ValueError unless ``x`` is ``[N, H, W, channels]``."""
  if x.ndim != 4 or x.shape[-1] != channels:
    raise ValueError(f"{model} expects [N, H, W, {channels}] input, got {x.shape}; "
                     f"set channels={x.shape[-1] if x.ndim == 4 else '?'}")

