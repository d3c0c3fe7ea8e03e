"""Reading image files into uint8 arrays, with one-line errors that name the file.

Contract of ``read_image``: returns uint8 ``[H, W, 1]`` for greyscale files and ``[H, W, 3]``
for colour files. An alpha channel is dropped with a warning; 16-bit images are scaled to 8-bit
(``round(v * 255 / 65535)``); palette and other modes are converted to RGB. A file of several
frames (an animated GIF, PNG or WebP, a multi-page TIFF) gives its first frame, with a one-line
warning that names the file and the number of frames dropped. Anything that cannot be decoded
raises ``jaxsr.errors.InputError`` naming the file.

Paths may be local or remote (``gs://...``, anything ``etils.epath`` knows, see
``jaxsr.files``): remote files are read whole through ``etils.epath`` and decoded from memory.

``IMAGE_EXTENSIONS`` are the suffixes a folder is searched for; a file named on its own is read
whatever its suffix, so a folder and its files listed one by one give the same images.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxsr import files as files_lib
from jaxsr.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "find_folder", "has_images", "image_files", "list_images", "read_image"]

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp",
                    ".gif")


# Where sets live under a data directory: <root>/<prefix>/<Name>/<subfolder>, covering the
# common download layouts (BasicSR's datasets/, benchmarks/, HR/ and GTmod12/ subfolders).
FOLDER_PREFIXES = ("", "benchmarks", "train", "test", "datasets")
FOLDER_SUBFOLDERS = ("", "HR", "GTmod12", "original")


def image_files(folder: pathlib.Path) -> list[pathlib.Path]:
  """Image files directly inside ``folder``, sorted by name (no checks)."""
  return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def has_images(folder: pathlib.Path) -> bool:
  """Whether ``folder`` is a folder holding at least one image file."""
  try:
    return folder.is_dir() and any(
        p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file())
  except files_lib.io_errors():
    return False


def find_folder(root: pathlib.Path, candidates: Sequence[str]) -> pathlib.Path | None:
  """First folder with images among ``root/<prefix>/<candidate>/<subfolder>``.

  ``root`` may also be the set's folder itself (its name equals a candidate's last part).
  """
  for candidate in candidates:
    bases = [root / prefix / candidate if prefix else root / candidate for prefix in FOLDER_PREFIXES]
    if root.name.lower() == pathlib.PurePosixPath(candidate).name.lower():
      bases.insert(0, root)
    for base in bases:
      for sub in FOLDER_SUBFOLDERS:
        folder = base / sub if sub else base
        if has_images(folder):
          return folder
  return None


def list_images(folder: str | os.PathLike) -> list[pathlib.Path]:
  """Image files directly inside ``folder``, sorted by name.

  Raises:
    InputError: the folder does not exist, is not a folder, or holds no image files.
  """
  folder = files_lib.to_path(folder)
  files_lib.check_reachable(folder)  # one line, not a hang, when its file system does not answer
  if not folder.exists():
    raise InputError(f"{folder}: no such folder")
  if not folder.is_dir():
    raise InputError(f"{folder}: not a folder")
  files = image_files(folder)
  if not files:
    raise InputError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
  return files


def _to_uint8(array: np.ndarray, path: pathlib.Path) -> np.ndarray:
  if array.dtype == np.uint8:
    return array
  if array.dtype == bool:
    return array.astype(np.uint8) * 255
  if array.dtype in (np.uint16, np.int32, np.int16, np.uint32) or np.issubdtype(array.dtype, np.integer):
    top = 65535.0 if array.max(initial=0) > 255 or array.dtype == np.uint16 else 255.0
    return np.floor(np.clip(array.astype(np.float64), 0, top) * (255.0 / top) + 0.5).astype(np.uint8)
  raise InputError(f"{path}: unsupported pixel type {array.dtype}")


def _read_png16(path: pathlib.Path, data: bytes) -> np.ndarray:
  """Decodes a 16-bit PNG (Pillow truncates 16-bit colour to 8 bits) and scales it to uint8."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  try:
    array = tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
  except tf.errors.OpError as e:
    raise InputError(f"{path}: cannot read image ({e.message.splitlines()[0]})") from None
  if array.shape[-1] in (2, 4):
    warnings.warn(f"{path}: alpha channel dropped", stacklevel=3)
    array = array[..., :-1]
  return _to_uint8(array, path)


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads one image file as uint8 ``[H, W, 1]`` (grey) or ``[H, W, 3]`` (colour).

  A file of several frames gives its first, with a warning.

  Raises:
    InputError: missing, unreadable or corrupt file.
  """
  path = files_lib.to_path(path)
  local = files_lib.is_local(path)
  try:
    if not path.is_file():
      raise InputError(f"{path}: no such image file")
    data = None if local else path.read_bytes()  # remote: one read, decoded from memory
  except files_lib.io_errors() as e:
    raise InputError(f"{path}: cannot read image ({type(e).__name__}: "
                     f"{(str(e).splitlines() or [''])[0][:200]})") from None
  if local:
    with open(path, "rb") as f:
      header = f.read(26)
  else:
    header = data[:26]
  if header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 26 and header[24] == 16:
    return _read_png16(path, path.read_bytes() if local else data)
  try:
    with Image.open(path if local else io.BytesIO(data)) as img:
      frames = int(getattr(img, "n_frames", 1) or 1)
      if frames > 1:
        warnings.warn(f"{path}: {frames} frames; only the first is used (the other "
                      f"{frames - 1} are ignored)", stacklevel=2)
      img.load()
      mode = img.mode
      if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        array = _to_uint8(np.asarray(img), path)
      elif mode in ("L", "1"):
        array = _to_uint8(np.asarray(img.convert("L")), path)
      elif mode == "LA":
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=2)
        array = np.asarray(img.convert("L"))
      elif mode in ("RGBA", "PA") or (mode == "P" and "transparency" in img.info):
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=2)
        array = np.asarray(img.convert("RGBA"))[..., :3]
      elif mode == "RGB":
        array = np.asarray(img)
      else:
        array = np.asarray(img.convert("RGB"))
  except InputError:
    raise
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise InputError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
  array = np.ascontiguousarray(array)
  if array.ndim == 2:
    array = array[..., None]
  if array.ndim != 3 or array.shape[-1] not in (1, 3) or min(array.shape[:2]) < 1:
    raise InputError(f"{path}: unsupported image shape {array.shape}")
  return array
