"""Writing output files whole or not at all.

Contract:
  * ``write_atomic(path, write)`` calls ``write(f)`` on a binary file opened at a temporary
    sibling of ``path`` (a dot-name in the same folder, so the rename stays on one file system),
    then renames it over ``path``: a reader sees the old file or the new one, never a part. On
    any ``OSError`` the temporary file is removed and the error is raised as it is (callers turn
    it into their one-line message). ``sync=True`` also flushes the data to disk before the
    rename.
  * ``save_png(path, image)``: a uint8 ``[H, W, 1|3]`` image as PNG, through ``write_atomic``.
"""

from __future__ import annotations

import os
import pathlib
from typing import BinaryIO, Callable

import numpy as np

__all__ = ["save_png", "write_atomic"]


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                 sync: bool = False) -> pathlib.Path:
  """Writes ``path`` through a temporary sibling and a rename; returns ``path``."""
  path = pathlib.Path(path)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      write(f)
      if sync:
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise
  return path


def save_png(path: str | os.PathLike, image: np.ndarray) -> pathlib.Path:
  """Writes a uint8 ``[H, W, 1|3]`` image as a PNG file, whole or not at all."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  return write_atomic(path, lambda f: pil.save(f, format="PNG"))
