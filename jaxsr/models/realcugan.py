"""Real-CUGAN and the cascaded U-Nets it shares with waifu2x's cunet.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]``, ``s`` in
{2, 3, 4} (``RealCUGAN``); RGB models (``channels=3``). The ``train`` keyword is accepted
and ignored (no batch normalisation).

How the borders work
--------------------
The networks are built from *unpadded* ('valid') convolutions: every 3x3 conv shrinks
its input by one pixel per side, and the skip connections crop. The published code
therefore pads the image itself before the network: the LR image is first extended at
its bottom/right to a multiple of ``align`` pixels and by ``pad`` pixels on every side,
with the border mode of the model (``'reflect'``: PyTorch/numpy reflect, the mirror
that does not repeat the edge pixel, as Real-CUGAN's ``F.pad(..., 'reflect')``;
``'edge'``: replicate, as waifu2x), the network maps that ``L``-pixel array to
``s * (L - 2 * pad)`` pixels, and the result is cropped to ``s*h x s*w``. Per model:

==============  =====  =====  ======================================================
model           pad    align  network (see ``cascade``)
==============  =====  =====  ======================================================
Real-CUGAN x2   18     2      UNet1 (4x4/2 transposed head) + UNet2, residual
Real-CUGAN x3   14     4      UNet1 (5x5/3 transposed head) + UNet2, residual
Real-CUGAN x4   19     2      UNet1 (64 ch, x2 head) + UNet2 (64 ch) -> 3x3 conv ->
                              pixel shuffle x2, plus the nearest-upsampled input
cunet x2        18     2      as Real-CUGAN x2 (waifu2x's ``UpCUNet``)
cunet x1        28     4      UNet1 (3x3 conv head) + UNet2, residual
==============  =====  =====  ======================================================

Real-CUGAN's "pro" models (``pro=True``) work on ``0.7 x + 0.15`` and map their output
back with ``(y - 0.15) / 0.7``. ``alpha`` (the published code's strength knob on UNet2's
bottleneck) is fixed at 1.

What is exact where
-------------------
* ``model.apply(variables, x)``: the published PyTorch forward pass (``UpCunet2x/3x/4x``
  of Real-CUGAN's ``upcunet_v3.py``) for any ``h, w >= 1`` (PyTorch itself needs
  ``h, w > pad``; the reflection here is periodic, so smaller images work too), to float
  rounding (tests: 1e-5 against PyTorch on random weights; the ncnn graphs on real
  images).
* Bucketed inference (``jaxsr.inference.upscale``, images padded at the bottom/right to a
  size bucket): the models declare the ``'true_size'`` :class:`~jaxsr.models.common.
  SpatialRule`: inference passes each image's true size (``true_size=(vh, vw)``, traced
  int arrays), the border extension reads only the true image, and the squeeze-excitation
  means (global averages) are taken over the extent the activation has for the unpadded
  image; the result equals exact-size inference to float rounding.
* Tiled inference is *not* exact: the squeeze-excitation blocks average over the whole
  image (receptive radius ``inf``), as for RCAN.

References: Real-CUGAN, bilibili AI Lab (2022), https://github.com/bilibili/ailab
(``Real-CUGAN/upcunet_v3.py``), a cascade of U-Nets (O. Ronneberger, P. Fischer, T. Brox,
"U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015) with
squeeze-excitation (J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018),
derived from waifu2x's ``cunet`` / ``upcunet`` (nagadomi, https://github.com/nagadomi/waifu2x,
2018).

Parameters are named after the PyTorch keys (``unet1.conv1.conv.0.weight`` ->
``unet1/conv1/conv_0/kernel``; ``seblock`` -> ``se``; ``conv_final`` feeds a pixel shuffle
in jaxsr's DCR order, so a PyTorch ``conv_final`` is imported with
:func:`~jaxsr.models.common.pixel_shuffle_permutation`).
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import common

Array = jax.Array
Size = Union[int, Array]  # a static length, or traced per-image lengths [N]
TrueSize = tuple[Array, Array]

SLOPE = 0.1  # LeakyReLU slope of every activation


def lrelu(x: Array) -> Array:
  """LeakyReLU with slope 0.1."""
  return jnp.where(x >= 0, x, SLOPE * x)


def border_index(length: int, pad: int, size: Size, mode: str) -> Any:
  """Source row of each of ``length`` rows of a border-extended axis.

  Row ``i`` of the result reads source row ``i - pad`` of an axis of ``size`` rows,
  extended past both ends with ``mode`` (``'reflect'``: mirror about the edge pixel,
  periodic for any length; ``'edge'``: replicate). ``size`` may be an int (numpy result
  ``[length]``) or an int array ``[N]`` (jnp result ``[N, length]``).
  """
  xp = np if isinstance(size, int) else jnp
  i = xp.arange(length) - pad
  n = size if isinstance(size, int) else size[:, None]
  if mode == 'edge':
    return xp.clip(i, 0, n - 1)
  if mode != 'reflect':
    raise ValueError(f"unknown border mode {mode!r}; use 'reflect' or 'edge'")
  period = xp.maximum(2 * n - 2, 1)
  j = xp.mod(i, period)
  return xp.where(j >= n, period - j, j) * (n > 1)


def _leading_border(x: Array, axis: int, count: int, mode: str) -> Array:
  """Rows ``-count .. -1`` of ``x`` extended along ``axis`` with ``mode`` (static ``count``).

  Slices, reversals and concatenations only, with the axis length ``n >= 1`` static or
  symbolic (``jax.export``): no gathers, no size-dependent Python. ``'reflect'``: the rows
  ``1 .. count`` of the periodic mirror of the prefix ``x[:min(n, count + 1)]`` (that
  prefix holds every row they read, and its mirror agrees with the whole axis' on them),
  reversed; ``'edge'``: ``count`` copies of row 0.
  """
  if count == 0:
    return jax.lax.slice_in_dim(x, 0, 0, axis=axis)
  if mode == 'edge':
    return jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis)] * count, axis=axis)
  if mode != 'reflect':
    raise ValueError(f"unknown border mode {mode!r}; use 'reflect' or 'edge'")
  n = x.shape[axis]
  m = jax.core.min_dim(n, count + 1)
  prefix = jax.lax.slice_in_dim(x, 0, m, axis=axis)
  k = jax.core.max_dim(m - 1, 1)  # the mirror's half period (1 for a single row)
  # x[1 .. m-1] then x[m-2 .. 0] (for m = 1: x[0] twice): one period, starting at row 1.
  period = [jax.lax.slice_in_dim(prefix, m - k, m, axis=axis),
            jax.lax.slice_in_dim(jnp.flip(prefix, axis=axis), m - k, m, axis=axis)]
  run = jnp.concatenate(period * (-(-count // 2)), axis=axis)
  return jnp.flip(jax.lax.slice_in_dim(run, 0, count, axis=axis), axis=axis)


def extend_axis(x: Array, axis: int, *, pad: int, align: int, mode: str) -> Array:
  """``x`` border-extended along ``axis`` to ``align * ceil(n / align) + 2 * pad`` rows:
  ``pad`` rows before, the rest after (the rows :func:`border_index` selects).

  Works with a symbolic length ``n`` (``jax.export``): slices and concatenations only, and
  the length in the form ``align * ceil(n / align)`` whose divisibility symbolic shapes
  can prove.
  """
  n = x.shape[axis]
  parts = [_leading_border(x, axis, pad, mode), x,
           jnp.flip(_leading_border(jnp.flip(x, axis=axis), axis, pad + align - 1, mode),
                    axis=axis)]
  length = align * ((n + align - 1) // align) + 2 * pad
  return jax.lax.slice_in_dim(jnp.concatenate(parts, axis=axis), 0, length, axis=axis)


def extend(x: Array, *, pad: int, align: int, mode: str,
           true_size: TrueSize | None) -> tuple[Array, tuple[Size, Size]]:
  """Border-extends ``x [N, H, W, C]`` to ``ceil(H/align)*align + 2*pad`` rows (and columns).

  Returns the extended array and the extent ``(Lh, Lw)`` the extension has for the
  unpadded image (ints without ``true_size``; traced ``[N]`` arrays with it, computed from
  the true size the same way). Symbolic ``H, W`` (``jax.export``) take
  :func:`extend_axis` (the same rows by slices: gathers with symbolic sizes do not export).
  """
  _, h, w, _ = x.shape
  if true_size is None and not (isinstance(h, int) and isinstance(w, int)):
    y = extend_axis(extend_axis(x, 1, pad=pad, align=align, mode=mode), 2, pad=pad,
                    align=align, mode=mode)
    return y, (y.shape[1], y.shape[2])
  lh = -(-h // align) * align + 2 * pad
  lw = -(-w // align) * align + 2 * pad
  if true_size is None:
    return x[:, border_index(lh, pad, h, mode)][:, :, border_index(lw, pad, w, mode)], (lh, lw)
  vh, vw = (jnp.asarray(v, jnp.int32) for v in true_size)
  ih, iw = border_index(lh, pad, vh, mode), border_index(lw, pad, vw, mode)
  y = jax.vmap(lambda xi, a, b: xi[a][:, b])(x, ih, iw)
  extent = tuple((-(-v // align)) * align + 2 * pad for v in (vh, vw))
  return y, extent


def _map(valid, fn):
  return None if valid is None else tuple(fn(v) for v in valid)


def _crop(x: Array, c: int) -> Array:
  """Drops ``c`` rows/columns per side (lax slices: these also trace with symbolic sizes)."""
  x = jax.lax.slice_in_dim(x, c, x.shape[1] - c, axis=1)
  return jax.lax.slice_in_dim(x, c, x.shape[2] - c, axis=2)


def crop_to(x: Array, h: Size, w: Size) -> Array:
  """``x[:, :h, :w]`` by lax slices (numpy indexing with symbolic bounds becomes a gather)."""
  return jax.lax.slice_in_dim(jax.lax.slice_in_dim(x, 0, h, axis=1), 0, w, axis=2)


def _valid_conv(features: int, kernel: int, name: str, strides: int = 1) -> common.Conv:
  return common.Conv(features, kernel, strides=strides, padding='valid', name=name)


class SEBlock(nn.Module):
  """Squeeze-excitation: ``x * sigmoid(conv2(relu(conv1(mean_hw(x)))))`` (1x1 convs, bias).

  With ``valid=(vh, vw)`` (per-image ``[N]`` extents) the mean covers only the top-left
  ``vh x vw`` pixels. Used inside the self-emulating U-Net models only (see the module
  docstring); it declares no spatial rule of its own.
  """
  features: int
  reduction: int = 8

  @nn.compact
  def __call__(self, x: Array, valid: tuple[Array, Array] | None = None) -> Array:
    if valid is None:
      m = jnp.mean(x, axis=(1, 2), keepdims=True)
    else:
      vh, vw = valid
      mh = jnp.arange(x.shape[1])[None, :] < vh[:, None]
      mw = jnp.arange(x.shape[2])[None, :] < vw[:, None]
      mask = (mh[:, :, None] & mw[:, None, :])[..., None].astype(x.dtype)
      m = jnp.sum(x * mask, axis=(1, 2), keepdims=True) / (vh * vw).astype(x.dtype)[
          :, None, None, None]
    y = nn.relu(common.Conv(self.features // self.reduction, 1, name='conv1')(m))
    y = nn.sigmoid(common.Conv(self.features, 1, name='conv2')(y))
    return x * y


class UNetConv(nn.Module):
  """Two valid 3x3 convs with LeakyReLU 0.1 (``conv_0``, ``conv_1``), optional SE (``se``)."""
  mid: int
  features: int
  se: bool

  @nn.compact
  def __call__(self, x: Array, valid=None) -> Array:
    x = lrelu(_valid_conv(self.mid, 3, 'conv_0')(x))
    x = lrelu(_valid_conv(self.features, 3, 'conv_1')(x))
    if self.se:
      x = SEBlock(self.features, name='se')(x, _map(valid, lambda v: v - 4))
    return x


# UNet1's head: (kind, kernel, stride, padding) per upscaling factor.
_HEADS = {1: ('conv', 3, 1, 0), 2: ('deconv', 4, 2, 3), 3: ('deconv', 5, 3, 2)}


class UNet1(nn.Module):
  """The shallow U-Net (one down/up level); its head upsamples by ``scale`` (1, 2 or 3)."""
  features: int
  scale: int
  num_feat: int = 64

  @nn.compact
  def __call__(self, x: Array, valid=None) -> Array:
    """``valid``: the input's true extents ``(vh, vw)`` (``[N]``) or None (all of it)."""
    nf = self.num_feat
    x1 = UNetConv(nf // 2, nf, se=False, name='conv1')(x)
    x2 = lrelu(_valid_conv(nf, 2, 'conv1_down', strides=2)(x1))
    x2 = UNetConv(2 * nf, nf, se=True, name='conv2')(x2, _map(valid, lambda v: (v - 4) // 2))
    x2 = lrelu(common.ConvTranspose(nf, 2, strides=2, name='conv2_up')(x2))
    x3 = lrelu(_valid_conv(nf, 3, 'conv3')(_crop(x1, 4) + x2))
    kind, k, s, p = _HEADS[self.scale]
    if kind == 'conv':
      return _valid_conv(self.features, k, 'conv_bottom')(x3)
    return common.ConvTranspose(self.features, k, strides=s, padding=p, name='conv_bottom')(x3)


class UNet2(nn.Module):
  """The deeper U-Net (two down/up levels), valid 3x3 head, size ``L -> L - 40``."""
  features: int
  num_feat: int = 64

  @nn.compact
  def __call__(self, x: Array, valid=None) -> Array:
    """``valid``: the input's true extents ``(vh, vw)`` (``[N]``) or None (all of it)."""
    nf = self.num_feat
    v1 = _map(valid, lambda v: v - 4)
    v2 = _map(v1, lambda v: v // 2)
    x1 = UNetConv(nf // 2, nf, se=False, name='conv1')(x)
    x2 = lrelu(_valid_conv(nf, 2, 'conv1_down', strides=2)(x1))
    x2 = UNetConv(nf, 2 * nf, se=True, name='conv2')(x2, v2)
    x3 = lrelu(_valid_conv(2 * nf, 2, 'conv2_down', strides=2)(x2))
    x3 = UNetConv(4 * nf, 2 * nf, se=True, name='conv3')(x3, _map(v2, lambda v: (v - 4) // 2))
    x3 = lrelu(common.ConvTranspose(2 * nf, 2, strides=2, name='conv3_up')(x3))
    x4 = UNetConv(nf, nf, se=True, name='conv4')(_crop(x2, 4) + x3,
                                                 _map(v2, lambda v: v - 12))
    x4 = lrelu(common.ConvTranspose(nf, 2, strides=2, name='conv4_up')(x4))
    x5 = lrelu(_valid_conv(nf, 3, 'conv5')(_crop(x1, 16) + x4))
    return _valid_conv(self.features, 3, 'conv_bottom')(x5)


# (pad, align) of the border extension per scale of the cascade.
CASCADE_GEOMETRY = {1: (28, 4), 2: (18, 2), 3: (14, 4), 4: (19, 2)}


def cascade(x: Array, *, scale: int, channels: int, mode: str,
            true_size: TrueSize | None, num_feat: int = 64) -> Array:
  """UNet1 -> UNet2 with residual (and, at x4, the pixel-shuffle head), inside a module.

  ``x`` is the model input (after any input transform); returns ``[N, s*H, s*W, C]``.
  Must be called from a compact module's ``__call__`` (it creates ``unet1``, ``unet2`` and
  at x4 ``conv_final``).
  """
  pad, align = CASCADE_GEOMETRY[scale]
  _, h, w, _ = x.shape
  p, extent = extend(x, pad=pad, align=align, mode=mode, true_size=true_size)
  valid = None if true_size is None else extent
  s1 = 2 if scale == 4 else scale
  width = num_feat if scale == 4 else channels
  # UNet1: L -> s1*L - 2*c1 with c1 = 16 (x2), 22 (x3), 8 (x1).
  y1 = UNet1(width, s1, num_feat, name='unet1')(p, valid)
  # The extents UNet2 sees: y1's size for the true image.
  shrink = {1: 16, 2: 32, 3: 44}[s1]
  v_in = _map(valid, lambda v: s1 * v - shrink)
  y2 = UNet2(width, num_feat, name='unet2')(y1, v_in)
  y = y2 + _crop(y1, 20)
  if scale == 4:
    y = common.Conv(4 * channels, 3, padding='valid', name='conv_final')(y)
    y = common.depth_to_space(_crop(y, 1), 2)
  y = crop_to(y, scale * h, scale * w)
  if scale == 4:
    y = y + jnp.repeat(jnp.repeat(x, 4, axis=1), 4, axis=2)
  return y


def _check_scale(model: str, scale: int, allowed: Sequence[int]) -> None:
  if scale not in allowed:
    raise ValueError(f"{model} supports scales {tuple(allowed)}, got {scale}")


class RealCUGAN(nn.Module):
  """Real-CUGAN (bilibili AI Lab, 2022): cascaded U-Nets with squeeze-excitation.

  Real-CUGAN, https://github.com/bilibili/ailab/tree/main/Real-CUGAN (``UpCunet2x``,
  ``UpCunet3x``, ``UpCunet4x`` of ``upcunet_v3.py``); architecture derived from waifu2x's
  cunet (nagadomi). See the module docstring for the border handling and exactness.
  The denoise and conservative releases are the same architecture with other weights;
  ``pro=True`` selects the "pro" releases' input/output transform.

  Attributes:
    scale: 2, 3 or 4.
    channels: image channels (3).
    pro: apply ``0.7 x + 0.15`` before and its inverse after the network.
    border: ``'reflect'`` (the published code) or ``'edge'``.
    num_feat: the U-Nets' base width (64 in the releases; the widths are ``num_feat / 2``,
      ``num_feat``, 2x and 4x it; a multiple of 8 for the SE reduction).
  """
  scale: int = 2
  channels: int = 3
  pro: bool = False
  border: str = 'reflect'
  num_feat: int = 64

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Emulates its own true-size borders; global SE means: infinite reach."""
    return common.SpatialRule(common.TRUE_SIZE, reach=np.inf, scale=self.scale)

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False,
               true_size: TrueSize | None = None) -> Array:
    del train
    _check_scale('RealCUGAN', self.scale, (2, 3, 4))
    common.check_channels(x, self.channels, 'RealCUGAN')
    if self.pro:
      x = x * 0.7 + 0.15
    y = cascade(x, scale=self.scale, channels=self.channels, mode=self.border,
                true_size=true_size, num_feat=self.num_feat)
    if self.pro:
      y = (y - 0.15) / 0.7
    return y
