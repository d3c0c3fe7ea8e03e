"""Whole-image super-resolution inference: any size, few compilations.

Contract: ``upscale(model, variables, images)`` takes LR images as float32 in
[0, 1] -- one ``[h, w, C]`` array, an ``[N, h, w, C]`` batch or a list of
differently sized ``[h, w, C]`` arrays (``[h, w]`` is treated as one channel)
-- and returns SR images of the same structure, as numpy float32
``[s*h, s*w, C]`` (not clipped).

How it avoids one compilation per image
---------------------------------------
Each image is padded at the bottom/right (edge mode) up to a *size bucket*
(the next multiple of ``bucket`` LR pixels in each dimension, 64 by default) and images of
one bucket are batched; the jitted forward pass is cached per model and
traced once per distinct ``(bucket height, bucket width, channels, batch)``
(batches are padded to a power of two up to ``batch_size``). With tiling
every tile has the shape ``tile x tile``, so a whole data set compiles once
or twice (full batches and the last, smaller one).

Padding alone would change the output near the true bottom/right border:
a zero-'same'-padded convolution next to the border must see zeros there,
not the padded pixels (or, after the first layer, non-zero activations of
the padded region). ``upscale`` therefore runs the model under a Flax method
interceptor that receives each image's true size (as traced values, so they
do not cause recompilation) and emulates the unpadded network exactly. It
knows no layer classes: every leaf layer declares its
:class:`jaxsr.models.common.SpatialRule` (``spatial_rule()``, read through
:func:`jaxsr.models.common.spatial_rule_of`), and the interceptor applies it:

* ``'zero'`` (zero-padded convolutions and transposed convolutions): the
  input is multiplied by the valid-region mask, so the layer sees zeros
  beyond the true border;
* ``'edge'`` (edge-padded convolutions, SRCNN's default; bilinear
  upsampling): the input is replaced by the replicate extension of its valid
  region;
* ``'symmetric'`` (MATLAB bicubic upsampling): the input is replaced by the
  symmetric extension of its valid region, a few pixels larger, and the
  output cropped back;
* ``'mean'`` (global average pooling, RCAN's channel attention): the mean
  over the valid region;
* ``'pointwise'`` (1x1 convs, activations, nearest upsampling): nothing;
* ``'true_size'`` (Real-CUGAN, waifu2x: 'valid' convolutions after their own
  border extension): the layer is called with ``true_size=(vh, vw)`` and
  emulates the unpadded network itself; the layers inside it run unmodified.

Modules that only compose other modules (they call at least one other
module) need no rule. A leaf layer without one (a raw ``flax.linen.Conv``
with a kernel larger than 1x1, ``ConvTranspose``, pooling, a user's layer),
or one declaring ``'exact_size_only'`` ('valid' convolutions), makes
bucketed inference raise :class:`jaxsr.errors.InputError` naming the layer:
run such a model with ``bucket=None`` (one compilation per distinct image
shape; tiles no larger than the images), which runs it unmodified. So
bucketed output equals exact-size output up to float rounding for every
model it runs (measured max difference ~1e-6 for all zoo models). The valid
size of an activation follows from its size relative to the padded input, so
layers must change resolution by a constant factor.

Compilations for Set14 (14 images, 10 distinct sizes; LR = modcrop(HR) /
scale), whole images, default ``bucket=64``, ``batch_size=1``: 4 at x4 (LR
buckets 128x128 with 9 images, 128x192 and 192x192 with 2 each, 128x64 with
1), 5 at x3 and 8 at x2. With
``bucket=32`` it is 8 / 9 / 9 (x4 / x3 / x2) and with ``bucket=None`` 10 at
every scale (one per distinct size). Tiled with ``tile=64, tile_overlap=16,
batch_size=4``: 1 at x4 and x2, 2 at x3 (full batches and one smaller last
batch). :func:`plan_compilations` predicts the count for any list of shapes;
:func:`compile_count` counts actual traces.

Tiling
------
``tile=T`` splits each image into ``T x T`` LR tiles whose starts step by
``T - tile_overlap``; the last tile in each row/column is shifted to end at
the image border (so tiles never leave the image, and images smaller than
``T`` are padded and masked as above). Tiling is exact -- the result equals
whole-image inference up to float rounding -- when ``tile_overlap // 2`` is at
least the model's receptive-field radius in LR pixels
(:func:`receptive_radius`: e.g. EDSR-baseline 36, so ``tile_overlap=72``;
:func:`exact_overlap`, :func:`tiling_is_exact`); then each output pixel is
taken from the tile in which it is farthest from a cut (the seams lie in the
middle of the overlaps) and the result is the same as before blending
existed. No finite overlap is exact for models with global operations (RCAN's
channel attention sees only its tile, as in RCAN's own chopped inference).
Smaller overlaps are usual in practice (RRDBNet's radius is ~350 LR px): then
tiles are an approximation, and by default (``blend=None``) the overlaps are
blended: each tile's output is weighted by a linear ramp that rises from ~0
at its cut to 1 at ``tile_overlap`` LR pixels inside (image borders get no
ramp), normalised to sum to 1 at every pixel (separable: row x column
weights), so no seam shows. ``blend=True`` / ``False`` force either way.
``benchmarks/tile_error.py`` measures the error of approximate tiling per
model family.

Reduced precision
-----------------
``dtype='bfloat16'`` (or ``'float16'``) casts the parameters and the input to
that dtype for the forward pass (so it computes in it, where the layers follow
their inputs' dtype, as jaxsr's do); the output is float32 all the same.

Memory
------
Tiled inference writes (or adds, when blending) each tile's output straight into a
preallocated float32 output, so it holds the output plus one batch of tiles; ``upscale_image`` converts to uint8 (and does
a Y model's chroma upscaling in float64) in strips of rows. :func:`forward_memory` estimates
a whole-image pass from XLA's compiled memory analysis (:func:`plan_memory` compares it with
:func:`available_memory` and picks a tile size when it does not fit).

Self-ensemble
-------------
``self_ensemble=True`` runs the 8 dihedral transforms of each input (4
rotations by 90 degrees x optional horizontal flip), inverts each output and
averages them (EDSR's "+" results).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import runtime
from jaxsr.errors import InputError
from jaxsr.models import common

Array = jax.Array

_TRACES = 0
_CACHE: dict[Any, Any] = {}


def compile_count() -> int:
  """Number of times ``upscale`` has traced (hence compiled) a forward pass."""
  return _TRACES


def clear_cache() -> None:
  """Drops the cached jitted forward passes and resets :func:`compile_count`."""
  global _TRACES
  _CACHE.clear()
  _TRACES = 0


# ----------------------------------------------------------------------------
# Valid-region emulation.


def _valid(n: Array, size: int, ref: int) -> Array:
  """Valid length at an activation of ``size`` pixels for input bucket ``ref``."""
  return (n * size) // ref


def _mask(vh: Array, vw: Array, h: int, w: int) -> Array:
  mh = jnp.arange(h)[None, :] < vh[:, None]
  mw = jnp.arange(w)[None, :] < vw[:, None]
  return (mh[:, :, None] & mw[:, None, :])[..., None]


def _edge_index(valid: Array, size: int) -> Array:
  return jnp.minimum(jnp.arange(size)[None, :], valid[:, None] - 1)


def _symmetric_index(valid: Array, size: int) -> Array:
  i = jnp.arange(size)[None, :]
  n = valid[:, None]
  j = i % (2 * n)
  return jnp.where(j < n, j, 2 * n - 1 - j)


def _gather(x: Array, ih: Array, iw: Array) -> Array:
  return jax.vmap(lambda xi, a, b: xi[a][:, b])(x, ih, iw)


def _where(mod: nn.Module) -> str:
  path = '/'.join(str(p) for p in getattr(mod, 'path', ()) or ())
  where = f"layer '{path}'" if path else 'the model itself'
  return f"{where} ({type(mod).__module__}.{type(mod).__qualname__})"


def _spatial_interceptor(handle: Callable[..., Any], undeclared: Callable[[nn.Module], Exception]):
  """A Flax interceptor that hands each spatial layer's ``__call__`` to ``handle``.

  ``handle(mod, rule, next_fun, x, rest, kwargs)`` runs for every call on an
  ``[N, H, W, C]`` array of a module with a :class:`~jaxsr.models.common.SpatialRule`
  (``rule``). A module without one that calls other modules is a composition
  and runs as it is; one that calls none is a leaf layer of unknown spatial
  behaviour, and ``undeclared(mod)`` is raised. Inside a ``'true_size'`` layer
  (which emulates its own borders) every call runs as it is.
  """
  open_calls: list[list[bool]] = []  # per open undeclared call: did it call another module?
  inside_true_size = [0]

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name != '__call__':
      return next_fun(*args, **kwargs)
    if open_calls:
      open_calls[-1][0] = True
    if inside_true_size[0]:
      return next_fun(*args, **kwargs)
    mod = context.module
    if not args or getattr(args[0], 'ndim', 0) != 4:
      return next_fun(*args, **kwargs)
    rule = common.spatial_rule_of(mod)
    if rule is not None and rule.valid_region == common.TRUE_SIZE:
      inside_true_size[0] += 1
      try:
        return handle(mod, rule, next_fun, args[0], args[1:], kwargs)
      finally:
        inside_true_size[0] -= 1
    if rule is not None:
      return handle(mod, rule, next_fun, args[0], args[1:], kwargs)
    open_calls.append([False])
    try:
      y = next_fun(*args, **kwargs)
    finally:
      composed = open_calls.pop()[0]
    if not composed:
      raise undeclared(mod)
    return y

  return interceptor


def _bucketing_error(mod: nn.Module, why: str) -> InputError:
  return InputError(
      f"{_where(mod)} {why}, so inference on images padded to size buckets cannot reproduce "
      "its unpadded output; use bucket=None (and no tile larger than an image) for exact results",
      field='bucket')


def _make_interceptor(hb: int, wb: int, hv: Array, wv: Array):
  """Interceptor emulating unpadded execution for inputs padded to ``hb x wb``."""

  def handle(mod, rule, next_fun, x, rest, kwargs):
    kind = rule.valid_region
    if kind == common.POINTWISE:
      return next_fun(x, *rest, **kwargs)
    if kind == common.EXACT_SIZE_ONLY:
      raise _bucketing_error(mod, "declares that it works on exact sizes only")
    h, w = x.shape[1], x.shape[2]
    vh, vw = _valid(hv, h, hb), _valid(wv, w, wb)
    if kind == common.TRUE_SIZE:
      return next_fun(x, *rest, true_size=(vh, vw), **kwargs)
    if kind == common.ZERO:
      return next_fun(x * _mask(vh, vw, h, w).astype(x.dtype), *rest, **kwargs)
    if kind == common.MEAN:
      total = jnp.sum(x * _mask(vh, vw, h, w).astype(x.dtype), axis=(1, 2), keepdims=True)
      return total / (vh * vw).astype(x.dtype)[:, None, None, None]
    index = {common.EDGE: _edge_index, common.SYMMETRIC: _symmetric_index}[kind]
    m = rule.margin
    y = next_fun(_gather(x, index(vh, h + m), index(vw, w + m)), *rest, **kwargs)
    if m:
      y = y[:, :round(rule.scale * h), :round(rule.scale * w)]
    return y

  return _spatial_interceptor(
      handle, lambda mod: _bucketing_error(mod, "declares no spatial rule (spatial_rule())"))


def _forward(model: nn.Module, variables: Any, x: Array, hv: Array, wv: Array,
             padded: bool, dtype: str | None = None) -> Array:
  global _TRACES
  _TRACES += 1
  if dtype is not None:
    x = x.astype(dtype)
  if not padded:
    y = model.apply(variables, x)
  else:
    interceptor = _make_interceptor(x.shape[1], x.shape[2], hv, wv)
    with nn.intercept_methods(interceptor):
      y = model.apply(variables, x)
  return y.astype(jnp.float32) if dtype is not None else y


def _jitted(model: nn.Module):
  try:
    key = ('model', model)
    hash(key)
  except TypeError:
    key = ('id', id(model))
  fn = _CACHE.get(key)
  if fn is None:
    fn = jax.jit(functools.partial(_forward, model), static_argnames=('padded', 'dtype'))
    _CACHE[key] = fn
  return fn


DTYPES = ('float32', 'bfloat16', 'float16')


def _compute_dtype(dtype: Any) -> str | None:
  """``None``/``'float32'`` -> None (no cast); ``'bfloat16'``/``'float16'`` (or the numpy /
  jnp dtypes) -> their name; anything else raises ``InputError`` (field ``dtype``)."""
  if dtype is None:
    return None
  try:
    name = jnp.dtype(dtype).name
  except TypeError:
    name = str(dtype)
  if name not in DTYPES:
    raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", field='dtype')
  return None if name == 'float32' else name


def _cast_variables(variables: Any, dtype: str | None) -> Any:
  """Floating leaves of ``variables`` cast to ``dtype`` (integer leaves kept)."""
  if dtype is None:
    return variables

  def cast(a):
    a = jnp.asarray(a)
    return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

  return jax.tree.map(cast, variables)


_RADII: dict[Any, float | None] = {}


def _cached_radius(model: nn.Module, channels: int | None = None) -> float | None:
  """:func:`receptive_radius` cached per model; None when a layer declares no rule."""
  try:
    key = (model, channels)
    hash(key)
  except TypeError:
    key = (id(model), channels)
  if key not in _RADII:
    try:
      _RADII[key] = receptive_radius(model, channels=channels)
    except ValueError:
      _RADII[key] = None
  return _RADII[key]


def exact_overlap(model: nn.Module, *, channels: int | None = None) -> int | None:
  """The smallest ``tile_overlap`` with which tiles give the whole-image output.

  ``2 * receptive_radius(model)``; None when no finite overlap is exact (global pooling, as in
  RCAN) or the radius is unknown (a layer without a spatial rule). The tile must exceed it.
  """
  radius = _cached_radius(model, channels)
  if radius is None or not np.isfinite(radius):
    return None
  return int(2 * radius)


def tiling_is_exact(model: nn.Module, tile_overlap: int, *, channels: int | None = None) -> bool:
  """Whether tiles with ``tile_overlap`` reproduce the whole-image output (float rounding aside).

  True when ``tile_overlap // 2`` covers :func:`receptive_radius`; then :func:`upscale` cuts
  the tiles at the middle of their overlaps (no blending), as before blending existed.
  """
  radius = _cached_radius(model, channels)
  return radius is not None and np.isfinite(radius) and tile_overlap // 2 >= radius


_EXACT: dict[Any, bool] = {}


class _Undeclared(Exception):
  pass


def needs_exact_sizes(model: nn.Module, *, channels: int | None = None) -> bool:
  """Whether a layer of ``model`` declares ``'exact_size_only'`` (e.g. SwinIR's window
  attention, whose windows start at the image origin). :func:`upscale` then runs such a model
  at each image's exact size whatever ``bucket`` says (one compilation per distinct shape), as
  padding it to a size bucket would change its output. Cached per model."""
  c = channels or getattr(model, 'channels', 3)
  try:
    key = (model, c)
    hash(key)
  except TypeError:
    key = (id(model), c)
  if key not in _EXACT:
    found = [False]

    def handle(mod, rule, next_fun, x, rest, kwargs):
      del mod
      found[0] |= rule.valid_region == common.EXACT_SIZE_ONLY
      return next_fun(x, *rest, **kwargs)

    try:
      with nn.intercept_methods(_spatial_interceptor(handle, lambda mod: _Undeclared())):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, c))))
    except _Undeclared:
      pass  # bucketing refuses such a model itself, naming the layer
    _EXACT[key] = found[0]
  return _EXACT[key]


def receptive_radius(model: nn.Module, *, channels: int | None = None) -> float:
  """Receptive-field radius of ``model`` in LR pixels (an upper bound).

  The sum, over every layer met in a forward pass, of the ``reach`` its
  :class:`~jaxsr.models.common.SpatialRule` declares (in its own input pixels)
  converted to LR pixels (a 3x3 conv at x2 resolution reaches 0.5 LR px;
  bicubic upsampling 2 px, bilinear 1 px; transposed convs their tap reach),
  rounded up. Exact for chains of layers (all zoo models up to their parallel
  upsampled-input branches). ``math.inf`` for models with global pooling
  (RCAN), which no finite overlap makes exact.

  Tiled inference equals whole-image inference when
  ``tile_overlap >= 2 * receptive_radius(model)``.

  Raises:
    ValueError: a leaf layer of ``model`` declares no spatial rule.
  """
  c = channels or getattr(model, 'channels', 3)
  size = 32
  total = 0.

  def handle(mod, rule, next_fun, x, rest, kwargs):
    del mod
    nonlocal total
    total += rule.reach * (size / x.shape[1])
    return next_fun(x, *rest, **kwargs)

  def undeclared(mod):
    return ValueError(f"{_where(mod)} declares no spatial rule (spatial_rule()), so its "
                      "receptive field is unknown")

  with nn.intercept_methods(_spatial_interceptor(handle, undeclared)):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, c))))
  return float(np.ceil(total)) if np.isfinite(total) else float('inf')


# ----------------------------------------------------------------------------
# Planning: buckets, batches, tiles.


def _bucket(n: int, bucket: int | None) -> int:
  return n if not bucket else -(-n // bucket) * bucket


def _batch_bucket(n: int, batch_size: int) -> int:
  return min(batch_size, 1 << (n - 1).bit_length())


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
  for i in range(0, len(seq), size):
    yield seq[i:i + size]


def _tile_starts(n: int, tile: int, overlap: int) -> list[int]:
  if n <= tile:
    return [0]
  step = tile - overlap
  starts = list(range(0, n - tile, step))
  return starts + [n - tile]


def _ownership(starts: list[int], length: int, n: int) -> list[tuple[int, int]]:
  """Per tile, the interval ``[b0, b1)`` of the image it writes (seams mid-overlap)."""
  bounds = [0]
  for a, b in zip(starts[:-1], starts[1:]):
    bounds.append((b + a + length) // 2)
  bounds.append(n)
  return list(zip(bounds[:-1], bounds[1:]))


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
  rot, flip = k % 4, k >= 4
  if flip:
    x = x[:, ::-1]
  return np.rot90(x, rot, axes=(0, 1))


def _dihedral_inverse(y: np.ndarray, k: int) -> np.ndarray:
  rot, flip = k % 4, k >= 4
  y = np.rot90(y, -rot, axes=(0, 1))
  if flip:
    y = y[:, ::-1]
  return y


def plan_compilations(shapes: Sequence[tuple[int, ...]], *, tile: int | None = None,
                      tile_overlap: int = 16, bucket: int | None = 64, batch_size: int = 1,
                      self_ensemble: bool = False) -> set[tuple[int, int, int, int]]:
  """The distinct ``(batch, H, W, C)`` inputs ``upscale`` compiles for LR ``shapes``.

  Takes the same options as :func:`upscale`; ``len()`` of the result is the
  number of compilations for a model not used before.
  """
  shapes = [tuple(s) + (1,) if len(s) == 2 else tuple(s) for s in shapes]
  if self_ensemble:
    shapes = [t for h, w, c in shapes for t in [(h, w, c)] * 4 + [(w, h, c)] * 4]
  groups = collections.Counter()
  for h, w, c in shapes:
    if tile:
      n = len(_tile_starts(h, tile, tile_overlap)) * len(_tile_starts(w, tile, tile_overlap))
      groups[(tile, tile, c)] += n
    else:
      groups[(_bucket(h, bucket), _bucket(w, bucket), c)] += 1
  keys = set()
  for (hb, wb, c), n in groups.items():
    for chunk in _chunks(range(n), batch_size):
      keys.add((_batch_bucket(len(chunk), batch_size), hb, wb, c))
  return keys


# ----------------------------------------------------------------------------
# Running.


def _iter_padded(fn, variables, items: Sequence[tuple[np.ndarray, int, int]],
                 shape: tuple[int, int], batch_size: int, precision: str | None,
                 padded: bool, dtype: str | None = None) -> Iterable[tuple[int, np.ndarray]]:
  """Runs crops ``(array, h, w)`` (each at most ``shape``) padded to ``shape``.

  Yields ``(index into items, output)`` one forward pass at a time, so a caller that stores
  each output where it belongs holds no more than one batch of them. ``padded=False``
  promises that every crop has exactly ``shape`` and runs the model as it is, without
  valid-region emulation.
  """
  hb, wb = shape
  for start in range(0, len(items), batch_size):
    chunk = items[start:start + batch_size]
    nb = _batch_bucket(len(chunk), batch_size)
    c = chunk[0][0].shape[-1]
    x = np.zeros((nb, hb, wb, c), np.float32)
    hv = np.full((nb,), hb, np.int32)
    wv = np.full((nb,), wb, np.int32)
    for j, (im, h, w) in enumerate(chunk):
      x[j] = np.pad(im, ((0, hb - h), (0, wb - w), (0, 0)), mode='edge')
      hv[j], wv[j] = h, w
    with jax.default_matmul_precision(precision):
      y = fn(variables, jnp.asarray(x), jnp.asarray(hv), jnp.asarray(wv), padded=padded,
             dtype=dtype)
    del x
    y = np.asarray(y)
    for j in range(len(chunk)):
      yield start + j, y[j]


def _run_whole(fn, variables, imgs, scale, bucket, batch_size, precision, dtype=None):
  groups = collections.defaultdict(list)
  for i, im in enumerate(imgs):
    h, w, c = im.shape
    groups[(_bucket(h, bucket), _bucket(w, bucket), c)].append(i)
  out: list[np.ndarray | None] = [None] * len(imgs)
  for (hb, wb, _), idxs in groups.items():
    items = [(imgs[i], imgs[i].shape[0], imgs[i].shape[1]) for i in idxs]
    for k, y in _iter_padded(fn, variables, items, (hb, wb), batch_size, precision,
                             padded=bool(bucket), dtype=dtype):
      h, w = imgs[idxs[k]].shape[:2]
      crop = y[:h * scale, :w * scale]
      # A crop of a bucket-sized output is copied, so the padded output can be freed.
      out[idxs[k]] = crop if crop.shape == y.shape else np.ascontiguousarray(crop)
  return out


_FEATHER_MARGIN = 0.25  # of the overlap, next to a cut, where a tile's weight is 0


def _feather(starts: list[int], length: int, n: int, scale: int, overlap: int) -> list[np.ndarray]:
  """Per tile along one axis, its float32 blending weight at each of its HR pixels.

  A tile's raw weight is 0 within ``_FEATHER_MARGIN * overlap`` LR pixels of a cut (an edge
  inside the image, where a tile's output is least like the whole image's) and rises linearly
  to 1 over the next ``(1 - 2 * _FEATHER_MARGIN) * overlap`` (edges on the image border get no
  ramp): two neighbours' ramps are complementary across the middle of their overlap. The
  weights are then divided by their sum over the tiles, so they add up to 1 at every pixel
  (also where more than two tiles overlap). The 2-D weight is the product of the row and
  column weights, which therefore also add up to 1.
  """
  margin = _FEATHER_MARGIN * overlap * scale
  ramp = max(overlap * scale - 2 * margin, 1)
  total = np.zeros(n * scale, np.float64)
  raw = []
  for a in starts:
    p = np.arange(a * scale, (a + length) * scale, dtype=np.float64)
    d = np.full(p.shape, np.inf)
    if a > 0:
      d = np.minimum(d, p - a * scale + 0.5)
    if a + length < n:
      d = np.minimum(d, (a + length) * scale - p - 0.5)
    w = np.clip((d - margin) / ramp, 0.0, 1.0)
    raw.append(w)
    total[a * scale:(a + length) * scale] += w
  total = np.maximum(total, 1e-12)  # every pixel has a tile with weight > 0; guard anyway
  return [(w / total[a * scale:(a + length) * scale]).astype(np.float32)
          for a, w in zip(starts, raw)]


def _new_output(shape: tuple[int, ...]) -> np.ndarray:
  """The float32 output of a tiled pass, zeroed (and its pages touched: ``np.full``, not the
  lazily mapped ``np.zeros``, so that its memory counts from the start)."""
  return np.full(shape, 0.0, np.float32)


def _run_tiled(fn, variables, imgs, scale, tile, overlap, batch_size, precision, blend=False,
               dtype=None):
  """Tiled inference that writes each tile's output into a preallocated output at once.

  ``blend=False``: each tile writes the part of the image it owns (cuts mid-overlap).
  ``blend=True``: each tile adds its output times its feathered weight (:func:`_feather`).
  """
  if not 0 <= overlap < tile:
    raise ValueError(f"need 0 <= tile_overlap < tile, got {overlap}, {tile}")
  s = scale
  # channels -> [(img, y0, x0, th, tw, (a0, a1), (b0, b1), (row weights, column weights))]
  jobs = collections.defaultdict(list)
  for i, im in enumerate(imgs):
    h, w, c = im.shape
    ys0, xs0 = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    th, tw = min(tile, h), min(tile, w)
    own_y, own_x = _ownership(ys0, th, h), _ownership(xs0, tw, w)
    if blend:
      wys, wxs = _feather(ys0, th, h, s, overlap), _feather(xs0, tw, w, s, overlap)
    else:
      wys, wxs = [None] * len(ys0), [None] * len(xs0)
    for y0, oy, wy in zip(ys0, own_y, wys):
      for x0, ox, wx in zip(xs0, own_x, wxs):
        jobs[c].append((i, y0, x0, th, tw, oy, ox, (wy, wx)))
  out: list[np.ndarray | None] = [None] * len(imgs)
  for _, job in jobs.items():
    items = [(imgs[j[0]][j[1]:j[1] + j[3], j[2]:j[2] + j[4]], j[3], j[4]) for j in job]
    padded = any(j[3] < tile or j[4] < tile for j in job)
    for k, t in _iter_padded(fn, variables, items, (tile, tile), batch_size, precision, padded,
                             dtype=dtype):
      i, y0, x0, th, tw, (a0, a1), (b0, b1), (wy, wx) = job[k]
      if out[i] is None:
        h, w = imgs[i].shape[:2]
        out[i] = _new_output((h * s, w * s, t.shape[-1]))
      if blend:
        weight = wy[:, None, None] * wx[None, :, None]
        out[i][y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += t[:th * s, :tw * s] * weight
      else:
        out[i][a0 * s:a1 * s, b0 * s:b1 * s] = t[(a0 - y0) * s:(a1 - y0) * s,
                                                 (b0 - x0) * s:(b1 - x0) * s]
  return out


# ----------------------------------------------------------------------------
# Memory: estimate a whole-image pass before running it; pick a tile size that fits.

MEMORY_ENV = 'JAXSR_MEMORY_LIMIT'
_PROBE_SIZES = (64, 128)  # LR sizes whose compiled memory fixes the linear estimate
TILE_CANDIDATES = (1024, 768, 512, 384, 256, 192, 128, 96, 64)
_FOOTPRINTS: dict[Any, tuple[float, float]] = {}


def _gib(n: float) -> str:
  return f'{n / 2**30:.2f} GiB'


def _parse_bytes(given: str) -> int:
  text = given.strip().upper().removesuffix('B')
  units = {'K': 2**10, 'M': 2**20, 'G': 2**30, 'T': 2**40}
  factor = units.get(text[-1:], 1)
  number = text[:-1] if text[-1:] in units else text
  try:
    value = float(number) * factor
  except ValueError:
    raise InputError(f'expected a byte count such as 2G or 500M, got {given!r}',
                     field=MEMORY_ENV) from None
  if value <= 0:
    raise InputError(f'expected a positive byte count, got {given!r}', field=MEMORY_ENV)
  return int(value)


def available_memory() -> int | None:
  """Bytes that one forward pass may use, or None when unknown.

  ``$JAXSR_MEMORY_LIMIT`` (e.g. ``8G``, ``500M``, or bytes) when set; else, when JAX runs on
  an accelerator, its free memory (``bytes_limit - bytes_in_use`` of the first device's
  ``memory_stats()``); else the host's ``MemAvailable`` (``/proc/meminfo``), or psutil's
  ``virtual_memory().available`` where there is no ``/proc``.
  """
  env = os.environ.get(MEMORY_ENV)
  if env:
    return _parse_bytes(env)
  device = jax.devices()[0]
  if device.platform != 'cpu':
    stats = device.memory_stats() or {}
    if 'bytes_limit' in stats:
      return int(stats['bytes_limit']) - int(stats.get('bytes_in_use', 0))
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    import psutil  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return int(psutil.virtual_memory().available)


def _footprint(model: nn.Module, variables: Any, channels: int) -> tuple[float, float] | None:
  """``(fixed, per_pixel)`` bytes of a padded forward pass from XLA's memory analysis.

  Compiles (does not run) the forward pass at two small LR sizes and fits
  ``bytes = fixed + per_pixel * batch * H * W`` through XLA's argument + output + temporary
  sizes (linear in the pixel count for convolutional models). Cached per model.
  """
  fn = _jitted(model)
  try:
    key = (model, channels)
    hash(key)
  except TypeError:
    key = (id(model), channels)
  if key in _FOOTPRINTS:
    return _FOOTPRINTS[key]
  totals = []
  for n in _PROBE_SIZES:
    lowered = fn.lower(variables, jax.ShapeDtypeStruct((1, n, n, channels), jnp.float32),
                       jax.ShapeDtypeStruct((1,), jnp.int32),
                       jax.ShapeDtypeStruct((1,), jnp.int32),
                       padded=not needs_exact_sizes(model, channels=channels))
    stats = lowered.compile().memory_analysis()
    if stats is None:
      return None
    totals.append(stats.argument_size_in_bytes + stats.output_size_in_bytes +
                  stats.temp_size_in_bytes)
  (n0, n1), (t0, t1) = _PROBE_SIZES, totals
  per_pixel = max((t1 - t0) / (n1 * n1 - n0 * n0), 0.)
  fixed = max(t0 - per_pixel * n0 * n0, 0.)
  if jax.devices()[0].platform == 'cpu' and runtime.xla_cpu_im2col_convolutions():
    per_pixel += _im2col_per_pixel(model, variables, channels)
  _FOOTPRINTS[key] = (fixed, per_pixel)
  return fixed, per_pixel


def _im2col_per_pixel(model: nn.Module, variables: Any, channels: int) -> float:
  """Bytes per LR pixel of the largest convolution patch buffer (``runtime.
  xla_cpu_im2col_convolutions``): ``H x W x kh x kw x C_in`` float32 values at the resolution
  each convolution runs at, found by tracing the model once (``jax.eval_shape``) at a probe
  size with an interceptor that sees every convolution's input."""
  n = _PROBE_SIZES[0]
  largest = [0.]

  def record(next_fun, args, kwargs, context):
    mod = context.module
    if (context.method_name == '__call__' and args and isinstance(mod, (nn.Conv, common.Conv))
        and getattr(args[0], 'ndim', 0) == 4):
      ks = mod.kernel_size
      kh, kw = (ks, ks) if isinstance(ks, int) else (tuple(ks) + (1, 1))[:2]
      _, h, w, c = args[0].shape
      largest[0] = max(largest[0], 4. * h * w * kh * kw * c / (n * n))
    return next_fun(*args, **kwargs)

  def forward(v, x):
    with nn.intercept_methods(record):
      return model.apply(v, x)

  jax.eval_shape(forward, variables, jax.ShapeDtypeStruct((1, n, n, channels), jnp.float32))
  return largest[0]


def forward_memory(model: nn.Module, variables: Any, shape: Sequence[int], *,
                   scale: int | None = None, batch_size: int = 1,
                   bucket: int | None = 64) -> int | None:
  """Estimated peak bytes of ``upscale`` on one LR image of ``shape`` ``(h, w, C)``.

  The device part is XLA's compiled memory analysis of the forward pass (weights,
  activations, workspace) at two small sizes, scaled by the padded pixel count times the
  batch (a batch of 1 for whole images: images are not batched with themselves); the host
  part is the float32 padded input and two float32 copies of the output (as
  :func:`upscale` returns it) plus the uint8 result. None when XLA gives no memory analysis.
  """
  if isinstance(variables, Mapping) and 'params' not in variables:
    variables = {'params': variables}
  h, w, c = (tuple(shape) + (1,))[:3] if len(shape) == 2 else tuple(shape)
  scale = int(scale or getattr(model, 'scale'))
  footprint = _footprint(model, variables, c)
  if footprint is None:
    return None
  fixed, per_pixel = footprint
  if needs_exact_sizes(model, channels=c):
    bucket = None
  hb, wb = _bucket(h, bucket), _bucket(w, bucket)
  del batch_size  # one whole image per pass
  out_channels = int(getattr(model, 'channels', c))
  host = 4 * hb * wb * c + (2 * 4 + 1) * h * w * scale * scale * max(out_channels, c)
  return int(fixed + per_pixel * hb * wb + host)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """How to run one image within the memory there is (:func:`plan_memory`).

  Attributes:
    tile: None to run the whole image, else the LR tile size to use.
    need: estimated bytes of the whole-image pass (:func:`forward_memory`).
    tile_need: estimated bytes with ``tile`` (None for whole images).
    available: the bytes there were to spend (before ``fraction``).
  """
  tile: int | None
  need: int
  tile_need: int | None
  available: int


def plan_memory(model: nn.Module, variables: Any, shape: Sequence[int], *,
                scale: int | None = None, tile: int | None = None, tile_overlap: int = 16,
                batch_size: int = 1, bucket: int | None = 64, available: int | None = None,
                fraction: float = 0.8) -> MemoryPlan | None:
  """Checks that upscaling an LR image of ``shape`` fits in memory; picks a tile if needed.

  With ``tile=None``: the whole image when :func:`forward_memory` is at most ``fraction`` of
  ``available`` (default :func:`available_memory`), else the largest of
  :data:`TILE_CANDIDATES` (above ``tile_overlap``) whose tiled pass fits. With a ``tile``:
  that tile, if it fits. A tiled pass needs the output (float32 and uint8) plus one batch of
  tiles (``batch_size`` of them).

  Returns:
    The plan, or None when the memory or the estimate is unknown (run as asked).

  Raises:
    InputError: (field ``tile``) nothing fits; the message gives the estimate, the memory
      there is and, where some tile fits, the tile size to use.
  """
  if isinstance(variables, Mapping) and 'params' not in variables:
    variables = {'params': variables}
  available = available_memory() if available is None else int(available)
  if available is None:
    return None
  h, w, c = (tuple(shape) + (1,))[:3] if len(shape) == 2 else tuple(shape)
  scale = int(scale or getattr(model, 'scale'))
  need = forward_memory(model, variables, (h, w, c), scale=scale, bucket=bucket)
  if need is None:
    return None
  fixed, per_pixel = _footprint(model, variables, c)  # cached by forward_memory
  budget = fraction * available
  out_channels = int(getattr(model, 'channels', c))
  output = (4 + 1) * h * w * scale * scale * max(out_channels, c)

  def tiled(t: int) -> int:
    return int(fixed + per_pixel * t * t * _batch_bucket(batch_size, batch_size) + output)

  what = f'upscaling {w}x{h} at x{scale}'
  if tile is None and need <= budget:
    return MemoryPlan(tile=None, need=need, tile_need=None, available=available)
  if tile is not None:
    if tiled(tile) <= budget:
      return MemoryPlan(tile=tile, need=need, tile_need=tiled(tile), available=available)
  fits = [t for t in TILE_CANDIDATES if t > tile_overlap and t < max(h, w) and tiled(t) <= budget]
  where = f'{_gib(budget)} usable ({fraction:.0%} of {_gib(available)} available)'
  if tile is not None:
    advice = f'use tile {fits[0]}' if fits else 'no tile size fits'
    raise InputError(f'{what} with tile {tile} needs ~{_gib(tiled(tile))}, {where}; {advice}',
                     field='tile')
  if not fits:
    raise InputError(f'{what} needs ~{_gib(need)} whole and ~{_gib(tiled(TILE_CANDIDATES[-1]))} '
                     f'even with tile {TILE_CANDIDATES[-1]}; {where}', field='tile')
  return MemoryPlan(tile=fits[0], need=need, tile_need=tiled(fits[0]), available=available)


def upscale(model: nn.Module, params: Any, images: Any, *, scale: int | None = None,
            tile: int | None = None, tile_overlap: int = 16, self_ensemble: bool = False,
            batch_size: int = 1, bucket: int | None = 64,
            precision: str | None = 'highest', dtype: Any = None,
            blend: bool | None = None) -> Any:
  """Super-resolves whole images of any size with a jaxsr (or any NHWC Flax) model.

  Args:
    model: a Flax module mapping ``[N, h, w, C]`` to ``[N, s*h, s*w, C]``.
    params: its variables, ``{'params': ...}`` (plus ``'batch_stats'`` for
      models with batch normalisation, which run in inference mode).
    images: ``[h, w, C]`` (or ``[h, w]``), ``[N, h, w, C]``, or a list of such
      single images of any sizes; float32 in [0, 1].
    scale: the model's factor; defaults to ``model.scale``.
    tile: LR tile size, or None for whole images.
    tile_overlap: overlap of neighbouring tiles in LR pixels; exact when
      ``tile_overlap // 2`` covers the receptive-field radius.
    self_ensemble: average over the 8 flips/rotations (x8 the cost).
    batch_size: most images (or tiles) per forward pass.
    bucket: pad sizes up to multiples of this (None: exact sizes, one
      compilation per distinct shape, and the model runs unmodified; needed
      by models with a layer that declares no spatial rule). Models with a layer
      that works on exact sizes only (:func:`needs_exact_sizes`: SwinIR) always
      run at exact sizes.
    precision: ``jax.default_matmul_precision`` during the forward pass
      ('highest' keeps float32 convolutions on TPU/GPU, as evaluation needs).
    dtype: compute dtype, ``'float32'`` (None, the default), ``'bfloat16'`` or ``'float16'``:
      the parameters and the input are cast to it for the forward pass; the output is float32
      all the same.
    blend: how tiles are joined. None (default): cut mid-overlap when the overlap covers the
      receptive radius (:func:`tiling_is_exact`: the result is the whole-image output), else
      blend; True: blend the overlaps with feathered linear weights (no visible seams where
      tiles are approximate); False: always cut mid-overlap.

  Returns:
    Same structure as ``images``: numpy float32 ``[s*h, s*w, C]`` arrays.

  Raises:
    InputError: an unknown ``dtype`` (field ``dtype``).
  """
  compute = _compute_dtype(dtype)
  if isinstance(params, Mapping) and 'params' not in params:
    params = {'params': params}
  scale = int(scale or getattr(model, 'scale'))
  def as_float(a):
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
      raise ValueError(f"images must be float in [0, 1], got dtype {a.dtype} (divide uint8 by 255)")
    return a.astype(np.float32, copy=False)

  if isinstance(images, (list, tuple)):
    structure = 'list'
    imgs = [as_float(im) for im in images]
  else:
    arr = as_float(images)
    structure = {2: 'single', 3: 'single', 4: 'batch'}.get(arr.ndim)
    if structure is None:
      raise ValueError(f"images must be [h, w(, C)] or [N, h, w, C], got {arr.shape}")
    imgs = list(arr) if arr.ndim == 4 else [arr]
  squeeze = [im.ndim == 2 for im in imgs]
  imgs = [im[..., None] if sq else im for im, sq in zip(imgs, squeeze)]
  if any(im.ndim != 3 for im in imgs):
    raise ValueError("every image must be [h, w] or [h, w, C]")
  if self_ensemble:
    work = [np.ascontiguousarray(_dihedral(im, k)) for im in imgs for k in range(8)]
  else:
    work = imgs
  fn = _jitted(model)
  params = _cast_variables(params, compute)
  if tile:
    if blend is None:
      blend = not tiling_is_exact(model, tile_overlap, channels=work[0].shape[-1] if work else None)
    outs = _run_tiled(fn, params, work, scale, tile, tile_overlap, batch_size, precision,
                      blend=bool(blend), dtype=compute)
  else:
    if bucket and work and needs_exact_sizes(model, channels=work[0].shape[-1]):
      bucket = None
    outs = _run_whole(fn, params, work, scale, bucket, batch_size, precision, dtype=compute)
  if self_ensemble:
    outs = [np.mean([_dihedral_inverse(outs[8 * i + k], k) for k in range(8)], axis=0,
                    dtype=np.float32) for i in range(len(imgs))]
  outs = [np.ascontiguousarray(o[..., 0] if sq else o, dtype=np.float32)
          for o, sq in zip(outs, squeeze)]
  if structure == 'batch':
    return np.stack(outs)
  if structure == 'single':
    return outs[0]
  return outs


def _to_uint8(x: np.ndarray) -> np.ndarray:
  """0..255 floats -> uint8, clipped and rounded half up."""
  return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def _to_int(x: np.ndarray, dtype: Any) -> np.ndarray:
  """0..peak floats -> ``dtype`` (uint8: peak 255; uint16: 65535), clipped and rounded half up."""
  peak = float(np.iinfo(dtype).max)
  return np.floor(np.clip(x, 0.0, peak) + 0.5).astype(dtype)


def _bicubic_planes(planes: np.ndarray, s: int, out: np.ndarray, dtype: Any) -> None:
  """MATLAB-bicubic upscaling of ``planes`` (``[H, W, k]`` 0..peak) by ``s`` into ``out``, in
  strips of rows with the 4-row margin that makes them exact."""
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top

  h, w = planes.shape[:2]
  margin = 4
  for r0, r1 in _strips(h, w * s * s * planes.shape[-1]):
    a0, a1 = max(r0 - margin, 0), min(r1 + margin, h)
    up = imresize.imresize_np(planes[a0:a1].astype(np.float64), s)
    out[r0 * s:r1 * s] = _to_int(up[(r0 - a0) * s:(r1 - a0) * s], dtype)


ALPHA_MODES = ('bicubic', 'model')


def upscale_image(image: np.ndarray, model: nn.Module, variables: Any, *, scale: int,
                  luma: str | None = None, alpha: str = 'bicubic',
                  **upscale_kw: Any) -> np.ndarray:
  """Super-resolves one image file's pixels: ``[H, W, C]`` -> ``[sH, sW, C]``, same dtype.

  ``image`` is uint8 (0..255) or uint16 (16-bit files, 0..65535; the output stays 16-bit) with
  ``C`` = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).

  RGB models (``model.channels == 3``, the default) get the RGB image; a grey image is
  replicated to 3 channels and the mean of the output's channels is returned as grey.
  1-channel (Y) models upscale only the luma of a colour image: it is converted to YCbCr of
  the standard ``luma`` (``'matlab'``, the default for None, or ``'opencv'``: see
  ``jaxsr.color``; the one the weights were trained on), the model upscales Y / 255, Cb and Cr
  are upscaled with MATLAB bicubic, and the result is converted back to RGB. A grey image is
  its own Y. Output values are clipped to the dtype's range and rounded half up.

  An alpha channel (the last of 2 or 4) is upscaled on its own: ``alpha='bicubic'`` (default)
  with MATLAB bicubic (``jaxsr.imresize``: smooth, no invented detail in a mask), or
  ``alpha='model'`` with the model on the alpha plane replicated to the model's channels (what
  Real-ESRGAN's inference script does by default; the output's mean channel).

  Args:
    image: uint8 or uint16 ``[H, W, 1|2|3|4]``.
    model: a Flax SR module with a ``scale`` (and ``channels``, default 3).
    variables: its variables.
    scale: the upscaling factor.
    luma: the YCbCr standard of a Y model (ignored by RGB models).
    alpha: how an alpha channel is upscaled, ``'bicubic'`` or ``'model'``.
    **upscale_kw: options of :func:`upscale` (``tile``, ``tile_overlap``,
      ``self_ensemble``, ``batch_size``, ``dtype``, ...).

  Raises:
    InputError: a model with other than 1 or 3 channels; an image of another dtype or
      channel count; an unknown ``alpha``.
  """
  from jaxsr import color  # pylint: disable=g-import-not-at-top
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top

  channels = int(getattr(model, 'channels', 3))
  if channels not in (1, 3):
    raise InputError(f'upscale_image: models with {channels} channels are not supported')
  if image.dtype not in (np.uint8, np.uint16):
    raise InputError(f'upscale_image: expected uint8 or uint16 pixels, got {image.dtype}')
  if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
    raise InputError(f'upscale_image: expected [H, W, 1|2|3|4], got {image.shape}')
  if alpha not in ALPHA_MODES:
    raise InputError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}",
                     field='alpha')
  dtype = image.dtype
  peak = float(np.iinfo(dtype).max)
  h, w, c_all = image.shape
  has_alpha = c_all in (2, 4)
  c = c_all - 1 if has_alpha else c_all
  s = int(scale)
  out = np.empty((h * s, w * s, c_all), dtype)

  def run(x: np.ndarray) -> np.ndarray:
    return upscale(model, variables, x, scale=s, **upscale_kw)

  if has_alpha:
    plane = image[..., -1:]
    if alpha == 'bicubic':
      _bicubic_planes(plane, s, out[..., -1:], dtype)
    else:
      sr = run(np.repeat(plane, channels, axis=-1) / np.float32(peak))
      for r0, r1 in _strips(h, w * s * s * channels):
        part = sr[r0 * s:r1 * s].astype(np.float64).mean(-1, keepdims=True) * peak
        out[r0 * s:r1 * s, :, -1:] = _to_int(part, dtype)
      del sr
  image = image[..., :c]
  # The float64 steps run on strips of rows, so that no full-size float64 array exists.
  strips = _strips(h, w * s * s * 3)
  if channels == 3:
    rgb = np.repeat(image, 3, axis=-1) if c == 1 else image
    sr = run(rgb / np.float32(peak))
    del rgb
    for r0, r1 in strips:
      part = sr[r0 * s:r1 * s].astype(np.float64) * peak
      out[r0 * s:r1 * s, :, :c] = _to_int(part.mean(-1, keepdims=True) if c == 1 else part,
                                          dtype)
    return out
  if c == 1:
    sr = run(image / np.float32(peak))
    for r0, r1 in strips:
      out[r0 * s:r1 * s, :, :1] = _to_int(sr[r0 * s:r1 * s].astype(np.float64) * peak, dtype)
    return out
  unit = 255.0 / peak  # jaxsr.color works in 0..255
  y = np.empty((h, w, 1), np.float32)
  for r0, r1 in strips:
    y[r0:r1] = color.rgb_to_ycbcr(image[r0:r1] * unit, standard=luma)[..., :1] / 255.0
  sr = run(y)
  del y
  # MATLAB bicubic upscaling reads 2 LR rows either side: strips with a 4-row margin give
  # exactly the whole image's chroma.
  margin = 4
  for r0, r1 in strips:
    a0, a1 = max(r0 - margin, 0), min(r1 + margin, h)
    ycc = color.rgb_to_ycbcr(image[a0:a1] * unit, standard=luma)
    chroma = imresize.imresize_np(ycc[..., 1:], s)[(r0 - a0) * s:(r1 - a0) * s]
    ycc = np.concatenate([sr[r0 * s:r1 * s].astype(np.float64) * 255.0, chroma], -1)
    out[r0 * s:r1 * s, :, :3] = _to_int(color.ycbcr_to_rgb(ycc, standard=luma) / unit, dtype)
  return out


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """MATLAB-bicubic resize (``jaxsr.imresize``, antialiased when shrinking) of a uint8/uint16
  ``[H, W, C]`` image to ``size = (height, width)``, same dtype, in strips of output rows (no
  full-size float64 array; the result equals one whole-image resize up to float rounding)."""
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top

  h, w, c = image.shape
  oh, ow = int(size[0]), int(size[1])
  if (oh, ow) == (h, w):
    return image.copy()
  wy, iy = imresize.weights_and_indices(h, oh, oh / h)
  wx, ix = imresize.weights_and_indices(w, ow, ow / w)
  out = np.empty((oh, ow, c), image.dtype)
  for r0, r1 in _strips(oh, max(w, ow) * c * 2):
    rows = np.zeros((r1 - r0, w, c), np.float64)
    for p in range(wy.shape[1]):
      rows += wy[r0:r1, p, None, None] * image[iy[r0:r1, p]]
    cols = np.zeros((r1 - r0, ow, c), np.float64)
    for p in range(wx.shape[1]):
      cols += wx[None, :, p, None] * rows[:, ix[:, p]]
    out[r0:r1] = _to_int(cols, image.dtype)
  return out


def _strips(rows: int, bytes_per_row: int, *, budget: int = 2**27) -> list[tuple[int, int]]:
  """``[(r0, r1), ...]`` covering ``rows`` with about ``budget`` bytes of float64 each."""
  step = max(8, budget // max(8 * bytes_per_row, 1))
  return [(r, min(r + step, rows)) for r in range(0, rows, step)]
