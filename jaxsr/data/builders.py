"""tensorflow-datasets builders for the standard super-resolution sets, built from local files.

Contract:
  * Every builder reads images from a local folder (the tfds ``manual_dir``) and never
    downloads anything. A missing or misnamed folder raises a one-line
    ``jaxsr.errors.InputError`` that names the layout the builder expects.
  * Builder names carry a ``jaxsr_`` prefix (``jaxsr_set5``, ``jaxsr_div2k``, ...) so they never
    collide with tfds' own builders (tfds' ``div2k`` downloads). ``load('set5', ...)`` accepts
    the short name.
  * Each example holds ``name`` (text, the file stem), ``hr`` (the original, un-cropped HR image,
    uint8 ``[H, W, 3]``), ``channels`` (int32: 1 for greyscale sources, 3 for colour) and, for
    each configured scale ``s`` (``(2, 3, 4)`` by default), ``lr_x{s}``: uint8
    ``[H // s, W // s, 3]``, the MATLAB-bicubic LR of the modcropped HR,
    ``imresize_np(hr[:H - H % s, :W - W % s], 1 / s)`` rounded to uint8
    (``jaxsr.degradations.lr_rgb``, the ``rgb`` protocol's LR), computed at build
    time. The HR partner of ``lr_x{s}`` is therefore ``hr[:s * h, :s * w]``.
    For DIV2K and Flickr2K the official LR images (``<set>_LR_bicubic/X{s}/<stem>x{s}.png``,
    beside the HR folder) are used when present; they are made the same way.
  * tfds image features need a fixed channel count, so greyscale images are stored replicated
    to 3 channels with ``channels == 1``; ``examples()``/``eval_examples()`` give them back as
    ``[H, W, 1]`` (a grey image is its own Y in the evaluation protocol).
  * The manual folder and the tfds ``data_dir`` may also be remote (``gs://...``, anything
    ``etils.epath`` / ``tf.io.gfile`` know; ``jaxsr.files``): images are read through
    ``etils.epath`` and tfds writes and reads its records through ``tf.io.gfile``.
  * Bad input: a corrupt or unreadable image fails the build with an ``InputError`` naming the
    file (a silently partial benchmark would give wrong tables). Images smaller than the
    largest scale are skipped with a warning that counts them. Greyscale, RGBA (alpha dropped)
    and 16-bit images are handled by ``jaxsr.data.images.read_image``.
  * Importing this module changes no process setting: TensorFlow still sees every device.
    Programs that also run JAX on an accelerator call
    ``jaxsr.runtime.hide_accelerators_from_tensorflow()`` first, so that TensorFlow (used here
    only for tfds I/O on the host) does not reserve accelerator memory.

Folder layouts (under ``manual_dir``; each folder may also sit under ``benchmarks/``,
``train/``, ``test/`` or ``datasets/``, and flat sets may keep their images in an ``HR``,
``GTmod12`` or ``original`` subfolder):

  set5 ``Set5/``; set14 ``Set14/``; bsd100 ``BSD100/`` (or ``B100/``, ``BSDS100/``);
  urban100 ``Urban100/``; manga109 ``Manga109/``  (split ``test``)
  t91 ``T91/`` (or ``91-image/``); general100 ``General100/`` (or ``General-100/``);
  bsd200 ``BSD200/`` (or ``BSDS300/images/train/``)  (split ``train``)
  bsd300 ``BSDS300/images/{train,test}/``  (splits ``train``, ``test``)
  bsd500 ``BSDS500/data/images/{train,val,test}/`` (or ``BSR/BSDS500/...``)
    (splits ``train``, ``validation``, ``test``)
  div2k ``DIV2K_train_HR/``, ``DIV2K_valid_HR/`` (optionally ``DIV2K_train_LR_bicubic/X2/``
    etc.; also accepted under ``DIV2K/``)  (splits ``train``, ``validation``)
  flickr2k ``Flickr2K/Flickr2K_HR/`` (optionally ``Flickr2K/Flickr2K_LR_bicubic/X2/``)  (``train``)
  df2k = div2k + flickr2k  (``train`` = both train sets, ``validation`` = DIV2K valid)
  image_folder: ``manual_dir`` itself; subfolders ``train/``, ``validation/`` (or ``valid``,
    ``val``), ``test/`` become splits, else all images form the ``train`` split.
  embedded: no files (scikit-image's shipped photographs; splits ``train``, ``test``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import pathlib
import warnings
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxsr import files
from jaxsr.data.embedded import embedded_images
from jaxsr.data.images import IMAGE_EXTENSIONS, read_image
from jaxsr.data.images import find_folder as _find_folder
from jaxsr.data.images import has_images as _has_images
from jaxsr.data.images import image_files as _image_files
from jaxsr.degradations import lr_rgb
from jaxsr.errors import InputError

__all__ = [
    'BUILDERS', 'DEFAULT_SCALES', 'SRConfig', 'SRExample', 'builder_names', 'eval_examples',
    'examples', 'get_builder', 'load', 'prepare', 'tfds_eval_images',
]

DEFAULT_SCALES = (2, 3, 4)


# --------------------------------------------------------------------------------------------
# Plain helpers (numpy, no tfds).


@dataclasses.dataclass(frozen=True)
class SRExample:
  """One image and its LR versions.

  Attributes:
    name: file stem.
    hr: uint8 ``[H, W, C]`` (C = 1 or 3), the original (un-cropped) HR image.
    lr: ``{scale: uint8 [H // scale, W // scale, C]}``, the bicubic LR of ``modcrop(hr, scale)``.
  """
  name: str
  hr: np.ndarray
  lr: Mapping[int, np.ndarray]


def _official_lr(hr_path: pathlib.Path, scale: int) -> pathlib.Path | None:
  """``<X>_LR_bicubic/X{s}/<stem>x{s}<ext>`` beside an ``<X>_HR`` folder (DIV2K/Flickr2K)."""
  folder = hr_path.parent
  if not folder.name.endswith('_HR'):
    return None
  lr_folder = folder.parent / (folder.name[:-3] + '_LR_bicubic') / f'X{scale}'
  for ext in (hr_path.suffix, '.png'):
    path = lr_folder / f'{hr_path.stem}x{scale}{ext}'
    if path.is_file():
      return path
  return None


@dataclasses.dataclass(frozen=True)
class _Source:
  key: str
  name: str
  path: pathlib.Path | None = None
  image: np.ndarray | None = None  # in-memory source (embedded)


def _make_example(source: _Source, scales: Sequence[int]) -> SRExample | None:
  hr = source.image if source.image is not None else read_image(source.path)
  h, w = hr.shape[:2]
  if min(h, w) < max(scales):
    return None
  lr = {}
  for s in scales:
    official = _official_lr(source.path, s) if source.path is not None else None
    if official is not None:
      image = read_image(official)
      if image.shape[:2] != (h // s, w // s):
        raise InputError(f'{official}: LR size {image.shape[1]}x{image.shape[0]} does not match '
                         f'{source.path} ({w}x{h}) / {s}')
      if image.shape[-1] != hr.shape[-1]:
        image = image[..., :1] if hr.shape[-1] == 1 else np.broadcast_to(image, image.shape[:2] + (3,))
      lr[s] = np.ascontiguousarray(image)
    else:
      lr[s] = lr_rgb(hr, s)
  return SRExample(source.name, hr, lr)


def _rgb3(image: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.broadcast_to(image, image.shape[:2] + (3,))) if image.shape[-1] == 1 else image


# --------------------------------------------------------------------------------------------
# Builders.


@dataclasses.dataclass(eq=False)
class SRConfig(tfds.core.BuilderConfig):
  """Builder configuration: the LR scales stored with each image.

  Attributes:
    scales: integer scales; one ``lr_x{s}`` feature each.
    folder: the source folder (image_folder builder only; part of the config name so that
      different folders are cached apart).
  """
  scales: tuple[int, ...] = DEFAULT_SCALES
  folder: str | None = None

  @classmethod
  def make(cls, scales: Sequence[int] = DEFAULT_SCALES, folder: str | None = None) -> 'SRConfig':
    scales = tuple(sorted({int(s) for s in scales}))
    if not scales or min(scales) < 2:
      raise InputError(f'scales must be integers >= 2, got {scales}')
    name = '_'.join(f'x{s}' for s in scales)
    if folder is not None:
      folder = (str(pathlib.Path(folder).expanduser().resolve()) if files.is_local(folder)
                else str(files.as_path(folder)))
      name += '-' + hashlib.sha1(folder.encode()).hexdigest()[:12]
    return cls(name=name, scales=scales, folder=folder,
               description=f'LR scales {scales}' + (f' from {folder}' if folder else ''))


_DEFAULT_CONFIG = SRConfig.make(DEFAULT_SCALES)


class _SRBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base: HR images from local folders, LR computed (or official) per configured scale."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [_DEFAULT_CONFIG]
  DEFAULT_BUILDER_CONFIG_NAME = _DEFAULT_CONFIG.name
  # split -> candidate folders (relative to manual_dir); subclasses fill these in.
  SPLITS: Mapping[str, Sequence[str]] = {}
  TITLE = ''
  LAYOUT = ''
  HOMEPAGE = ''
  NEEDS_FILES = True

  @classmethod
  def short_name(cls) -> str:
    return cls.name[len('jaxsr_'):]

  @classmethod
  def instructions(cls) -> str:
    return (f'Place {cls.TITLE} under the manual directory (pass manual_dir= or set '
            f'$JAXSR_DATA_DIR) as {cls.LAYOUT}. Nothing is downloaded.')

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        'name': tfds.features.Text(),
        'hr': tfds.features.Image(shape=(None, None, 3)),
        'channels': tfds.features.Tensor(shape=(), dtype=np.int32),
    }
    for s in self.builder_config.scales:
      features[f'lr_x{s}'] = tfds.features.Image(shape=(None, None, 3))
    return tfds.core.DatasetInfo(
        builder=self,
        description=f'{self.TITLE} with MATLAB-bicubic LR images (jaxsr). Layout: {self.LAYOUT}.',
        features=tfds.features.FeaturesDict(features),
        homepage=self.HOMEPAGE or None,
        disable_shuffling=True,  # keep file order (examples come out sorted by file name)
    )

  # -- Source discovery (also used before building, to fail early with the layout). --

  def _layout_error(self, root: pathlib.Path | None, what: str) -> InputError:
    where = f'{root}' if root is not None else '(no manual_dir given and $JAXSR_DATA_DIR unset)'
    return InputError(f'{self.name}: {what} in {where}; expected {self.LAYOUT} under the manual '
                      f'directory (pass manual_dir= or set $JAXSR_DATA_DIR)')

  def find_sources(self, manual_dir: str | os.PathLike | None) -> dict[str, list[_Source]]:
    """Maps each split to its image files.

    Raises:
      InputError: the folder of a split is missing or holds no images (names the layout).
    """
    if manual_dir is None:
      raise self._layout_error(None, 'no data folder')
    root = _dir(manual_dir)
    if not root.is_dir():
      raise self._layout_error(root, 'no such folder')
    sources = {}
    for split, candidates in self.SPLITS.items():
      folder = _find_folder(root, candidates)
      if folder is None:
        raise self._layout_error(root, f'no images for split {split!r}')
      sources[split] = [_Source(p.stem, p.stem, p) for p in _image_files(folder)]
    return sources

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = None
    if self.NEEDS_FILES:
      try:
        manual_dir = dl_manager.manual_dir
      except AssertionError:
        raise self._layout_error(dl_manager._manual_dir, 'no files') from None  # pylint: disable=protected-access
    return {split: self._generate_examples(sources)
            for split, sources in self.find_sources(manual_dir).items()}

  def _generate_examples(self, sources: Sequence[_Source]) -> Iterator[tuple[str, dict[str, Any]]]:
    scales = self.builder_config.scales
    skipped = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      for source, example in zip(sources, pool.map(lambda s: _make_example(s, scales), sources)):
        if example is None:
          skipped.append(source.name)
          continue
        record = {'name': example.name, 'hr': _rgb3(example.hr),
                  'channels': np.int32(example.hr.shape[-1])}
        for s in scales:
          record[f'lr_x{s}'] = _rgb3(example.lr[s])
        yield source.key, record
    if skipped:
      warnings.warn(f'{self.name}: skipped {len(skipped)} of {len(sources)} images smaller than '
                    f'scale {max(scales)}: {", ".join(skipped[:10])}', stacklevel=2)


def _simple(builder_name: str, title: str, splits: Mapping[str, Sequence[str]], layout: str,
            homepage: str = '') -> type[_SRBuilder]:
  attrs = dict(name=builder_name, SPLITS=dict(splits), TITLE=title, LAYOUT=layout,
               HOMEPAGE=homepage, __module__=__name__,
               __doc__=f'{title}, built from local files: {layout}.')
  attrs['MANUAL_DOWNLOAD_INSTRUCTIONS'] = (
      f'Place {title} under the manual directory as {layout}. Nothing is downloaded.')
  cls_name = ''.join(part.capitalize() for part in builder_name.split('_'))
  return type(cls_name, (_SRBuilder,), attrs)


_BENCH = 'https://github.com/XPixelGroup/BasicSR/blob/master/docs/DatasetPreparation.md'
JaxsrSet5 = _simple('jaxsr_set5', 'Set5', {'test': ['Set5']}, 'Set5/*.png', _BENCH)
JaxsrSet14 = _simple('jaxsr_set14', 'Set14', {'test': ['Set14']}, 'Set14/*.png', _BENCH)
JaxsrBsd100 = _simple('jaxsr_bsd100', 'BSD100 (B100)', {'test': ['BSD100', 'B100', 'BSDS100']},
                      'BSD100/*.png (or B100/, BSDS100/)', _BENCH)
JaxsrUrban100 = _simple('jaxsr_urban100', 'Urban100', {'test': ['Urban100']}, 'Urban100/*.png',
                        _BENCH)
JaxsrManga109 = _simple('jaxsr_manga109', 'Manga109', {'test': ['Manga109']}, 'Manga109/*.png',
                        _BENCH)
JaxsrT91 = _simple('jaxsr_t91', 'T91 (Yang et al. 91 images)', {'train': ['T91', '91-image']},
                   'T91/*.png (or 91-image/)', _BENCH)
JaxsrGeneral100 = _simple('jaxsr_general100', 'General-100',
                          {'train': ['General100', 'General-100']},
                          'General100/*.bmp (or General-100/)',
                          'https://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html')
_BSDS = 'https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/'
JaxsrBsd200 = _simple('jaxsr_bsd200', 'BSD200 (BSDS300 train)',
                      {'train': ['BSD200', 'BSDS200', 'BSDS300/images/train']},
                      'BSD200/*.jpg (or BSDS300/images/train/)', _BSDS)
JaxsrBsd300 = _simple('jaxsr_bsd300', 'BSDS300',
                      {'train': ['BSDS300/images/train', 'BSD300/train'],
                       'test': ['BSDS300/images/test', 'BSD300/test']},
                      'BSDS300/images/{train,test}/*.jpg', _BSDS)
_B500 = ('BSDS500/data/images', 'BSR/BSDS500/data/images', 'BSD500')
JaxsrBsd500 = _simple('jaxsr_bsd500', 'BSDS500',
                      {'train': [f'{b}/train' for b in _B500],
                       'validation': [f'{b}/val' for b in _B500],
                       'test': [f'{b}/test' for b in _B500]},
                      'BSDS500/data/images/{train,val,test}/*.jpg (or BSR/BSDS500/...)', _BSDS)
_DIV2K_SPLITS = {'train': ['DIV2K_train_HR', 'DIV2K/DIV2K_train_HR'],
                 'validation': ['DIV2K_valid_HR', 'DIV2K/DIV2K_valid_HR']}
_DIV2K = 'https://data.vision.ee.ethz.ch/cvl/DIV2K/'
JaxsrDiv2k = _simple('jaxsr_div2k', 'DIV2K', _DIV2K_SPLITS,
                     'DIV2K_train_HR/0001.png.., DIV2K_valid_HR/0801.png.. (optionally '
                     'DIV2K_train_LR_bicubic/X2/0001x2.png.., also accepted under DIV2K/)', _DIV2K)
_FLICKR_SPLITS = {'train': ['Flickr2K/Flickr2K_HR', 'Flickr2K_HR']}
JaxsrFlickr2k = _simple('jaxsr_flickr2k', 'Flickr2K', _FLICKR_SPLITS,
                        'Flickr2K/Flickr2K_HR/000001.png.. (optionally '
                        'Flickr2K/Flickr2K_LR_bicubic/X2/000001x2.png..)',
                        'https://github.com/limbee/NTIRE2017')


class JaxsrDf2k(_SRBuilder):
  """DF2K: DIV2K train + Flickr2K (train), DIV2K valid (validation)."""
  name = 'jaxsr_df2k'
  TITLE = 'DF2K (DIV2K + Flickr2K)'
  LAYOUT = f'the DIV2K layout ({JaxsrDiv2k.LAYOUT}) and the Flickr2K layout ({JaxsrFlickr2k.LAYOUT})'
  MANUAL_DOWNLOAD_INSTRUCTIONS = f'Place DIV2K and Flickr2K under the manual directory as {LAYOUT}.'

  def find_sources(self, manual_dir):
    if manual_dir is None:
      raise self._layout_error(None, 'no data folder')
    root = _dir(manual_dir)
    if not root.is_dir():
      raise self._layout_error(root, 'no such folder')
    found = {}
    for key, candidates in [('div2k_train', _DIV2K_SPLITS['train']),
                            ('div2k_valid', _DIV2K_SPLITS['validation']),
                            ('flickr2k', _FLICKR_SPLITS['train'])]:
      folder = _find_folder(root, candidates)
      if folder is None:
        raise self._layout_error(root, f'no {key} images')
      found[key] = [_Source(f'{key}_{p.stem}', p.stem, p) for p in _image_files(folder)]
    return {'train': found['div2k_train'] + found['flickr2k'], 'validation': found['div2k_valid']}


class JaxsrImageFolder(_SRBuilder):
  """Any folder of images; ``train/``, ``validation/`` (``valid``, ``val``), ``test/`` subfolders
  become splits, else all images form ``train``. Each folder is its own builder config."""
  name = 'jaxsr_image_folder'
  TITLE = 'an image folder'
  LAYOUT = ('<folder>/*.png (split train) or <folder>/{train,validation,test}/*.png; '
            'pass the folder as manual_dir')
  MANUAL_DOWNLOAD_INSTRUCTIONS = f'Pass the folder as manual_dir: {LAYOUT}.'
  _SPLIT_FOLDERS = {'train': ('train',), 'validation': ('validation', 'valid', 'val'),
                    'test': ('test',)}

  def find_sources(self, manual_dir):
    folder = manual_dir or self.builder_config.folder
    if folder is None:
      raise self._layout_error(None, 'no folder given')
    root = _dir(folder)
    if not root.is_dir():
      raise self._layout_error(root, 'no such folder')
    sources = {}
    for split, names in self._SPLIT_FOLDERS.items():
      for n in names:
        if _has_images(root / n):
          sources[split] = [_Source(p.stem, p.stem, p) for p in _image_files(root / n)]
          break
    if not sources:
      if not _has_images(root):
        raise self._layout_error(root, 'no images')
      sources['train'] = [_Source(p.stem, p.stem, p) for p in _image_files(root)]
    return sources


class JaxsrEmbedded(_SRBuilder):
  """The embedded default: scikit-image's shipped photographs (no files, no download)."""
  name = 'jaxsr_embedded'
  TITLE = 'the embedded default images'
  LAYOUT = 'nothing (the images ship with scikit-image)'
  NEEDS_FILES = False

  def find_sources(self, manual_dir):
    del manual_dir
    return {split: [_Source(name, name, None, image) for name, image in embedded_images(split)]
            for split in ('train', 'test')}


BUILDERS: dict[str, type[_SRBuilder]] = {
    cls.short_name(): cls for cls in (
        JaxsrSet5, JaxsrSet14, JaxsrBsd100, JaxsrUrban100, JaxsrManga109, JaxsrT91,
        JaxsrGeneral100, JaxsrBsd200, JaxsrBsd300, JaxsrBsd500, JaxsrDiv2k, JaxsrFlickr2k,
        JaxsrDf2k, JaxsrImageFolder, JaxsrEmbedded)
}
_ALIASES = {'b100': 'bsd100', 'bsds100': 'bsd100', 'general-100': 'general100', '91-image': 't91',
            'folder': 'image_folder', 'default': 'embedded', 'bsds300': 'bsd300',
            'bsds500': 'bsd500'}


def builder_names() -> list[str]:
  """Short names accepted by ``load`` (the tfds names are ``jaxsr_<name>``)."""
  return sorted(BUILDERS)


# --------------------------------------------------------------------------------------------
# Loading.


def _dir(path):
  """A folder: local as ``pathlib.Path`` (``~`` expanded), remote (``gs://``) as ``epath.Path``."""
  return files.to_path(path).expanduser()


def _default_manual_dir(manual_dir):
  if manual_dir is not None:
    return _dir(manual_dir)
  env = os.environ.get('JAXSR_DATA_DIR')
  return _dir(files.split_paths(env)[0]) if env else None


def _default_data_dir(data_dir):
  if data_dir is not None:
    return os.fspath(_dir(data_dir))
  return os.environ.get('JAXSR_TFDS_DIR') or None  # None: tfds' default (~/tensorflow_datasets)


def get_builder(name: str, *, data_dir: str | os.PathLike | None = None,
                manual_dir: str | os.PathLike | None = None,
                scales: Sequence[int] = DEFAULT_SCALES) -> _SRBuilder:
  """The (unprepared) builder for a short or ``jaxsr_`` name.

  Args:
    name: e.g. ``'set5'``, ``'jaxsr_div2k'``, ``'image_folder'``, ``'embedded'``.
    data_dir: where tfds keeps the prepared dataset (default ``$JAXSR_TFDS_DIR``, else tfds'
      default ``~/tensorflow_datasets``).
    manual_dir: the source folder (needed by ``image_folder`` to name its config).
    scales: the LR scales to store.

  Raises:
    InputError: unknown name.
  """
  key = name.lower()
  key = key[len('jaxsr_'):] if key.startswith('jaxsr_') else key
  key = _ALIASES.get(key, key)
  if key not in BUILDERS:
    raise InputError(f'{name}: unknown dataset; expected one of {", ".join(builder_names())}')
  cls = BUILDERS[key]
  folder = None
  if cls is JaxsrImageFolder:
    folder = _default_manual_dir(manual_dir)
    if folder is None:
      raise InputError(f'{cls.name}: pass the image folder as manual_dir ({cls.LAYOUT})')
  config = SRConfig.make(scales, folder=None if folder is None else os.fspath(folder))
  if config.name == _DEFAULT_CONFIG.name:
    config = _DEFAULT_CONFIG
  return cls(config=config, data_dir=_default_data_dir(data_dir))


def prepare(builder: _SRBuilder, *, manual_dir: str | os.PathLike | None = None) -> _SRBuilder:
  """Builds the dataset from local files unless already prepared; never downloads.

  Raises:
    InputError: missing folder (naming the expected layout) or unreadable image (naming the file).
  """
  if builder.is_prepared():
    return builder
  manual_dir = _default_manual_dir(manual_dir)
  if isinstance(builder, JaxsrImageFolder) and manual_dir is None:
    manual_dir = builder.builder_config.folder
  builder.find_sources(manual_dir)  # fail early, with the layout, before tfds starts
  config = tfds.download.DownloadConfig(
      manual_dir=None if manual_dir is None else os.fspath(manual_dir),
      try_download_gcs=False,
      compute_stats=tfds.download.ComputeStatsMode.SKIP,
      download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  try:
    builder.download_and_prepare(download_config=config)
  except InputError:
    raise
  except Exception as e:  # tfds may wrap errors raised inside the generator
    cause = e
    while cause is not None and not isinstance(cause, InputError):
      cause = cause.__cause__ or cause.__context__
    if cause is not None:
      raise InputError(str(cause)) from None
    raise
  return builder


def load(name: str, *, split: str, data_dir: str | os.PathLike | None = None,
         manual_dir: str | os.PathLike | None = None, scales: Sequence[int] = DEFAULT_SCALES,
         try_autocache: bool = True, shuffle_files: bool = False,
         decoders: Mapping[str, Any] | None = None) -> tf.data.Dataset:
  """Prepares (from local files, if needed) and opens one split as a ``tf.data.Dataset``.

  Elements are dicts ``{'name': string, 'hr': uint8 [H, W, 3], 'channels': int32,
  'lr_x{s}': uint8 [H // s, W // s, 3]}`` (see the module docstring). Turn ``try_autocache``
  off when measuring throughput (tfds otherwise caches small datasets in memory).

  Raises:
    InputError: unknown name or split, missing folder (naming the layout), corrupt image.
  """
  builder = prepare(get_builder(name, data_dir=data_dir, manual_dir=manual_dir, scales=scales),
                    manual_dir=manual_dir)
  base = split.split('[')[0].split('+')[0]
  if base not in builder.info.splits:
    raise InputError(f'{builder.name}: no split {split!r}; it has {", ".join(builder.info.splits)}')
  return builder.as_dataset(split=split, shuffle_files=shuffle_files, decoders=decoders,
                            read_config=tfds.ReadConfig(try_autocache=try_autocache))


def _decoded(name: str, *, split: str, data_dir, manual_dir, scales: Sequence[int],
             process_index: int = 0, process_count: int = 1) -> tf.data.Dataset:
  """The split with every ``process_count``-th example from ``process_index``, decoded in
  parallel (PNG decoding only for this host's examples)."""
  image_keys = ['hr'] + [f'lr_x{s}' for s in scales]
  dataset = load(name, split=split, data_dir=data_dir, manual_dir=manual_dir, scales=scales,
                 try_autocache=False,
                 decoders={k: tfds.decode.SkipDecoding() for k in image_keys})
  if process_count > 1:
    dataset = dataset.shard(process_count, process_index)

  def decode(record):
    record = dict(record)
    for k in image_keys:
      record[k] = tf.io.decode_png(record[k], channels=3)
    return record

  return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _to_example(record: Mapping[str, Any], scales: Sequence[int]) -> SRExample:
  grey = int(record['channels']) == 1
  fix = (lambda x: np.ascontiguousarray(x[..., :1])) if grey else (lambda x: x)
  name = record['name']
  name = name.decode() if isinstance(name, bytes) else str(name)
  return SRExample(name, fix(record['hr']), {s: fix(record[f'lr_x{s}']) for s in scales})


def eval_examples(name: str, *, split: str = 'test', data_dir=None, manual_dir=None,
                  scales: Sequence[int] = DEFAULT_SCALES) -> Iterator[SRExample]:
  """Yields whole images one at a time, in their own sizes and in file order.

  Each item is an ``SRExample``: ``name``, ``hr`` (uint8 ``[H, W, C]``, un-cropped, C = 1 for
  greyscale sources) and ``lr`` (``{s: uint8 [H // s, W // s, C]}``); the HR partner of
  ``lr[s]`` is ``jaxsr.degradations.modcrop(hr, s)``.
  """
  dataset = _decoded(name, split=split, data_dir=data_dir, manual_dir=manual_dir, scales=scales)
  for record in tfds.as_numpy(dataset):
    yield _to_example(record, scales)


def examples(name: str, *, split: str, data_dir=None, manual_dir=None,
             scales: Sequence[int] = DEFAULT_SCALES, process_index: int = 0,
             process_count: int = 1) -> list[SRExample]:
  """A split decoded into memory: ``[SRExample]`` in file order.

  With ``process_count > 1`` only examples ``process_index::process_count`` are read and
  decoded (each host caches its own disjoint share).
  """
  dataset = _decoded(name, split=split, data_dir=data_dir, manual_dir=manual_dir, scales=scales,
                     process_index=process_index, process_count=process_count)
  return [_to_example(record, scales) for record in tfds.as_numpy(dataset)]


def tfds_eval_images(name: str, split: str = 'test', data_dir=None,
                     manual_dir=None) -> list[tuple[str, np.ndarray]]:
  """``[(name, uint8 [H, W, C])]``: the HR images of a builder's split, for ``eval_sets``.

  Builds with the default scales; C is 1 for greyscale sources, else 3.
  """
  return [(ex.name, ex.hr) for ex in eval_examples(name, split=split, data_dir=data_dir,
                                                   manual_dir=manual_dir)]
