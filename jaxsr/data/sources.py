"""Where training images come from, by global image index: prepared records or folders.

Contract:
  * A source is an ordered, fixed list of ``n`` images: ``len(source)``, ``source.names`` (the
    file stems) and ``source.load(indices) -> [SRExample]``, which reads and decodes only the
    images asked for (uint8 ``[H, W, C]``, C = 1 for greyscale sources, else 3). ``lr`` holds
    the LR images the source stores (``{scale: uint8 [H // s, W // s, C]}``, the partner of
    ``modcrop(hr, s)``); the pipelines make missing ones with ``jaxsr.degradations.lr_rgb``.
    The index order does not depend on the number of hosts, so pipelines can define a
    topology-free sample order over it and let each host load only the images it needs.
  * ``RecordSource``: a prepared tfds split (``jaxsr.data.builders``) read by random access. The
    TFRecord files are indexed once (record headers only: 12 bytes read per record, no data),
    and ``load`` seeks to each asked record, parses the ``tf.train.Example`` and decodes its PNGs
    (Pillow, which releases the GIL, on ``workers`` threads). Index ``i`` is the ``i``-th record
    of the split in file order (the order ``builders.examples`` gives).
  * ``FolderSource``: the user's own images. ``FolderSource(hr_folder)`` is every image of a
    folder (sorted by name; LR made by the pipeline: MATLAB bicubic of the modcropped HR, about
    1.5 s for a 2K image on one core). ``FolderSource(hr_folder, lr_folder=..., scale=s)`` pairs
    the LR and HR images by file stem (an LR stem may also carry an ``x{s}`` suffix, as DIV2K's
    ``0001x2.png``); every pair's sizes are checked from the file headers up front: the LR must
    be ``(H // s, W // s)`` of its HR. The LR is used as given (not re-made), so real LR/HR pairs
    work too.
  * Paths (folders, a tfds ``data_dir``) may be remote (``gs://...``; ``jaxsr.files``): remote
    files are read through ``etils.epath`` / ``tf.io.gfile`` (records by seek and read).
  * Bad input: one-line ``InputError`` naming the folder or file: a missing folder, a folder
    without images, an HR without an LR (or the reverse), an LR whose size does not match its HR
    at the scale, a corrupt image.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import pathlib
import re
import struct
from typing import Sequence

import numpy as np
from PIL import Image

from jaxsr import files
from jaxsr.data import images as images_lib
from jaxsr.data.builders import SRExample
from jaxsr.errors import InputError

__all__ = ['FolderSource', 'RecordSource', 'Source', 'ListSource']


class Source:
  """Base: ``names`` and ``load(indices)``; see the module docstring."""

  names: list[str]

  def __len__(self) -> int:
    return len(self.names)

  def load(self, indices: Sequence[int], *, workers: int | None = None) -> list[SRExample]:
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    indices = [int(i) for i in indices]
    if len(indices) <= 1 or workers == 1:
      return [self.load_one(i) for i in indices]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      return list(pool.map(self.load_one, indices))

  def load_one(self, index: int) -> SRExample:
    raise NotImplementedError


class ListSource(Source):
  """Images already in memory (a list of ``SRExample``)."""

  def __init__(self, examples: Sequence[SRExample]):
    self.examples = list(examples)
    self.names = [ex.name for ex in self.examples]

  def load_one(self, index: int) -> SRExample:
    return self.examples[index]


def _decode_png(data: bytes, what: str) -> np.ndarray:
  try:
    with Image.open(io.BytesIO(data)) as img:
      img.load()
      array = np.asarray(img if img.mode in ('RGB', 'L') else img.convert('RGB'))
  except (OSError, ValueError, SyntaxError) as e:
    raise InputError(f'{what}: cannot decode the stored image ({type(e).__name__}: {e})') from None
  if array.ndim == 2:
    array = np.repeat(array[..., None], 3, -1)
  return array


class RecordSource(Source):
  """A prepared tfds split of ``jaxsr.data.builders``, read by random access (see above)."""

  def __init__(self, name: str, *, split: str = 'train', data_dir=None, manual_dir=None,
               scales: Sequence[int] = (2, 3, 4)):
    from jaxsr.data import builders  # pylint: disable=g-import-not-at-top

    builder = builders.prepare(builders.get_builder(name, data_dir=data_dir,
                                                    manual_dir=manual_dir, scales=scales),
                               manual_dir=manual_dir)
    if split not in builder.info.splits:
      raise InputError(f'{builder.name}: no split {split!r}; it has '
                       f'{", ".join(builder.info.splits)}')
    self.scales = tuple(int(s) for s in scales)
    self.what = f'{builder.name}/{split}'
    self._records: list[tuple[str, int, int]] = []  # (file, offset of the data, length)
    for instruction in builder.info.splits[split].file_instructions:
      offsets = _record_offsets(instruction.filename)
      skip = int(instruction.skip)
      take = len(offsets) - skip if instruction.take in (None, -1) else int(instruction.take)
      self._records += [(instruction.filename, o, n) for o, n in offsets[skip:skip + take]]
    self.names = [f'#{i}' for i in range(len(self._records))]  # stems are inside the records

  def read(self, index: int) -> bytes:
    """The serialized ``tf.train.Example`` of record ``index``."""
    path, offset, length = self._records[index]
    with _open(path) as f:
      f.seek(offset)
      data = f.read(length)
    if len(data) != length:
      raise InputError(f'{path}: truncated record at byte {offset}; prepare the dataset again')
    return data

  def load_one(self, index: int) -> SRExample:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    feature = tf.train.Example.FromString(self.read(index)).features.feature
    name = feature['name'].bytes_list.value[0].decode()
    grey = int(feature['channels'].int64_list.value[0]) == 1
    what = f'{self.what}: {name}'

    def image(key):
      array = _decode_png(feature[key].bytes_list.value[0], what)
      return np.ascontiguousarray(array[..., :1]) if grey else array

    return SRExample(name, image('hr'), {s: image(f'lr_x{s}') for s in self.scales})


def _record_offsets(path: str) -> list[tuple[int, int]]:
  """``[(data offset, length)]`` of the records of a TFRecord file (headers only)."""
  out = []
  size = os.path.getsize(path) if files.is_local(path) else files.as_path(path).stat().length
  with _open(path) as f:
    pos = 0
    while pos < size:
      f.seek(pos)
      header = f.read(12)  # uint64 length, uint32 masked crc of the length
      if len(header) < 12:
        raise InputError(f'{path}: truncated TFRecord file; prepare the dataset again')
      (length,) = struct.unpack('<Q', header[:8])
      out.append((pos + 12, length))
      pos += 12 + length + 4  # data, uint32 masked crc of the data
  if pos != size:
    raise InputError(f'{path}: truncated TFRecord file; prepare the dataset again')
  return out


def _stem_key(stem: str, scale: int | None) -> str:
  if scale is not None:
    stem = re.sub(rf'[xX]{scale}$', '', stem)
  return stem


class FolderSource(Source):
  """The images of ``hr_folder``, optionally paired by stem with ``lr_folder`` (see above)."""

  def __init__(self, hr_folder: str | os.PathLike, *, lr_folder: str | os.PathLike | None = None,
               scale: int | None = None, hr_field: str = 'hr_folder',
               lr_field: str = 'lr_folder'):
    try:
      hr_files = images_lib.list_images(hr_folder)
    except InputError as e:
      raise InputError(e.message, field=hr_field) from None
    self.hr_files = hr_files
    self.names = [p.stem for p in hr_files]
    if len(set(self.names)) != len(self.names):
      dup = next(n for n in self.names if self.names.count(n) > 1)
      raise InputError(f'{hr_folder}: two images named {dup!r} (stems must be unique)',
                       field=hr_field)
    self.scale = None if scale is None else int(scale)
    self.lr_files: list[pathlib.Path] | None = None
    if lr_folder is None:
      return
    if self.scale is None or self.scale < 1:
      raise InputError(f'{lr_folder}: paired folders need the scale (got {scale})', field=lr_field)
    try:
      lr_files = images_lib.list_images(lr_folder)
    except InputError as e:
      raise InputError(e.message, field=lr_field) from None
    by_stem = {}
    for p in lr_files:
      by_stem.setdefault(_stem_key(p.stem, self.scale), p)
    missing = [n for n in self.names if n not in by_stem]
    if missing:
      raise InputError(f'{hr_files[self.names.index(missing[0])]}: no LR image of that name in '
                       f'{lr_folder} ({len(missing)} HR images lack one)', field=lr_field)
    extra = sorted(set(by_stem) - set(self.names))
    if extra:
      raise InputError(f'{by_stem[extra[0]]}: no HR image of that name in {hr_folder} '
                       f'({len(extra)} LR images lack one)', field=hr_field)
    self.lr_files = [by_stem[n] for n in self.names]
    for hr, lr in zip(self.hr_files, self.lr_files):
      (hw, hh), (lw, lh) = _size(hr), _size(lr)
      if (lh, lw) != (hh // self.scale, hw // self.scale):
        raise InputError(f'{lr}: LR size {lw}x{lh} does not match its HR {hr.name} ({hw}x{hh}) '
                         f'at scale {self.scale} (expected {hw // self.scale}x{hh // self.scale})',
                         field=lr_field)

  def load_one(self, index: int) -> SRExample:
    hr = images_lib.read_image(self.hr_files[index])
    lr = {}
    if self.lr_files is not None:
      lr_image = images_lib.read_image(self.lr_files[index])
      if lr_image.shape[-1] != hr.shape[-1]:  # one grey, one colour: both RGB
        hr, lr_image = (np.repeat(x, 3, -1) if x.shape[-1] == 1 else x for x in (hr, lr_image))
      lr = {self.scale: lr_image}
    return SRExample(self.names[index], hr, lr)


def _open(path):
  """A binary file: ``open`` for a local path, ``etils.epath`` (``tf.io.gfile``) for a remote one."""
  return open(path, 'rb') if files.is_local(path) else files.as_path(path).open('rb')


def _size(path) -> tuple[int, int]:
  """(width, height) from the file header."""
  try:
    if files.is_local(path):
      with Image.open(path) as img:
        return img.size
    with _open(path) as f, Image.open(f) as img:
      return img.size
  except (files.io_errors() + (ValueError, SyntaxError)) as e:
    raise InputError(f'{path}: cannot read image ({type(e).__name__}: {e})') from None
