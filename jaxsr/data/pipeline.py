"""Training and evaluation input pipelines: paired random patches, deterministic and resumable.

Contract:
  * Images are uint8 in the cache (as decoded from the tfds builders); batches leave as float32
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
  * Determinism and resumption: batch ``k`` is a pure function of
    ``(seed, k, process_index, process_count)`` and the data. Each host walks through its
    images in per-epoch permutations drawn from ``(seed, host, epoch)``; sample ``j`` of step
    ``k`` is image ``perm_e[g % n]`` with ``g = k * b + j`` and ``e = g // n``; crop positions
    and flips come from ``(seed, host, step)``. So restarting at step ``k``
    (``iterate(start_step=k)``) yields exactly the batches an uninterrupted run yields from
    step ``k``, with no iterator state to checkpoint beyond the step number.
  * Hosts: the images are dealt out ``images[process_index::process_count]``, so each host
    decodes and caches only its own disjoint share and produces its local slice of the global
    batch (``global_batch // process_count`` examples). Assemble the global array with
    ``jax.make_array_from_process_local_data``. Needs at least ``process_count`` images.
  * Static shapes: every batch has the same shape (a step never yields a partial batch).
  * Caching: decoded images are kept in memory (uint8). T91 / the embedded set take a few MB;
    DIV2K (800 HR + x2 LR) about 8.3 GB, divided by the number of hosts. Patches are then cut
    from memory, so per-step cost is a few copies (tens of thousands of patches/s on one core,
    see BENCHMARKS.md); PNG decoding happens once, in parallel, when the pipeline is made.
  * Multi-scale (VDSR): pass ``scale=(2, 3, 4)`` and ``hr_patch_size``. Each step draws one
    scale from ``(seed, step)`` (the same on every host); ``lr`` is then the LR bicubic-upscaled
    to HR size (MATLAB ``imresize``, rounded to uint8, precomputed at cache time) cropped at the
    same position as ``hr``: both ``[b, P, P, C]``, and ``scale`` says which scale it was.
  * HR rescaling augmentation (FSRCNN): ``hr_rescales=(1.0, 0.9, 0.8, 0.7, 0.6)`` adds, at
    cache time, each HR image downscaled by those factors (MATLAB bicubic) with its own LR; each
    (image, factor) is one image of the pool.
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
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from jaxsr.color import y_uint8
from jaxsr.data import builders
from jaxsr.data.builders import SRExample
from jaxsr.degradations import lr_rgb, lr_y
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np

__all__ = ['TrainPipeline', 'eval_dataset', 'train_dataset', 'paired_crop', 'paired_transform',
           'to_float']

# Stream tags keep the random streams of different purposes apart.
_PERM, _CROP, _SCALE = 0x9E3, 0xC40, 0x5CA


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
                             # multi-scale mode


def _rng(*words: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([int(w) & 0xFFFFFFFFFFFF for w in words]))


class TrainPipeline:
  """Paired random patches from in-memory images (see the module docstring).

  ``batch(k)`` gives step ``k``'s batch; ``iterate(start_step=k)`` yields steps k, k+1, ...
  with background prefetch; ``as_tf_dataset(start_step=k)`` gives the same as a
  ``tf.data.Dataset`` built on ``Dataset.range(k, ...)``.
  """

  def __init__(self, examples: Sequence[SRExample], *, scale: int | Sequence[int],
               batch_size: int, lr_patch_size: int | None = None,
               hr_patch_size: int | None = None, seed: int = 0, process_index: int = 0,
               process_count: int = 1, presharded: bool = False, y_channel: bool = False,
               hr_rescales: Sequence[float] = (1.0,), flips: bool = True, rot90: bool = True,
               workers: int | None = None):
    """Caches the images and checks the options.

    Args:
      examples: all images (``SRExample``), or this host's share with ``presharded=True``.
      scale: the scale, or several for multi-scale (VDSR) mode.
      batch_size: the global batch size (a multiple of ``process_count``).
      lr_patch_size: LR patch side ``p`` (HR patch ``scale * p``); single-scale mode.
      hr_patch_size: HR patch side instead (a multiple of ``scale``); required in multi-scale
        mode, where input and target are both this size.
      seed: the seed of every random choice.
      process_index: this host (``jax.process_index()``).
      process_count: number of hosts (``jax.process_count()``).
      presharded: ``examples`` already holds only this host's share.
      y_channel: give MATLAB Y / 255 ``[.., 1]`` instead of RGB.
      hr_rescales: HR downscaling factors added at cache time (1.0 = the original).
      flips: random horizontal and vertical flips.
      rot90: random quarter turns.
      workers: threads for building the cache.
    """
    scales = (scale,) if np.ndim(scale) == 0 else tuple(scale)
    self.scales = tuple(int(s) for s in scales)
    self.multiscale = len(self.scales) > 1
    if min(self.scales) < 1:
      raise InputError(f'scale must be >= 1, got {scale}')
    if batch_size < 1 or batch_size % process_count:
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
    self.channels = 1 if self.y_channel else 3

    local = list(examples) if presharded else list(examples)[process_index::process_count]
    if not local:
      raise InputError(f'host {process_index} of {process_count} has no images (only '
                       f'{len(examples)} images; need at least one per host)')
    rescales = tuple(float(r) for r in hr_rescales)
    if not rescales or min(rescales) <= 0 or max(rescales) > 1:
      raise InputError(f'hr_rescales must be in (0, 1], got {hr_rescales}')
    jobs = [(ex, r) for ex in local for r in rescales]
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      items = list(pool.map(lambda job: self._make_item(*job), jobs))
    self.skipped = [f'{ex.name}@{r:g}' if r != 1 else ex.name
                    for (ex, r), item in zip(jobs, items) if item is None]
    self.items = [item for item in items if item is not None]
    if self.skipped:
      warnings.warn(f'skipped {len(self.skipped)} of {len(jobs)} images smaller than the patch '
                    f'({self.lr_patch}px LR / {self.hr_patch}px HR): '
                    f'{", ".join(self.skipped[:10])}', stacklevel=2)
    if not self.items:
      raise InputError(f'no image of host {process_index} is large enough for the patch '
                       f'({self.lr_patch}px LR / {self.hr_patch}px HR)')

  # -- cache ----------------------------------------------------------------------------------

  def _make_item(self, example: SRExample, rescale: float) -> _Item | None:
    hr = example.hr
    if rescale != 1.0:
      hr = imresize_np(hr, rescale)
    if self.y_channel:  # the y protocol's degradation: rounded Y, float (unquantised) LR
      hr = y_uint8(hr)
      lrs = {s: lr_y(hr, s) for s in self.scales}
    elif rescale != 1.0:
      lrs = {s: lr_rgb(hr, s) for s in self.scales}
    else:
      lrs = {s: example.lr[s] if s in example.lr else lr_rgb(hr, s) for s in self.scales}
    for s, lr in lrs.items():
      if min(lr.shape[:2]) < 1:
        return None
      if self.multiscale:
        if min(lr.shape[:2]) * s < self.hr_patch:
          return None
        lrs[s] = imresize_np(lr, float(s)).astype(lr.dtype)  # [s*h, s*w]: the modcropped HR's size
      elif min(lr.shape[:2]) < self.lr_patch:
        return None
    return _Item(example.name, hr, lrs)

  # -- sampling -------------------------------------------------------------------------------

  @functools.lru_cache(maxsize=16)
  def _perm(self, epoch: int) -> np.ndarray:
    return _rng(self.seed, _PERM, self.process_index, self.process_count, epoch).permutation(
        len(self.items))

  def step_scale(self, step: int) -> int:
    """The scale of step ``step`` (the same on every host)."""
    if not self.multiscale:
      return self.scales[0]
    return self.scales[int(_rng(self.seed, _SCALE, step).integers(len(self.scales)))]

  def indices(self, step: int) -> np.ndarray:
    """Pool indices of this host's samples at ``step``."""
    n = len(self.items)
    g = step * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
    return np.asarray([self._perm(int(e))[int(p)] for e, p in zip(g // n, g % n)], np.int64)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's batch at ``step``: ``{'lr', 'hr'}`` float32 in [0, 1] (+ ``scale``)."""
    step = int(step)
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    s = self.step_scale(step)
    idx = self.indices(step)
    b = self.batch_size
    rng = _rng(self.seed, _CROP, self.process_index, self.process_count, step)
    lr_shapes = np.asarray([self.items[i].lr[s].shape[:2] for i in idx])
    ys = rng.integers(0, lr_shapes[:, 0] - self.lr_patch + 1)
    xs = rng.integers(0, lr_shapes[:, 1] - self.lr_patch + 1)
    hflip = rng.integers(0, 2, b) if self.flips else np.zeros(b, np.int64)
    vflip = rng.integers(0, 2, b) if self.flips else np.zeros(b, np.int64)
    rot = rng.integers(0, 4, b) if self.rot90 else np.zeros(b, np.int64)
    crop_scale = 1 if self.multiscale else s  # multi-scale: the LR is already HR-size
    c = self.channels
    lr = np.empty((b, self.lr_patch, self.lr_patch, c), np.float32 if self.y_channel else np.uint8)
    hr = np.empty((b, self.hr_patch, self.hr_patch, c), np.uint8)
    for j, (i, y, x, h, v, r) in enumerate(zip(idx.tolist(), ys.tolist(), xs.tolist(),
                                              hflip.tolist(), vflip.tolist(), rot.tolist())):
      item = self.items[i]
      lr_patch, hr_patch = paired_crop(item.lr[s], item.hr, y=y, x=x, lr_size=self.lr_patch,
                                       scale=crop_scale)
      lr[j], hr[j] = paired_transform(lr_patch, hr_patch, hflip=h, vflip=v, rot=r)
    out = {'lr': lr if self.y_channel else to_float(lr), 'hr': to_float(hr)}
    if self.multiscale:
      out['scale'] = np.full((b,), s, np.int32)
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
    keys = ['lr', 'hr'] + (['scale'] if self.multiscale else [])
    dtypes = [tf.float32, tf.float32] + ([tf.int32] if self.multiscale else [])
    in_size = self.hr_patch if self.multiscale else self.lr_patch
    shapes = [(self.batch_size, in_size, in_size, self.channels),
              (self.batch_size, self.hr_patch, self.hr_patch, self.channels),
              (self.batch_size,)]

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
    """Builds (if needed) and caches this host's share of a tfds builder's split.

    ``process_index`` / ``process_count`` default to ``jax.process_index()`` /
    ``jax.process_count()``. Other keyword arguments are those of ``TrainPipeline``.
    """
    if process_index is None or process_count is None:
      import jax  # pylint: disable=g-import-not-at-top
      process_index = jax.process_index() if process_index is None else process_index
      process_count = jax.process_count() if process_count is None else process_count
    scales = (scale,) if np.ndim(scale) == 0 else tuple(scale)
    stored = (builders.DEFAULT_SCALES if set(scales) <= set(builders.DEFAULT_SCALES)
              else tuple(sorted(set(scales))))
    local = builders.examples(name, split=split, data_dir=data_dir, manual_dir=manual_dir,
                              scales=stored, process_index=process_index,
                              process_count=process_count)
    if not local:
      raise InputError(f'{name}: host {process_index} of {process_count} has no images in {split!r}')
    return cls(local, scale=scale, batch_size=batch_size, process_index=process_index,
               process_count=process_count, presharded=True, **kwargs)


def train_dataset(name: str = 'embedded', *, scale, batch_size: int,
                  lr_patch_size: int | None = None, hr_patch_size: int | None = None,
                  seed: int = 0, start_step: int = 0, num_steps: int | None = None,
                  split: str = 'train', data_dir=None, manual_dir=None,
                  process_index: int | None = None, process_count: int | None = None,
                  prefetch: int = 2, workers: int = 1,
                  **kwargs) -> Iterator[dict[str, np.ndarray]]:
  """Training batches from a builder's split, starting at ``start_step`` (resumable).

  Yields this host's ``{'lr': float32 [b, p, p, C], 'hr': float32 [b, s*p, s*p, C]}`` (and
  ``scale`` in multi-scale mode) with ``b = batch_size // process_count``. ``kwargs``:
  ``y_channel``, ``hr_rescales``, ``flips``, ``rot90`` (see ``TrainPipeline``).
  """
  pipeline = TrainPipeline.from_builder(
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
