"""Evaluation sets by registered name (set5, set14, ...) or by folder path.

A registered name is looked up as a folder of HR images under the data directories: the
``data_dir`` argument, then ``$JAXSR_DATA_DIR``, with ``jaxsr.data.images.find_folder`` (the same
layouts the tfds builders accept: ``<Name>``, ``benchmarks/<Name>``, ``datasets/<Name>``, ... and
their ``HR`` / ``GTmod12`` / ``original`` subfolders). ``embedded`` is the test split of the embedded default images (no files needed).
Data directories and folder paths may be remote (``gs://bucket/...``; ``jaxsr.files``).
Whole images come out in their own sizes, uint8 ``[H, W, 1 or 3]``, sorted by file name.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np

from jaxsr import files
from jaxsr.data.embedded import embedded_images
from jaxsr.data.images import find_folder, list_images, read_image
from jaxsr.errors import InputError

__all__ = ["EVAL_SETS", "EvalImage", "list_eval_sets", "load_eval_set", "resolve_eval_set"]

# registered name -> (display name, folder names tried)
EVAL_SETS = {
    "set5": ("Set5", ("Set5",)),
    "set14": ("Set14", ("Set14",)),
    "bsd100": ("B100", ("BSD100", "B100", "BSDS100")),
    "urban100": ("Urban100", ("Urban100",)),
    "manga109": ("Manga109", ("Manga109",)),
    "embedded": ("Embedded", ()),
}
_ALIASES = {"b100": "bsd100", "bsds100": "bsd100"}


@dataclasses.dataclass(frozen=True)
class EvalImage:
  """One evaluation image: its name (file stem) and HR pixels, uint8 ``[H, W, C]``."""
  name: str
  hr: np.ndarray


def list_eval_sets() -> list[str]:
  """The registered evaluation set names."""
  return sorted(EVAL_SETS)


def _data_dirs(data_dir: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[pathlib.Path]:
  dirs = []
  if data_dir:
    dirs += [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
  if os.environ.get("JAXSR_DATA_DIR"):
    dirs += files.split_paths(os.environ["JAXSR_DATA_DIR"])
  return [files.to_path(d).expanduser() for d in dirs]


def resolve_eval_set(spec: str, *, data_dir=None) -> tuple[str, pathlib.Path | None]:
  """Maps a set name or folder path to ``(display name, folder)``; folder is None for embedded.

  Raises:
    InputError: unknown name, or a registered set whose folder is in none of the data dirs.
  """
  key = _ALIASES.get(spec.lower(), spec.lower())
  if key in EVAL_SETS:
    display, folders = EVAL_SETS[key]
    if not folders:
      return display, None
    roots = _data_dirs(data_dir)
    for root in roots:
      folder = find_folder(root, folders)
      if folder is not None:
        return display, folder
    where = ", ".join(str(r) for r in roots) or "(no data dir given)"
    raise InputError(
        f"{spec}: dataset folder not found; expected the HR images of {display} in "
        f"<data dir>/{folders[0]} or <data dir>/benchmarks/{folders[0]} (pass --data-dir or set "
        f"JAXSR_DATA_DIR); looked under {where}")
  if not files.is_local(spec):  # a remote folder (gs://bucket/set)
    path = files.check_reachable(spec)
    if not path.is_dir():
      raise InputError(f"{spec}: not a folder of images" if path.exists() else f"{spec}: no such folder")
    return path.name, path
  path = pathlib.Path(spec).expanduser()
  if path.exists() or os.sep in spec or spec.startswith("."):
    if not path.is_dir():
      raise InputError(f"{spec}: not a folder of images" if path.exists() else f"{spec}: no such folder")
    return path.resolve().name, path
  raise InputError(f"{spec}: unknown dataset; expected one of {', '.join(list_eval_sets())} or a folder path")


def load_eval_set(spec: str, *, data_dir=None) -> tuple[str, list[EvalImage]]:
  """Loads a whole evaluation set: ``(display name, [EvalImage, ...])``.

  Raises:
    InputError: unknown name, missing or empty folder, unreadable image (naming the file).
  """
  display, folder = resolve_eval_set(spec, data_dir=data_dir)
  if folder is None:
    return display, [EvalImage(name, hr) for name, hr in embedded_images("test")]
  return display, [EvalImage(p.stem, read_image(p)) for p in list_images(folder)]
