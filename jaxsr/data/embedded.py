"""The embedded default data: colour photographs that scikit-image ships inside its wheel.

No files or downloads are needed, so a fresh machine can train and evaluate at once. The split
is fixed: four natural photographs form the test set, the other colour images the training set.
Images are read from scikit-image's installed data folder (never fetched).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxsr.data.images import read_image
from jaxsr.errors import InputError

__all__ = ["EMBEDDED_TEST", "EMBEDDED_TRAIN", "embedded_images"]

# (name, file in skimage/data). Test: natural photographs of varied content and size.
EMBEDDED_TEST = (
    ("astronaut", "astronaut.png"),
    ("chelsea", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
)
EMBEDDED_TRAIN = (
    ("motorcycle_left", "motorcycle_left.png"),
    ("motorcycle_right", "motorcycle_right.png"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("immunohistochemistry", "ihc.png"),
    ("retina", "retina.jpg"),
    ("colorwheel", "color.png"),
)


def _data_dir() -> pathlib.Path:
  import skimage  # pylint: disable=g-import-not-at-top

  return pathlib.Path(skimage.__file__).parent / "data"


def embedded_images(split: str) -> list[tuple[str, np.ndarray]]:
  """Returns ``[(name, uint8 [H, W, 3])]`` for ``split`` in {'train', 'test'}."""
  table = {"train": EMBEDDED_TRAIN, "test": EMBEDDED_TEST}
  if split not in table:
    raise InputError(f"embedded: unknown split {split!r}; expected 'train' or 'test'")
  root = _data_dir()
  return [(name, read_image(root / filename)) for name, filename in table[split]]
