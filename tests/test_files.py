"""jaxsr.files: outputs are written whole or not at all."""

import errno

import numpy as np
import pytest
from PIL import Image

from jaxsr import files


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "a.json"
  path.write_text("old")
  assert files.write_atomic(path, lambda f: f.write(b"new"), sync=True) == path
  assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
  path = tmp_path / "a.json"
  path.write_text("old")

  def fail(f):
    f.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")

  with pytest.raises(OSError, match="No space left"):
    files.write_atomic(path, fail)
  assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("channels", [1, 3])
def test_save_png_round_trips(tmp_path, channels):
  image = np.random.default_rng(0).integers(0, 256, (5, 7, channels), dtype=np.uint8)
  path = files.save_png(tmp_path / "x.png", image)
  back = np.asarray(Image.open(path))
  np.testing.assert_array_equal(back.reshape(image.shape), image)
