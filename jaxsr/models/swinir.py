"""SwinIR: image super-resolution with shifted-window Transformer blocks.

J. Liang, J. Cao, G. Sun, K. Zhang, L. Van Gool, R. Timofte, "SwinIR: Image
Restoration Using Swin Transformer", ICCV Workshops (AIM) 2021.

Contract: LR ``[N, h, w, C]`` float32 in [0, 1] -> SR ``[N, s*h, s*w, C]`` for
any ``h, w >= 1``. The image is first padded on its bottom/right to a multiple
of the window size by reflection (as the reference implementation does), the
network runs on the padded image, and the output is cropped back to
``s*h x s*w``.

Structure (names are the Flax submodules; PyTorch names in brackets)::

  x - mean -> conv_first -> patch_norm [patch_embed.norm]
    -> layers_i (RSTB) [layers.i]: blocks_j [residual_group.blocks.j] then
       conv [conv] (or conv_0/1/2 [conv.0/2/4] for '3conv') + skip
    -> norm -> conv_after_body [conv_after_body] + conv_first output
    -> upsampler -> + mean

A Swin block is ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``; the
attention is multi-head self-attention inside non-overlapping ``ws x ws``
windows with a learnt relative-position bias
(``attn/relative_position_bias_table [(2ws-1)^2, heads]``); every second block
(odd ``j``) first rolls the image by ``-ws//2`` on both axes and masks
attention between pixels that the roll brought together from opposite borders.
The relative-position index and the masks are derived from the configuration
and the input size (static numpy), never stored. With symbolic sizes
(``jax.export``) the padding, the rolls and the masks take slice / broadcast
forms with the same values (:func:`window_mask`; the padding by
:func:`jaxsr.models.realcugan.extend_axis`), so the model exports at any size.

Upsamplers (``upsampler``):

* ``'pixelshuffle'`` (classical SR): ``conv_before_upsample`` (to ``num_feat``,
  leaky ReLU 0.01) -> ``upsample`` (EDSR-style sub-pixel stages) ->
  ``conv_last``.
* ``'pixelshuffledirect'`` (lightweight SR): one conv to ``C*s*s`` channels
  and ``depth_to_space(s)`` (``upsample``).
* ``'nearest+conv'`` (real-world SR): ``conv_before_upsample`` -> (nearest x2
  -> ``conv_up{k}`` -> leaky ReLU 0.2) per x2 stage -> ``conv_hr`` -> leaky ReLU
  0.2 -> ``conv_last``.

Spatial behaviour (``jaxsr.models.common.SpatialRule``): the output depends on
the image size through the window padding, and window boundaries are aligned to
the image origin, so neither padded size buckets nor tiles reproduce the
whole-image output. The padding layer and each Swin block declare
``'exact_size_only'``: ``jaxsr.inference.upscale`` refuses ``bucket=...`` for
SwinIR in one line (use ``bucket=None``), and ``receptive_radius`` is
``math.inf`` (tiles approximate the whole-image result; use a generous
overlap).

Reference configurations (registry): ``swinir`` classical (embed 180, 6 RSTB x
6 blocks, 6 heads, window 8, MLP ratio 2, 'pixelshuffle'); ``swinir_light``
(embed 60, 4 x 6, 'pixelshuffledirect'); ``swinir_real`` (``swinir`` with
'nearest+conv', the real-world x4 model; SwinIR-L: ``embed_dim=240``,
``depths=(6,)*9``, ``num_heads=(8,)*9``, ``resi_connection='3conv'``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import common
from jaxsr.models import realcugan

Array = jax.Array

UPSAMPLERS = ('pixelshuffle', 'pixelshuffledirect', 'nearest+conv')
_LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def _dense_init():
  return nn.initializers.truncated_normal(0.02)


def relative_position_index(window_size: int) -> np.ndarray:
  """``[ws*ws, ws*ws]`` int: the bias-table row of every (query, key) pixel pair in a window.

  Row ``(dy + ws - 1) * (2ws - 1) + (dx + ws - 1)`` for the offset ``(dy, dx)`` from the key
  to the query.
  """
  ws = window_size
  yy, xx = np.meshgrid(np.arange(ws), np.arange(ws), indexing='ij')
  coords = np.stack([yy.ravel(), xx.ravel()])  # [2, ws*ws]
  rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)
  return (rel[0] * (2 * ws - 1) + rel[1]).astype(np.int64)


def _partition_np(a: np.ndarray, ws: int) -> np.ndarray:
  """``[H, W]`` -> ``[nW, ws*ws]`` (windows in row-major order)."""
  h, w = a.shape
  return a.reshape(h // ws, ws, w // ws, ws).transpose(0, 2, 1, 3).reshape(-1, ws * ws)


def shifted_window_mask(height: int, width: int, window_size: int,
                        shift: int) -> np.ndarray:
  """``[nW, ws*ws, ws*ws]`` float32: 0 where two pixels of a rolled window may attend, -100
  where the roll brought them together from different parts of the image."""
  ws = window_size
  labels = np.zeros((height, width), np.int64)
  bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
  n = 0
  for hs in bands:
    for wsl in bands:
      labels[hs, wsl] = n
      n += 1
  win = _partition_np(labels, ws)
  return np.where(win[:, None, :] != win[:, :, None], -100., 0.).astype(np.float32)


def window_mask(rows: int, cols: int, window_size: int, shift: int) -> Array:
  """:func:`shifted_window_mask` of a ``rows*ws x cols*ws`` image, built by broadcasting
  from the four window kinds (last window row or not, last window column or not), so that
  ``rows`` and ``cols`` may be symbolic (``jax.export``): ``[rows*cols, ws*ws, ws*ws]``.

  Only the last row and column of windows hold pixels that the roll brought from the
  opposite border; every other window's mask is zero.
  """
  ws = window_size
  kinds = shifted_window_mask(2 * ws, 2 * ws, ws, shift).reshape(2, 2, ws * ws, ws * ws)
  base, last_row, last_col = kinds[0, 0], kinds[1, 0] - kinds[0, 0], kinds[0, 1] - kinds[0, 0]
  both = kinds[1, 1] - kinds[1, 0] - kinds[0, 1] + kinds[0, 0]

  def is_last(count):
    return jnp.concatenate([jnp.zeros((count - 1,), jnp.float32), jnp.ones((1,), jnp.float32)])

  r = is_last(rows)[:, None, None, None]
  c = is_last(cols)[None, :, None, None]
  mask = base + r * last_row + c * last_col + (r * c) * both
  return mask.reshape(rows * cols, ws * ws, ws * ws)


def _roll(x: Array, shift: int) -> Array:
  """``jnp.roll(x, (shift, shift), axis=(1, 2))``; by lax slices when H, W are symbolic."""
  if isinstance(x.shape[1], int) and isinstance(x.shape[2], int):
    return jnp.roll(x, (shift, shift), axis=(1, 2))
  for axis in (1, 2):
    n = x.shape[axis]
    k = shift % n if isinstance(n, int) else (n + shift if shift < 0 else shift)
    x = jnp.concatenate([jax.lax.slice_in_dim(x, n - k, n, axis=axis),
                         jax.lax.slice_in_dim(x, 0, n - k, axis=axis)], axis=axis)
  return x


def _partition(x: Array, ws: int) -> Array:
  n, h, w, c = x.shape
  x = x.reshape(n, h // ws, ws, w // ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n * (h // ws) * (w // ws), ws * ws, c)


def _merge(x: Array, ws: int, n: int, h: int, w: int) -> Array:
  c = x.shape[-1]
  x = x.reshape(n, h // ws, w // ws, ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h, w, c)


class WindowPad(nn.Module):
  """Reflect-pads ``[N, H, W, C]`` on the bottom/right to multiples of ``multiple``."""
  multiple: int

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """The padded size, and so every later window, depends on the image size."""
    return common.SpatialRule(common.EXACT_SIZE_ONLY, reach=math.inf)

  def __call__(self, x: Array) -> Array:
    h, w = x.shape[1], x.shape[2]
    if not (isinstance(h, int) and isinstance(w, int)):
      # Symbolic sizes (jax.export): the same reflection by slices, to m * ceil(n / m).
      for axis in (1, 2):
        x = realcugan.extend_axis(x, axis, pad=0, align=self.multiple, mode='reflect')
      return x
    ph, pw = (-h) % self.multiple, (-w) % self.multiple
    if not (ph or pw):
      return x
    return jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode='reflect')


class WindowAttention(nn.Module):
  """Multi-head self-attention within windows, with a relative-position bias.

  ``[B', ws*ws, C]`` (+ an optional ``[nW, ws*ws, ws*ws]`` additive mask, ``B'`` a multiple
  of ``nW``) -> ``[B', ws*ws, C]``. Submodules ``qkv`` (Dense ``3C``), ``proj`` (Dense ``C``);
  parameter ``relative_position_bias_table [(2ws-1)^2, heads]``.
  """
  dim: int
  num_heads: int
  window_size: int

  @nn.compact
  def __call__(self, x: Array, mask: np.ndarray | Array | None = None) -> Array:
    b, n, c = x.shape
    heads, ws = self.num_heads, self.window_size
    hd = c // heads
    table = self.param('relative_position_bias_table', _dense_init(),
                       ((2 * ws - 1) ** 2, heads), jnp.float32)
    qkv = nn.Dense(3 * c, kernel_init=_dense_init(), name='qkv')(x)
    qkv = qkv.reshape(b, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # [3, B', heads, N, hd]
    # lax.index_in_dim: slices (integer indexing of a symbolic-size array is a gather).
    q, k, v = (jax.lax.index_in_dim(qkv, i, axis=0, keepdims=False) for i in range(3))
    q = q * (hd ** -0.5)
    attn = q @ jnp.swapaxes(k, -1, -2)  # [B', heads, N, N]
    bias = table[relative_position_index(ws).reshape(-1)].reshape(n, n, heads)
    attn = attn + bias.transpose(2, 0, 1)[None]
    if mask is not None:
      nw = mask.shape[0]
      attn = attn.reshape(b // nw, nw, heads, n, n) + jnp.asarray(mask)[None, :, None]
      attn = attn.reshape(b, heads, n, n)
    attn = jax.nn.softmax(attn, axis=-1)
    y = (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, c)
    return nn.Dense(c, kernel_init=_dense_init(), name='proj')(y)


class SwinBlock(nn.Module):
  """One (shifted-)window Transformer block on ``[N, H, W, C]`` (``H, W`` multiples of ws).

  Submodules ``norm1``, ``attn`` (:class:`WindowAttention`), ``norm2``, ``fc1`` (Dense
  ``C*mlp_ratio``), exact GELU, ``fc2`` (PyTorch ``mlp.fc1`` / ``mlp.fc2``).
  """
  dim: int
  num_heads: int
  window_size: int
  shift: int
  mlp_ratio: float

  @nn.nowrap
  def spatial_rule(self) -> common.SpatialRule:
    """Windows are aligned to the (padded) image origin: exact at the image's own size only."""
    return common.SpatialRule(common.EXACT_SIZE_ONLY, reach=self.window_size - 1)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    n, h, w, c = x.shape
    ws, shift = self.window_size, self.shift
    y = nn.LayerNorm(epsilon=_LN_EPS, name='norm1')(x)
    if shift:
      y = _roll(y, -shift)
    if not shift:
      mask = None
    elif isinstance(h, int) and isinstance(w, int):
      mask = shifted_window_mask(h, w, ws, shift)
    else:
      mask = window_mask(h // ws, w // ws, ws, shift)
    y = WindowAttention(c, self.num_heads, ws, name='attn')(_partition(y, ws), mask)
    y = _merge(y, ws, n, h, w)
    if shift:
      y = _roll(y, shift)
    x = x + y
    y = nn.LayerNorm(epsilon=_LN_EPS, name='norm2')(x)
    y = nn.Dense(int(c * self.mlp_ratio), kernel_init=_dense_init(), name='fc1')(y)
    y = nn.gelu(y, approximate=False)
    y = nn.Dense(c, kernel_init=_dense_init(), name='fc2')(y)
    return x + y


def _resi_conv(x: Array, dim: int, kind: str, name: str) -> Array:
  """'1conv': a 3x3 conv ``name``; '3conv': ``name_0`` 3x3 (C/4) -> lrelu 0.2 -> ``name_1``
  1x1 -> lrelu 0.2 -> ``name_2`` 3x3 (C). Called inside a compact method."""
  if kind == '1conv':
    return common.Conv(dim, 3, name=name)(x)
  x = common.Conv(dim // 4, 3, name=f'{name}_0')(x)
  x = common.Conv(dim // 4, 1, name=f'{name}_1')(nn.leaky_relu(x, 0.2))
  return common.Conv(dim, 3, name=f'{name}_2')(nn.leaky_relu(x, 0.2))


class RSTB(nn.Module):
  """Residual Swin Transformer block: ``x + conv(blocks(x))``; submodules ``blocks_j`` and
  ``conv`` (or ``conv_0/1/2`` for '3conv')."""
  dim: int
  depth: int
  num_heads: int
  window_size: int
  mlp_ratio: float
  resi_connection: str

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = x
    for j in range(self.depth):
      shift = 0 if j % 2 == 0 else self.window_size // 2
      y = SwinBlock(self.dim, self.num_heads, self.window_size, shift, self.mlp_ratio,
                    name=f'blocks_{j}')(y)
    return x + _resi_conv(y, self.dim, self.resi_connection, 'conv')


class SwinIR(nn.Module):
  """SwinIR (Liang et al., ICCVW 2021) for super-resolution: see the module docstring.

  Attributes:
    scale: upscaling factor (2, 3, 4, 8 for 'pixelshuffle'; any >= 2 for
      'pixelshuffledirect'; 2, 4, 8 for 'nearest+conv').
    embed_dim: channels of the Transformer body.
    depths: Swin blocks per residual group (RSTB).
    num_heads: attention heads per residual group.
    window_size: attention window side.
    mlp_ratio: MLP hidden width / ``embed_dim``.
    upsampler: one of ``UPSAMPLERS``.
    resi_connection: '1conv' or '3conv' (the convolution closing each RSTB and the body).
    num_feat: channels of the 'pixelshuffle' / 'nearest+conv' reconstruction.
    channels: image channels (3: the DIV2K mean is subtracted; else none).
    img_range: the body sees ``(x - mean) * img_range``.
  """
  scale: int = 4
  embed_dim: int = 180
  depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  window_size: int = 8
  mlp_ratio: float = 2.
  upsampler: str = 'pixelshuffle'
  resi_connection: str = '1conv'
  num_feat: int = 64
  channels: int = 3
  img_range: float = 1.

  def _check(self) -> None:
    if self.upsampler not in UPSAMPLERS:
      raise ValueError(f"SwinIR: unknown upsampler {self.upsampler!r}; known: {UPSAMPLERS}")
    if self.resi_connection not in ('1conv', '3conv'):
      raise ValueError(f"SwinIR: resi_connection must be '1conv' or '3conv', got "
                       f"{self.resi_connection!r}")
    if len(self.depths) != len(self.num_heads):
      raise ValueError(f"SwinIR: {len(self.depths)} depths but {len(self.num_heads)} num_heads")
    if any(self.embed_dim % h for h in self.num_heads):
      raise ValueError(f"SwinIR: embed_dim {self.embed_dim} is not a multiple of every "
                       f"num_heads {self.num_heads}")
    if self.upsampler == 'pixelshuffle':
      common.upsample_stages(self.scale)
    if self.upsampler == 'nearest+conv' and self.scale not in (2, 4, 8):
      raise ValueError(f"SwinIR 'nearest+conv' supports scales 2, 4, 8, got {self.scale}")

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    del train
    self._check()
    common.check_channels(x, self.channels, 'SwinIR')
    h, w = x.shape[1], x.shape[2]
    s, dim = self.scale, self.embed_dim
    mean = jnp.asarray(common.DIV2K_RGB_MEAN if self.channels == 3 else (0.,) * self.channels,
                       jnp.float32)
    x = WindowPad(self.window_size, name='pad')(x)
    x = (x - mean) * self.img_range
    x = common.Conv(dim, 3, name='conv_first')(x)
    y = nn.LayerNorm(epsilon=_LN_EPS, name='patch_norm')(x)
    for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      y = RSTB(dim, depth, heads, self.window_size, self.mlp_ratio, self.resi_connection,
               name=f'layers_{i}')(y)
    y = nn.LayerNorm(epsilon=_LN_EPS, name='norm')(y)
    x = x + _resi_conv(y, dim, self.resi_connection, 'conv_after_body')
    if self.upsampler == 'pixelshuffle':
      x = nn.leaky_relu(common.Conv(self.num_feat, 3, name='conv_before_upsample')(x), 0.01)
      x = common.Upsampler(s, self.num_feat, name='upsample')(x)
      x = common.Conv(self.channels, 3, name='conv_last')(x)
    elif self.upsampler == 'pixelshuffledirect':
      x = common.Conv(self.channels * s * s, 3, name='upsample')(x)
      x = common.depth_to_space(x, s)
    else:
      x = nn.leaky_relu(common.Conv(self.num_feat, 3, name='conv_before_upsample')(x), 0.01)
      for k in range(int(math.log2(s))):
        x = common.Upsample(2, 'nearest', name=f'nearest_{k + 1}')(x)
        x = nn.leaky_relu(common.Conv(self.num_feat, 3, name=f'conv_up{k + 1}')(x), 0.2)
      x = nn.leaky_relu(common.Conv(self.num_feat, 3, name='conv_hr')(x), 0.2)
      x = common.Conv(self.channels, 3, name='conv_last')(x)
    x = x / self.img_range + mean
    return realcugan.crop_to(x, s * h, s * w)
