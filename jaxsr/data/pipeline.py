"""Training and evaluation input pipelines: paired random patches, deterministic and resumable.

Contract:
  * Images are uint8 in the cache (as decoded from a ``jaxsr.data.sources`` source: the
    prepared tfds records of a builder, an HR folder, or LR/HR folders paired by name); batches leave as float32
    in [0, 1], NHWC, as dicts with keys ``lr`` ``[b, p, p, C]`` and ``hr`` ``[b, s*p, s*p, C]``
    (``b`` = this host's share of the global batch), plus ``scale`` (int32 ``[b]``) in
    multi-scale mode. C is 3 (RGB; greyscale sources replicated) or 1 with ``y_channel=True``,
    which degrades exactly as the ``y`` evaluation protocol (``jaxsr.degradations``) does: HR is the
    MATLAB ``rgb2ycbcr`` Y rounded to uint8 (a greyscale source is its own Y), and LR is
    ``imresize(HR / 255, 1 / s)`` in float, not quantised (made once, when the cache is built).
    So a Y model is trained on the same degradation it is evaluated with.
  * Paired crop: the LR patch is cut at a random position ``(y, x)`` of the stored LR image and
    the HR patch at ``(s*y, s*x)`` of the HR image (whose modcrop is the LR's source), so the
    pair is aligned exactly. Random horizontal flip, vertical flip and rot90 (k in 0..3) are
    applied identically to both.
  * Determinism, resumption and topology: the global batch of step ``k`` is a pure function of
    ``(seed, k)`` and the data, the same for any number of hosts and devices; host ``p`` of
    ``P`` makes global slots ``[p * b, (p + 1) * b)`` of it (``b = global_batch / P``). So a
    run restarted at step ``k`` (``iterate(start_step=k)``) on any topology yields exactly the
    batches an uninterrupted run yields from step ``k``, with no iterator state to checkpoint
    beyond the step number. The order is defined over ``S`` fixed *shards* (``shards``; default
    ``min(global_batch, n_images)``, independent of the topology): image ``i`` belongs to shard
    ``i % S``, and global slot ``j`` of every batch draws from shard ``j * S // global_batch``
    (each shard has ``c_s >= 1`` consecutive slots). Slot ``j`` of step ``k`` takes draw
    ``q = k * c_s + r`` (``r``: its rank among its shard's slots) of its shard, which walks its
    images in per-epoch permutations drawn from ``(seed, shard, q // n_s)``. Crop positions
    (uniform fractions of the free range), flips and quarter turns of all global slots are drawn
    from ``(seed, k)``; each host keeps its slice.
  * Hosts: each host loads and decodes only the images of the shards its slots draw from: with
    ``S >= P`` that is about ``1 / P`` of the set (neighbouring hosts may share one boundary
    shard); with fewer shards than hosts, hosts share shards (each decodes the shards it
    needs). The trade-off of a topology-free order: a host's share is fixed by the shard layout,
    not by ``images[p::P]``, and a shard is a slice of the set, so the images of one batch come
    from ``S`` different shards (never two from one shard in the same step when ``S`` equals
    the global batch). A shard whose images are all smaller than the patch draws from the next
    usable shard (a property of the data, so still topology-free).
    Assemble the global array with ``jax.make_array_from_process_local_data``.
  * Streaming (``StreamPipeline``, ``mode='stream'``): the same slot/shard layout, for sets
    larger than memory, reading from disk in bounded memory; see its docstring.
  * Sample orders (``order``, in-memory mode only): ``'global'`` (the default) is the
    topology-free order above. ``'host'`` is the order of jaxsr's earlier releases, which
    trained the published recipe figures, kept so that those runs reproduce bit for bit: the
    images are dealt out ``images[process_index::process_count]``; each host walks its usable
    images (each image times each ``hr_rescales`` factor, in that order) in per-epoch
    permutations drawn from ``(seed, process_index, process_count, epoch)``, sample ``j`` of
    step ``k`` being ``perm_e[g % n]`` with ``g = k * b + j`` and ``e = g // n``; its crop
    positions (uniform integers over the free range), flips and turns are drawn from
    ``(seed, process_index, process_count, k)``. It resumes exactly on the same number of hosts
    only (``check_resume_order``); every host needs at least one image.
  * Static shapes: every batch has the same shape (a step never yields a partial batch).
  * Caching: decoded images are kept in memory (uint8). T91 / the embedded set take a few MB;
    DIV2K (800 HR + x2 LR) about 8.3 GB, divided by the number of hosts (when there are at least
    as many shards as hosts); larger sets use stream mode. Patches are then cut
    from memory, so per-step cost is a few copies (tens of thousands of patches/s on one core,
    see BENCHMARKS.md); PNG decoding happens once, in parallel, when the pipeline is made.
  * Multi-scale (VDSR): pass ``scale=(2, 3, 4)`` and ``hr_patch_size``. Each step draws one
    scale from ``(seed, step)`` (the same on every host); ``lr`` is then the LR bicubic-upscaled
    to HR size (MATLAB ``imresize``, rounded to uint8, precomputed at cache time) cropped at the
    same position as ``hr``: both ``[b, P, P, C]``, and ``scale`` says which scale it was.
  * HR rescaling augmentation (FSRCNN): ``hr_rescales=(1.0, 0.9, 0.8, 0.7, 0.6)`` adds, at
    cache time, each HR image downscaled by those factors (MATLAB bicubic) with its own LR; each
    (image, factor) is one image of the pool.
  * HR only (``with_lr=False``, for tasks that degrade the HR crop themselves on device, e.g. the
    Real-ESRGAN tasks: ``jaxsr.tasks.base.Task.needs_lr``): no LR is made or cached (the
    MATLAB-bicubic x4 LR of a 2K image is about 0.3 CPU s: most of stream mode's CPU time, see
    ``benchmarks/input_pipeline.py --no-lr``) and batches carry ``hr`` (+ ``scale``) only.
    The crop positions are still drawn over the LR's size (the stored LR's, else
    ``H // s, W // s``), so batch ``k``'s ``hr`` is bit-identical to the one it has with the
    LR, in every mode and order.
  * Bad input: images whose LR (or, in multi-scale mode, HR) is smaller than the patch are
    skipped, counted in ``skipped`` and reported in one warning.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import os
import threading
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from jaxsr.color import y_uint8
from jaxsr.data import builders
from jaxsr.data import sources
from jaxsr.data.builders import SRExample
from jaxsr.degradations import lr_rgb, lr_y
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np

__all__ = ['MODES', 'ORDERS', 'SlotLayout', 'StreamPipeline', 'TrainPipeline',
           'check_resume_order', 'crop_draws', 'default_shards', 'eval_dataset', 'make_pipeline',
           'train_dataset', 'paired_crop', 'paired_transform', 'to_float']

# Stream tags keep the random streams of different purposes apart.
_PERM, _CROP, _SCALE, _BLOCK = 0x9E3, 0xC40, 0x5CA, 0xB10


def paired_crop(lr: np.ndarray, hr: np.ndarray, *, y: int, x: int, lr_size: int,
                scale: int) -> tuple[np.ndarray, np.ndarray]:
  """Crops an aligned pair: ``lr[y:y+p, x:x+p]`` and ``hr[s*y:s*(y+p), s*x:s*(x+p)]``."""
  return (lr[y:y + lr_size, x:x + lr_size],
          hr[scale * y:scale * (y + lr_size), scale * x:scale * (x + lr_size)])


def paired_transform(*images: np.ndarray, hflip: bool, vflip: bool, rot: int) -> tuple[np.ndarray, ...]:
  """Applies the same flips and ``rot90`` (``rot`` quarter turns) to each ``[H, W, C]`` image."""
  rot %= 4
  out = []
  for image in images:  # plain slicing and transposes (views): np.flip / np.rot90 cost ~5 us a call
    if hflip:
      image = image[:, ::-1]
    if vflip:
      image = image[::-1]
    if rot == 1:  # np.rot90(image, 1, axes=(0, 1))
      image = image[:, ::-1].swapaxes(0, 1)
    elif rot == 2:
      image = image[::-1, ::-1]
    elif rot == 3:
      image = image.swapaxes(0, 1)[:, ::-1]
    out.append(image)
  return tuple(out)


def to_float(batch: np.ndarray) -> np.ndarray:
  """uint8 -> float32 in [0, 1]."""
  return batch.astype(np.float32) * np.float32(1.0 / 255.0)


@dataclasses.dataclass(frozen=True)
class _Item:
  name: str
  hr: np.ndarray  # uint8 [H, W, C] (C = 1: the rounded Y in y_channel mode)
  lr: dict[int, np.ndarray]  # scale -> LR (uint8; float32 Y in y_channel mode), HR-size in
                             # multi-scale mode; empty with ``with_lr=False``
  lr_shape: dict[int, tuple[int, int]]  # scale -> (height, width) of that LR, made or not: the
                                        # crop positions are drawn over it either way


def _rng(*words: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([int(w) & 0xFFFFFFFFFFFF for w in words]))


class SlotLayout:
  """Which shard and which draw of it each global slot of a step takes (topology-free).

  See the module docstring: slot ``j`` belongs to shard ``j * S // B``; ``counts[s]`` slots per
  shard; host ``p`` of ``P`` makes slots ``[p * b, (p + 1) * b)``.
  """

  def __init__(self, *, global_batch: int, shards: int, process_index: int = 0,
               process_count: int = 1):
    if not 1 <= shards <= global_batch:
      raise InputError(f'shards must be in [1, batch_size={global_batch}], got {shards}',
                       field='shards')
    self.global_batch, self.shards = int(global_batch), int(shards)
    self.slot_shard = np.arange(global_batch, dtype=np.int64) * shards // global_batch
    self.counts = np.bincount(self.slot_shard, minlength=shards)
    first = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
    self.slot_rank = np.arange(global_batch, dtype=np.int64) - first[self.slot_shard]
    b = global_batch // process_count
    self.local = np.arange(process_index * b, (process_index + 1) * b, dtype=np.int64)
    self.local_shards = sorted({int(s) for s in self.slot_shard[self.local]})

  def draws(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    """``(shard, draw)`` of this host's slots at ``step`` (int64 ``[b]`` each)."""
    shard = self.slot_shard[self.local]
    return shard, step * self.counts[shard] + self.slot_rank[self.local]


def default_shards(global_batch: int, num_images: int) -> int:
  """``min(global_batch, num_images)``: the default shard count (independent of the topology)."""
  return max(1, min(int(global_batch), int(num_images)))


def crop_draws(seed: int, step: int, global_batch: int, local: np.ndarray, *, flips: bool,
               rot90: bool, tag: int = _CROP) -> tuple[np.ndarray, ...]:
  """Crop fractions ``(uy, ux)`` in [0, 1) and ``(hflip, vflip, rot)`` of ``local`` slots.

  Drawn for every global slot from ``(seed, step)`` and sliced, so a slot's values do not depend
  on the topology.
  """
  b = global_batch
  rng = _rng(seed, tag, step)
  uy, ux = rng.random(b), rng.random(b)
  hflip = rng.integers(0, 2, b) if flips else np.zeros(b, np.int64)
  vflip = rng.integers(0, 2, b) if flips else np.zeros(b, np.int64)
  rot = rng.integers(0, 4, b) if rot90 else np.zeros(b, np.int64)
  return tuple(a[local] for a in (uy, ux, hflip, vflip, rot))


def crop_offset(u: float, size: int, patch: int) -> int:
  """The crop start for fraction ``u`` in [0, 1): uniform over ``0 .. size - patch``."""
  return min(int(u * (size - patch + 1)), size - patch)


def _as_source(examples):
  return examples if isinstance(examples, sources.Source) else sources.ListSource(examples)


ORDERS = ('global', 'host')


def _check_order(order: str) -> str:
  if order not in ORDERS:
    raise InputError(f'unknown sample order {order!r}; expected one of {", ".join(ORDERS)}',
                     field='order')
  return str(order)


def check_resume_order(order: str, *, saved_process_count: int | None,
                       process_count: int) -> None:
  """Refuses to resume a ``'host'``-order run on another number of hosts (one line).

  Args:
    order: the sample order of the resumed run.
    saved_process_count: the number of hosts that wrote the checkpoint (None: unknown, as in
      checkpoints of earlier releases; then nothing is checked).
    process_count: the number of hosts now.

  Raises:
    InputError: (``field='order'``) ``order == 'host'`` and the host count changed.
  """
  if (_check_order(order) == 'host' and saved_process_count is not None
      and int(saved_process_count) != int(process_count)):
    raise InputError(
        f"the 'host' sample order depends on the number of hosts: the checkpoint was written by "
        f'{int(saved_process_count)} and this run has {int(process_count)}; resume on '
        f"{int(saved_process_count)} hosts, or set order='global' (topology-free; the samples "
        'then differ from the uninterrupted run)', field='order')


class TrainPipeline:
  """Paired random patches from in-memory images (see the module docstring).

  ``batch(k)`` gives step ``k``'s batch; ``iterate(start_step=k)`` yields steps k, k+1, ...
  with background prefetch; ``as_tf_dataset(start_step=k)`` gives the same as a
  ``tf.data.Dataset`` built on ``Dataset.range(k, ...)``.
  """

  def __init__(self, examples, *, scale: int | Sequence[int],
               batch_size: int, lr_patch_size: int | None = None,
               hr_patch_size: int | None = None, seed: int = 0, process_index: int = 0,
               process_count: int = 1, y_channel: bool = False,
               hr_rescales: Sequence[float] = (1.0,), flips: bool = True, rot90: bool = True,
               shards: int | None = None, workers: int | None = None, order: str = 'global',
               with_lr: bool = True):
    """Loads and caches the images of this host's shards and checks the options.

    Args:
      examples: every image of the set, as a list of ``SRExample`` or a
        ``jaxsr.data.sources.Source`` (which loads only the images this host needs).
      scale: the scale, or several for multi-scale (VDSR) mode.
      batch_size: the global batch size (a multiple of ``process_count``).
      lr_patch_size: LR patch side ``p`` (HR patch ``scale * p``); single-scale mode.
      hr_patch_size: HR patch side instead (a multiple of ``scale``); required in multi-scale
        mode, where input and target are both this size.
      seed: the seed of every random choice.
      process_index: this host (``jax.process_index()``).
      process_count: number of hosts (``jax.process_count()``).
      y_channel: give MATLAB Y / 255 ``[.., 1]`` instead of RGB.
      hr_rescales: HR downscaling factors added at cache time (1.0 = the original).
      flips: random horizontal and vertical flips.
      rot90: random quarter turns.
      shards: the number of shards of the sample order (default ``min(batch_size, images)``);
        it must not change between a run and its resumption. Not used by ``order='host'``.
      workers: threads for building the cache.
      order: ``'global'`` (topology-free) or ``'host'`` (the earlier releases' per-host order,
        with ``images[process_index::process_count]``); see the module docstring.
      with_lr: False makes, caches and yields no LR (batches ``{'hr'}``, + ``scale``): for
        tasks that make their own LR from the HR crop on device (``Task.needs_lr``). The HR
        crops, their order and transforms are the same as with the LR.
    """
    self.order = _check_order(order)
    self._check_options(scale=scale, batch_size=batch_size, lr_patch_size=lr_patch_size,
                        hr_patch_size=hr_patch_size, seed=seed, process_index=process_index,
                        process_count=process_count, y_channel=y_channel, flips=flips,
                        rot90=rot90, with_lr=with_lr)
    source = _as_source(examples)
    self.num_images = len(source)
    if not self.num_images:
      raise InputError('no training images')
    rescales = tuple(float(r) for r in hr_rescales)
    if not rescales or min(rescales) <= 0 or max(rescales) > 1:
      raise InputError(f'hr_rescales must be in (0, 1], got {hr_rescales}')
    self.hr_rescales = rescales
    self.workers = workers or max(1, min(8, os.cpu_count() or 1))
    self.items: list[_Item] = []
    self.skipped: list[str] = []
    self._pools: dict[int, list[int]] = {}  # shard -> indices into self.items (usable ones)
    self._jobs = 0
    if self.order == 'host':
      self._init_host_order(source)
      return
    self.layout = SlotLayout(
        global_batch=self.global_batch,
        shards=default_shards(self.global_batch, self.num_images) if shards is None else int(shards),
        process_index=self.process_index, process_count=self.process_count)
    self.shards = self.layout.shards
    self._source_of: dict[int, int] = {}  # shard -> the shard it draws from
    for s in self.layout.local_shards:
      src = s
      for _ in range(self.shards):
        self._load_shard(source, src)
        if self._pools[src]:
          break
        src = (src + 1) % self.shards
      if not self._pools[src]:
        raise InputError(f'no image of the {self.num_images} is large enough for the patch '
                         f'({self.lr_patch}px LR / {self.hr_patch}px HR)')
      self._source_of[s] = src
    if self.skipped:
      warnings.warn(f'skipped {len(self.skipped)} of {self._jobs} images smaller than the patch '
                    f'({self.lr_patch}px LR / {self.hr_patch}px HR): '
                    f'{", ".join(self.skipped[:10])}', stacklevel=2)

  def _init_host_order(self, source) -> None:
    """``order='host'``: caches ``images[process_index::process_count]`` (all of them usable)."""
    self.layout, self.shards = None, None
    mine = range(self.process_index, self.num_images, self.process_count)
    if not mine:
      raise InputError(f'host {self.process_index} of {self.process_count} has no images (only '
                       f'{self.num_images} images; need at least one per host)')
    self._load_indices(source, mine)
    if self.skipped:
      warnings.warn(f'skipped {len(self.skipped)} of {self._jobs} images smaller than the patch '
                    f'({self.lr_patch}px LR / {self.hr_patch}px HR): '
                    f'{", ".join(self.skipped[:10])}', stacklevel=3)
    if not self.items:
      raise InputError(f'no image of host {self.process_index} is large enough for the patch '
                       f'({self.lr_patch}px LR / {self.hr_patch}px HR)')

  def _check_options(self, *, scale, batch_size, lr_patch_size, hr_patch_size, seed,
                     process_index, process_count, y_channel, flips, rot90,
                     with_lr) -> None:
    scales = (scale,) if np.ndim(scale) == 0 else tuple(scale)
    self.scales = tuple(int(s) for s in scales)
    self.multiscale = len(self.scales) > 1
    if min(self.scales) < 1:
      raise InputError(f'scale must be >= 1, got {scale}')
    if process_count < 1 or batch_size < 1 or batch_size % process_count:
      raise InputError(f'batch_size {batch_size} must be a positive multiple of the number of '
                       f'hosts ({process_count})')
    if not 0 <= process_index < process_count:
      raise InputError(f'process_index {process_index} not in [0, {process_count})')
    if self.multiscale:
      if hr_patch_size is None or lr_patch_size is not None:
        raise InputError('multi-scale mode takes hr_patch_size (input and target are HR-size)')
      self.hr_patch = self.lr_patch = int(hr_patch_size)
    else:
      s = self.scales[0]
      if (lr_patch_size is None) == (hr_patch_size is None):
        raise InputError('give exactly one of lr_patch_size and hr_patch_size')
      if hr_patch_size is not None and hr_patch_size % s:
        raise InputError(f'hr_patch_size {hr_patch_size} is not a multiple of scale {s}')
      self.lr_patch = int(lr_patch_size) if lr_patch_size is not None else int(hr_patch_size) // s
      self.hr_patch = s * self.lr_patch
    if min(self.lr_patch, self.hr_patch) < 1:
      raise InputError('patch size must be positive')
    self.global_batch = int(batch_size)
    self.batch_size = self.global_batch // process_count
    self.seed = int(seed)
    self.process_index, self.process_count = int(process_index), int(process_count)
    self.y_channel = bool(y_channel)
    self.flips, self.rot90 = bool(flips), bool(rot90)
    self.with_lr = bool(with_lr)
    self.channels = 1 if self.y_channel else 3

  # -- cache ----------------------------------------------------------------------------------

  def _load_shard(self, source, shard: int) -> None:
    if shard in self._pools:
      return
    self._pools[shard] = self._load_indices(source, range(shard, self.num_images, self.shards))

  def _load_indices(self, source, indices: Sequence[int]) -> list[int]:
    """Caches the usable (image, rescale) items of ``indices``; returns their ``items`` indices."""
    examples = source.load(indices, workers=self.workers)
    jobs = [(ex, r) for ex in examples for r in self.hr_rescales]
    self._jobs += len(jobs)
    with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
      items = list(pool.map(lambda job: self._make_item(*job), jobs))
    pool_indices = []
    for (ex, r), item in zip(jobs, items):
      if item is None:
        self.skipped.append(f'{ex.name}@{r:g}' if r != 1 else ex.name)
      else:
        pool_indices.append(len(self.items))
        self.items.append(item)
    return pool_indices

  def _make_item(self, example: SRExample, rescale: float) -> _Item | None:
    hr = example.hr
    if rescale != 1.0:
      hr = imresize_np(hr, rescale)
    if self.y_channel:  # the y protocol's degradation: rounded Y, float (unquantised) LR
      hr = y_uint8(hr)
    stored = not self.y_channel and rescale == 1.0  # the source's own LR is the one used
    # The LR's (height, width): the stored LR's, else the MATLAB-bicubic LR's (H // s, W // s).
    shapes = {s: (tuple(example.lr[s].shape[:2]) if stored and s in example.lr
                  else (hr.shape[0] // s, hr.shape[1] // s)) for s in self.scales}
    for s, (h, w) in shapes.items():
      if min(h, w) < 1:
        return None
      if self.multiscale:
        if min(h, w) * s < self.hr_patch:
          return None
        shapes[s] = (s * h, s * w)  # the LR upscaled to the modcropped HR's size
      elif min(h, w) < self.lr_patch:
        return None
    lrs = {}
    for s in self.scales if self.with_lr else ():
      if self.y_channel:
        lr = lr_y(hr, s)
      elif stored and s in example.lr:
        lr = example.lr[s]
      else:
        lr = lr_rgb(hr, s)
      lrs[s] = imresize_np(lr, float(s)).astype(lr.dtype) if self.multiscale else lr
    return _Item(example.name, hr, lrs, shapes)

  # -- sampling -------------------------------------------------------------------------------

  @functools.lru_cache(maxsize=256)
  def _perm(self, shard: int, epoch: int, n: int) -> np.ndarray:
    return _rng(self.seed, _PERM, shard, epoch).permutation(n)

  @functools.lru_cache(maxsize=16)
  def _host_perm(self, epoch: int) -> np.ndarray:
    """``order='host'``: this host's permutation of its items in ``epoch``."""
    return _rng(self.seed, _PERM, self.process_index, self.process_count, epoch).permutation(
        len(self.items))

  def step_scale(self, step: int) -> int:
    """The scale of step ``step`` (the same on every host)."""
    if not self.multiscale:
      return self.scales[0]
    return self.scales[int(_rng(self.seed, _SCALE, step).integers(len(self.scales)))]

  def indices(self, step: int) -> np.ndarray:
    """Indices into ``items`` of this host's samples at ``step``."""
    if self.order == 'host':
      n = len(self.items)
      g = step * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
      return np.asarray([self._host_perm(int(e))[int(p)] for e, p in zip(g // n, g % n)],
                        np.int64)
    shards, draws = self.layout.draws(step)
    out = []
    for s, q in zip(shards.tolist(), draws.tolist()):
      pool = self._pools[self._source_of[s]]
      n = len(pool)
      out.append(pool[int(self._perm(s, q // n, n)[q % n])])
    return np.asarray(out, np.int64)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's batch at ``step``: ``{'lr', 'hr'}`` float32 in [0, 1] (+ ``scale``; no ``lr``
    with ``with_lr=False``)."""
    step = int(step)
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    s = self.step_scale(step)
    idx = self.indices(step)
    if self.order == 'host':
      return self._host_batch(step, idx, scale=s)
    uy, ux, hflip, vflip, rot = crop_draws(self.seed, step, self.global_batch, self.layout.local,
                                           flips=self.flips, rot90=self.rot90)
    return self._assemble([(self.items[i], s) for i in idx.tolist()], uy, ux, hflip, vflip, rot,
                          scale=s)

  def _host_batch(self, step: int, idx: np.ndarray, *, scale: int) -> dict[str, np.ndarray]:
    """``order='host'``: integer crop positions and transforms from ``(seed, host, step)``."""
    b = self.batch_size
    rng = _rng(self.seed, _CROP, self.process_index, self.process_count, step)
    lr_shapes = np.asarray([self.items[i].lr_shape[scale] for i in idx])
    ys = rng.integers(0, lr_shapes[:, 0] - self.lr_patch + 1)
    xs = rng.integers(0, lr_shapes[:, 1] - self.lr_patch + 1)
    hflip = rng.integers(0, 2, b) if self.flips else np.zeros(b, np.int64)
    vflip = rng.integers(0, 2, b) if self.flips else np.zeros(b, np.int64)
    rot = rng.integers(0, 4, b) if self.rot90 else np.zeros(b, np.int64)
    return self._cut([(self.items[i], scale) for i in idx.tolist()], ys.tolist(), xs.tolist(),
                     hflip, vflip, rot, scale=scale)

  def _assemble(self, picks, uy, ux, hflip, vflip, rot, *, scale: int) -> dict[str, np.ndarray]:
    """Cuts, transforms and stacks one batch from ``[(item, scale)]`` and the draws."""
    ys = [crop_offset(fy, item.lr_shape[s][0], self.lr_patch)
          for (item, s), fy in zip(picks, uy.tolist())]
    xs = [crop_offset(fx, item.lr_shape[s][1], self.lr_patch)
          for (item, s), fx in zip(picks, ux.tolist())]
    return self._cut(picks, ys, xs, hflip, vflip, rot, scale=scale)

  def _cut(self, picks, ys: Sequence[int], xs: Sequence[int], hflip, vflip, rot, *,
           scale: int) -> dict[str, np.ndarray]:
    """The batch of ``[(item, scale)]`` cut at LR offsets ``(ys, xs)`` and transformed."""
    b = len(picks)
    crop_scale = 1 if self.multiscale else scale  # multi-scale: the LR is already HR-size
    c = self.channels
    hr = np.empty((b, self.hr_patch, self.hr_patch, c), np.uint8)
    if not self.with_lr:  # the HR crops alone, cut and turned exactly as with the LR
      p, k = self.lr_patch, crop_scale
      for j, ((item, _), y, x, h, v, r) in enumerate(zip(picks, ys, xs, hflip.tolist(),
                                                         vflip.tolist(), rot.tolist())):
        hr_patch = item.hr[k * int(y):k * (int(y) + p), k * int(x):k * (int(x) + p)]
        hr[j], = paired_transform(hr_patch, hflip=h, vflip=v, rot=r)
      out = {'hr': to_float(hr)}
      if self.multiscale:
        out['scale'] = np.full((b,), scale, np.int32)
      return out
    lr = np.empty((b, self.lr_patch, self.lr_patch, c), np.float32 if self.y_channel else np.uint8)
    for j, ((item, s), y, x, h, v, r) in enumerate(zip(picks, ys, xs, hflip.tolist(),
                                                       vflip.tolist(), rot.tolist())):
      lr_patch, hr_patch = paired_crop(item.lr[s], item.hr, y=int(y), x=int(x),
                                       lr_size=self.lr_patch, scale=crop_scale)
      lr[j], hr[j] = paired_transform(lr_patch, hr_patch, hflip=h, vflip=v, rot=r)
    out = {'lr': lr if self.y_channel else to_float(lr), 'hr': to_float(hr)}
    if self.multiscale:
      out['scale'] = np.full((b,), scale, np.int32)
    return out

  # -- iteration ------------------------------------------------------------------------------

  def iterate(self, *, start_step: int = 0, num_steps: int | None = None, prefetch: int = 2,
              workers: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """Yields the batches of steps ``start_step, start_step + 1, ...`` (forever by default),
    prepared ``prefetch`` steps ahead on ``workers`` background threads."""
    steps = (itertools.count(start_step) if num_steps is None
             else range(start_step, start_step + num_steps))
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
      pending = collections.deque()
      for step in steps:
        pending.append(pool.submit(self.batch, step))
        if len(pending) > prefetch:
          yield pending.popleft().result()
      while pending:
        yield pending.popleft().result()

  def as_tf_dataset(self, *, start_step: int = 0, num_steps: int | None = None) -> Any:
    """The same batches as a ``tf.data.Dataset`` over ``Dataset.range(start_step, ...)``."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    stop = np.iinfo(np.int64).max if num_steps is None else start_step + num_steps
    in_size = self.hr_patch if self.multiscale else self.lr_patch
    specs = {'lr': (tf.float32, (self.batch_size, in_size, in_size, self.channels)),
             'hr': (tf.float32, (self.batch_size, self.hr_patch, self.hr_patch, self.channels)),
             'scale': (tf.int32, (self.batch_size,))}
    keys = ((['lr'] if self.with_lr else []) + ['hr'] + (['scale'] if self.multiscale else []))
    dtypes = [specs[key][0] for key in keys]
    shapes = [specs[key][1] for key in keys]

    def numpy_batch(k):
      batch = self.batch(int(k))
      return tuple(batch[key] for key in keys)

    def make(step):
      values = tf.numpy_function(numpy_batch, [step], dtypes, stateful=False)
      return {key: tf.ensure_shape(v, shape) for key, v, shape in zip(keys, values, shapes)}

    dataset = tf.data.Dataset.range(start_step, stop)
    dataset = dataset.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)

  @classmethod
  def from_builder(cls, name: str = 'embedded', *, split: str = 'train', scale, batch_size: int,
                   data_dir=None, manual_dir=None, process_index: int | None = None,
                   process_count: int | None = None, **kwargs) -> 'TrainPipeline':
    """Builds (if needed) a tfds builder's split and caches the images of this host's shards.

    ``process_index`` / ``process_count`` default to ``jax.process_index()`` /
    ``jax.process_count()``. Other keyword arguments are those of ``TrainPipeline``.
    """
    return make_pipeline(name, split=split, scale=scale, batch_size=batch_size,
                         data_dir=data_dir, manual_dir=manual_dir, process_index=process_index,
                         process_count=process_count, mode='memory', **kwargs)


class StreamPipeline(TrainPipeline):
  """Paired random patches streamed from disk in bounded memory (sets larger than memory).

  Contract (beside the module docstring's slot/shard layout, which it shares):
    * Each host reads only the images of its shards, from the source on disk, never the whole
      set. Shard ``s`` walks its images in per-epoch permutations drawn from
      ``(seed, shard, epoch)``; that stream is cut into *blocks* of ``shuffle_buffer`` images.
      Each image is decoded once per block and gives ``crops_per_image`` patches; the
      ``shuffle_buffer * crops_per_image`` draws of a block are spread over its images by a
      permutation drawn from ``(seed, shard, block)`` (the shuffle buffer), and each draw's crop
      position, flips and turn come from ``(seed, shard, block)`` too. Shard ``s``'s draws are
      offset by ``s / S`` of a block so that the shards change blocks at different steps.
    * So batch ``k`` is still a pure function of ``(seed, k)`` and the data, the same on any
      topology, and a restart at step ``k`` decodes only the blocks step ``k`` needs: no input
      state to checkpoint. (It is a different sample order from ``TrainPipeline``'s: a block's
      images are reused ``crops_per_image`` times within a few hundred steps.)
    * Memory: at most two blocks per local shard are held (the one in use and the next, decoded
      in the background on ``workers`` threads), about ``2 * shuffle_buffer * local shards *
      (bytes of a decoded HR + LR)``, whatever the set's size. That estimate (from the first
      image) must fit ``memory_limit_mb``, else a one-line ``InputError`` before anything runs.
    * An image smaller than the patch gives its draws to the next usable image of its block
      (counted in ``skipped``, one warning per image); a block with no usable image is an
      ``InputError`` naming its images. ``hr_rescales`` is not available in this mode.
  """

  def __init__(self, source, *, scale: int | Sequence[int], batch_size: int,
               lr_patch_size: int | None = None, hr_patch_size: int | None = None,
               seed: int = 0, process_index: int = 0, process_count: int = 1,
               y_channel: bool = False, hr_rescales: Sequence[float] = (1.0,),
               flips: bool = True, rot90: bool = True, shards: int | None = None,
               workers: int | None = None, memory_limit_mb: float = 4096,
               shuffle_buffer: int = 4, crops_per_image: int = 32, order: str = 'global',
               with_lr: bool = True):
    """Indexes the source and checks the options (decodes one image for the memory estimate).

    Args:
      source: a ``jaxsr.data.sources.Source`` (or a list of ``SRExample``).
      scale, batch_size, lr_patch_size, hr_patch_size, seed, process_index, process_count,
        y_channel, flips, rot90, shards, with_lr: as ``TrainPipeline``.
      hr_rescales: must be ``(1.0,)``.
      workers: decoding threads (default: the number of CPUs, at most 8).
      memory_limit_mb: the bound on the decoded images held by this host.
      shuffle_buffer: images per block (per shard) that the draws are shuffled over.
      crops_per_image: patches taken from each decoded image per block.
      order: must be ``'global'`` (the in-memory mode also has ``'host'``).
    """
    if _check_order(order) != 'global':
      raise InputError(f"sample order {order!r} is not available in stream mode (its order is "
                       "topology-free only); use order='global' or mode='memory'", field='order')
    self.order = 'global'
    self._check_options(scale=scale, batch_size=batch_size, lr_patch_size=lr_patch_size,
                        hr_patch_size=hr_patch_size, seed=seed, process_index=process_index,
                        process_count=process_count, y_channel=y_channel, flips=flips,
                        rot90=rot90, with_lr=with_lr)
    if tuple(float(r) for r in hr_rescales) != (1.0,):
      raise InputError(f'hr_rescales {tuple(hr_rescales)} is not available in stream mode; use '
                       'the in-memory mode', field='hr_rescales')
    self.hr_rescales = (1.0,)
    if int(shuffle_buffer) < 1:
      raise InputError(f'shuffle_buffer must be >= 1 image, got {shuffle_buffer}',
                       field='shuffle_buffer')
    if int(crops_per_image) < 1:
      raise InputError(f'crops_per_image must be >= 1, got {crops_per_image}',
                       field='crops_per_image')
    self.shuffle_buffer, self.crops_per_image = int(shuffle_buffer), int(crops_per_image)
    self._source = _as_source(source)
    self.num_images = len(self._source)
    if not self.num_images:
      raise InputError('no training images')
    self.layout = SlotLayout(
        global_batch=self.global_batch,
        shards=default_shards(self.global_batch, self.num_images) if shards is None else int(shards),
        process_index=self.process_index, process_count=self.process_count)
    self.shards = self.layout.shards
    self.workers = workers or max(1, min(8, os.cpu_count() or 1))
    self.skipped: list[str] = []
    self.items: list[_Item] = []  # unused in stream mode (nothing is cached for good)
    self._lock = threading.Lock()
    self._blocks: dict[tuple[int, int], concurrent.futures.Future] = {}
    self._newest: dict[int, int] = {}
    self._decoder = concurrent.futures.ThreadPoolExecutor(self.workers)
    # The memory estimate, from the first image of this host's first shard.
    first = self._make_item(self._source.load_one(self.layout.local_shards[0]), 1.0)
    per_image = (0 if first is None else
                 first.hr.nbytes + sum(lr.nbytes for lr in first.lr.values())) / 2**20
    self.estimated_mb = 2 * self.shuffle_buffer * len(self.layout.local_shards) * per_image
    if self.estimated_mb > float(memory_limit_mb):
      raise InputError(
          f'shuffle buffer of {self.shuffle_buffer} images x {len(self.layout.local_shards)} '
          f'shards x 2 (in use + next) needs about {self.estimated_mb:.0f} MB for images of '
          f'{per_image:.1f} MB, over memory_limit_mb={memory_limit_mb:g}; lower shuffle_buffer '
          'or shards, or raise memory_limit_mb', field='shuffle_buffer')
    self.memory_limit_mb = float(memory_limit_mb)

  def __del__(self):
    decoder = getattr(self, '_decoder', None)
    if decoder is not None:
      decoder.shutdown(wait=False, cancel_futures=True)

  # -- blocks ---------------------------------------------------------------------------------

  def _shard_image(self, shard: int, position: int) -> int:
    """The source index at ``position`` of shard ``shard``'s image stream."""
    n = len(range(shard, self.num_images, self.shards))
    return shard + self.shards * int(self._perm(shard, position // n, n)[position % n])

  def _decode_block(self, shard: int, block: int) -> dict:
    w, m = self.shuffle_buffer, self.crops_per_image
    indices = [self._shard_image(shard, block * w + i) for i in range(w)]
    items = []
    for index in indices:
      example = self._source.load_one(index)
      item = self._make_item(example, 1.0)
      if item is None:
        with self._lock:
          if example.name not in self.skipped:
            self.skipped.append(example.name)
            warnings.warn(f'{example.name}: smaller than the patch ({self.lr_patch}px LR / '
                          f'{self.hr_patch}px HR); its crops go to the next image', stacklevel=2)
      items.append(item)
    usable = [i for i, item in enumerate(items) if item is not None]
    if not usable:
      raise InputError(f'no image of a shuffle block is large enough for the patch '
                       f'({self.lr_patch}px LR / {self.hr_patch}px HR): shard {shard}, images '
                       f'{indices}')
    owner = [i if items[i] is not None else next((u for u in usable if u > i), usable[0])
             for i in range(w)]
    rng = _rng(self.seed, _BLOCK, shard, block)
    slot = rng.permutation(w * m) // m
    draws = crop_draws(self.seed, block, w * m, np.arange(w * m), flips=self.flips,
                       rot90=self.rot90, tag=_CROP + shard)
    return {'items': [items[owner[int(i)]] for i in slot], 'draws': draws}

  def _block(self, shard: int, block: int) -> dict:
    with self._lock:
      future = self._blocks.get((shard, block))
      if future is None:
        future = self._blocks[(shard, block)] = self._decoder.submit(self._decode_block, shard,
                                                                     block)
      if block > self._newest.get(shard, -1):
        self._newest[shard] = block
        for key in [k for k in self._blocks if k[0] == shard and k[1] < block]:
          del self._blocks[key]  # older blocks: freed once no batch holds them
        if (shard, block + 1) not in self._blocks:  # decode the next one in the background
          self._blocks[(shard, block + 1)] = self._decoder.submit(self._decode_block, shard,
                                                                  block + 1)
    return future.result()

  # -- sampling -------------------------------------------------------------------------------

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's batch at ``step``: ``{'lr', 'hr'}`` float32 in [0, 1] (+ ``scale``; no ``lr``
    with ``with_lr=False``)."""
    step = int(step)
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    s = self.step_scale(step)
    per_block = self.shuffle_buffer * self.crops_per_image
    picks, columns = [], []
    for shard, q in zip(*(a.tolist() for a in self.layout.draws(step))):
      q += shard * per_block // self.shards  # stagger the shards' block changes
      block = self._block(shard, q // per_block)
      w = q % per_block
      picks.append((block['items'][w], s))
      columns.append([d[w] for d in block['draws']])
    uy, ux, hflip, vflip, rot = (np.asarray(c) for c in zip(*columns))
    return self._assemble(picks, uy, ux, hflip, vflip, rot, scale=s)

  def indices(self, step: int) -> np.ndarray:
    raise NotImplementedError('stream mode has no in-memory pool')


MODES = ('memory', 'stream')


def make_pipeline(name: str = 'embedded', *, scale, batch_size: int, split: str = 'train',
                  data_dir=None, manual_dir=None, hr_folder=None, lr_folder=None,
                  mode: str = 'memory', process_index: int | None = None,
                  process_count: int | None = None, **kwargs):
  """The training pipeline of a source, in memory (``TrainPipeline``) or streaming.

  Args:
    name: a ``jaxsr.data.builders`` name (read from its prepared records); ignored when
      ``hr_folder`` is given.
    scale: the scale (or scales, multi-scale mode).
    batch_size: the global batch size.
    split: the builder's split.
    data_dir: tfds data dir of the prepared records.
    manual_dir: the builder's raw image folders.
    hr_folder: a folder of the user's own HR images instead of a builder (LR made by MATLAB
      bicubic), or with ``lr_folder`` the HR half of LR/HR pairs matched by file stem.
    lr_folder: the LR half of the pairs (needs ``hr_folder`` and a single scale).
    mode: ``'memory'`` (decode every image of this host's shards once, cut patches from memory)
      or ``'stream'`` (``jaxsr.data.streaming.StreamPipeline``: bounded memory).
    process_index: this host (default ``jax.process_index()``).
    process_count: the number of hosts (default ``jax.process_count()``).
    **kwargs: the options of ``TrainPipeline`` (and ``StreamPipeline`` in stream mode).

  Raises:
    InputError: unknown mode, unreachable folder or dataset, bad options (one line).
  """
  if mode not in MODES:
    raise InputError(f'unknown data mode {mode!r}; expected one of {", ".join(MODES)}',
                     field='mode')
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  scales = (scale,) if np.ndim(scale) == 0 else tuple(scale)
  if lr_folder is not None and hr_folder is None:
    raise InputError(f'{lr_folder}: an LR folder needs its HR folder (hr_folder)',
                     field='hr_folder')
  if hr_folder is not None:
    if lr_folder is not None and len(scales) != 1:
      raise InputError('paired LR/HR folders hold one scale; multi-scale training needs an HR '
                       'folder only', field='lr_folder')
    source = sources.FolderSource(hr_folder, lr_folder=lr_folder,
                                  scale=scales[0] if lr_folder is not None else None)
  else:
    stored = (builders.DEFAULT_SCALES if set(scales) <= set(builders.DEFAULT_SCALES)
              else tuple(sorted(set(scales))))
    source = sources.RecordSource(name, split=split, data_dir=data_dir, manual_dir=manual_dir,
                                  scales=stored)
  common = dict(scale=scale, batch_size=batch_size, process_index=process_index,
                process_count=process_count)
  if mode == 'stream':
    return StreamPipeline(source, **common, **kwargs)
  for key in ('memory_limit_mb', 'shuffle_buffer', 'crops_per_image'):
    kwargs.pop(key, None)  # streaming-only settings
  return TrainPipeline(source, **common, **kwargs)


def train_dataset(name: str = 'embedded', *, scale, batch_size: int,
                  lr_patch_size: int | None = None, hr_patch_size: int | None = None,
                  seed: int = 0, start_step: int = 0, num_steps: int | None = None,
                  split: str = 'train', data_dir=None, manual_dir=None,
                  process_index: int | None = None, process_count: int | None = None,
                  prefetch: int = 2, workers: int = 1,
                  **kwargs) -> Iterator[dict[str, np.ndarray]]:
  """Training batches from a builder's split or folders, from ``start_step`` (resumable).

  Yields this host's ``{'lr': float32 [b, p, p, C], 'hr': float32 [b, s*p, s*p, C]}`` (and
  ``scale`` in multi-scale mode) with ``b = batch_size // process_count``; the global batch of
  a step is the same on any topology (with ``order='host'``: on the same number of hosts).
  ``kwargs``: ``mode``, ``hr_folder``, ``lr_folder`` (``make_pipeline``), ``y_channel``,
  ``hr_rescales``, ``flips``, ``rot90``, ``shards``, ``order``, ``with_lr`` (``TrainPipeline``),
  ``memory_limit_mb``, ``shuffle_buffer``, ``crops_per_image`` (stream mode).
  """
  pipeline = make_pipeline(
      name, split=split, scale=scale, batch_size=batch_size, lr_patch_size=lr_patch_size,
      hr_patch_size=hr_patch_size, seed=seed, data_dir=data_dir, manual_dir=manual_dir,
      process_index=process_index, process_count=process_count, **kwargs)
  return pipeline.iterate(start_step=start_step, num_steps=num_steps, prefetch=prefetch,
                          workers=workers)


def eval_dataset(name: str = 'embedded', *, split: str = 'test', scales: Sequence[int] = (2, 3, 4),
                 data_dir=None, manual_dir=None) -> Iterator[tuple[str, np.ndarray, dict[int, np.ndarray]]]:
  """Whole evaluation images in their own sizes, one at a time, in file order.

  Yields ``(name, hr, {scale: lr})``: ``hr`` uint8 ``[H, W, C]`` (un-cropped; C = 1 for
  greyscale sources), ``lr[s]`` uint8 ``[H // s, W // s, C]``, the MATLAB-bicubic LR of
  ``modcrop(hr, s)`` (``jaxsr.degradations``), which is its HR partner.
  """
  stored = (builders.DEFAULT_SCALES if set(scales) <= set(builders.DEFAULT_SCALES)
            else tuple(sorted(set(scales))))
  for ex in builders.eval_examples(name, split=split, data_dir=data_dir, manual_dir=manual_dir,
                                   scales=stored):
    yield ex.name, ex.hr, {s: ex.lr[s] for s in scales}
