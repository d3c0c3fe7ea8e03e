"""Fault matrix of ``jaxsr upscale`` / ``jaxsr convert`` (issue 20, rows 3, 5, 7, 8, 11).

Each row's fault ends with one ``jaxsr: error: ...`` line on stderr and exit status 2, through
the real ``python -m jaxsr`` entry point where that is cheap, with nothing written; the
in-process tests (``cli.main``) cover what a subprocess cannot fake (a full disk, a failure in
the middle of a save).
"""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import factories
from jaxsr import cli
from jaxsr import convert
from jaxsr import inference
from jaxsr.data.images import list_images, read_image

REPO = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _jaxsr(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxsr", *map(str, args)], capture_output=True,
                        text=True, cwd=REPO, timeout=300, env={**os.environ, **(env or {})})


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("jaxsr: error: "), lines
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


def _png(path: pathlib.Path, shape=(12, 10, 3)) -> pathlib.Path:
  Image.fromarray(RNG.integers(0, 256, shape).astype(np.uint8)).save(path)
  return path


@pytest.fixture(scope="module")
def fsrcnn_x2(tmp_path_factory):
  """A random FSRCNN-pytorch state dict saved as ``tiny_x2.pth``, and its x2 checkpoint."""
  torch = pytest.importorskip("torch")
  root = tmp_path_factory.mktemp("weights")
  sd = factories.fsrcnn_pytorch_state_dict(RNG)
  pth = root / "tiny_x2.pth"
  torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, pth)
  ckpt = root / "ckpt_x2"
  convert.import_state_dict(sd, scale=2).save(ckpt)
  return pth, ckpt


# Row 3: weights trained for another scale.

def test_wrong_scale_weights_refused_unless_forced(tmp_path, fsrcnn_x2):
  pth, _ = fsrcnn_x2
  src = _png(tmp_path / "a.png")
  out = tmp_path / "out"
  _one_line_error(_jaxsr("upscale", src, "--model", "fsrcnn", "--weights", pth, "--scale", "3",
                         "--output", out), "--scale:", "x2", "x3")
  assert not out.exists()
  _one_line_error(_jaxsr("convert", pth, "--scale", "3", "--output", tmp_path / "ck"),
                  "--scale:", "x2", "x3")
  assert not (tmp_path / "ck").exists()
  # Forced: built at x3 and saved as such.
  assert cli.main(["convert", str(pth), "--scale", "3", "--force-scale", "--output",
                   str(tmp_path / "ck")]) == 0
  assert cli.main(["upscale", str(src), "--checkpoint", str(tmp_path / "ck"), "--output",
                   str(out)]) == 0
  assert read_image(out / "a_x3.png").shape == (36, 30, 3)


# Row 5: an output folder that cannot be written.

def test_output_folder_that_cannot_be_created(tmp_path, fsrcnn_x2):
  _, ckpt = fsrcnn_x2
  src = _png(tmp_path / "a.png")
  (tmp_path / "file").write_text("not a folder")
  _one_line_error(_jaxsr("upscale", src, "--checkpoint", ckpt, "--output",
                         tmp_path / "file" / "sub"), "--output", str(tmp_path / "file" / "sub"))


def test_unwritable_output_folder_and_failed_write(tmp_path, fsrcnn_x2, capsys, monkeypatch):
  _, ckpt = fsrcnn_x2
  src = _png(tmp_path / "a.png")
  out = tmp_path / "out"
  out.mkdir()
  # Root ignores permission bits, so unwritability is faked where the command checks it.
  real_access = os.access
  monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
      False if pathlib.Path(p) == out else real_access(p, mode, **kw)))
  assert cli.main(["upscale", str(src), "--checkpoint", str(ckpt), "--output", str(out)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "cannot write to this folder" in err[0] and str(out) in err[0]
  monkeypatch.setattr(os, "access", real_access)

  def full_disk(self, fp, *args, **kwargs):  # half an image written, then the disk is full
    if hasattr(fp, "write"):
      fp.write(b"\x89PNG half")
    else:
      pathlib.Path(fp).write_bytes(b"\x89PNG half")
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(Image.Image, "save", full_disk)
  assert cli.main(["upscale", str(src), "--checkpoint", str(ckpt), "--output", str(out)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "No space left on device" in err[0] and "a_x2.png" in err[0], err
  assert list(out.iterdir()) == []  # no output, no temporary file


# Row 7: convert into an existing checkpoint.

def test_convert_over_an_existing_checkpoint(tmp_path, fsrcnn_x2, capsys, monkeypatch):
  pth, _ = fsrcnn_x2
  ck = tmp_path / "ck"
  assert cli.main(["convert", str(pth), "--output", str(ck)]) == 0
  before = sorted(p.relative_to(ck) for p in ck.rglob("*"))
  _one_line_error(_jaxsr("convert", pth, "--output", ck), str(ck), "--overwrite")
  assert sorted(p.relative_to(ck) for p in ck.rglob("*")) == before
  # A save that fails half-way leaves the old checkpoint as it was.
  capsys.readouterr()

  def failing_save(self, directory):
    (pathlib.Path(directory) / "0").mkdir()
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(convert.Imported, "save", failing_save)
  assert cli.main(["convert", str(pth), "--output", str(ck), "--overwrite"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "No space left" in err[0] and str(ck) in err[0], err
  assert sorted(p.relative_to(ck) for p in ck.rglob("*")) == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no staging folder left
  monkeypatch.undo()
  assert cli.main(["convert", str(pth), "--output", str(ck), "--overwrite", "--scale", "4",
                   "--force-scale"]) == 0
  assert "x4" in capsys.readouterr().out
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
  from jaxsr import loading  # pylint: disable=g-import-not-at-top
  assert loading.load_model(checkpoint=ck).scale == 4


# Row 8: an image too large for a whole-image pass.

def test_too_large_for_memory_tiles_automatically(tmp_path, fsrcnn_x2):
  _, ckpt = fsrcnn_x2
  src = _png(tmp_path / "big.png", (150, 200, 3))
  whole, auto = tmp_path / "whole", tmp_path / "auto"
  assert cli.main(["upscale", str(src), "--checkpoint", str(ckpt), "--output", str(whole)]) == 0
  # The estimate of this model at 150x200 is ~12 MB: 8 MB of memory forces tiling.
  proc = _jaxsr("upscale", src, "--checkpoint", ckpt, "--output", auto,
                env={inference.MEMORY_ENV: "8M"})
  assert proc.returncode == 0, proc.stderr
  notes = [l for l in proc.stderr.splitlines() if l.startswith("jaxsr:")]
  assert len(notes) == 1 and "tiling with --tile" in notes[0], proc.stderr
  a, w = read_image(auto / "big_x2.png").astype(int), read_image(whole / "big_x2.png").astype(int)
  assert a.shape == w.shape == (300, 400, 3)
  assert np.abs(a - w).max() <= 1  # exact up to rounding: overlap 16 > 2 x radius 5
  # Nothing fits in 100 KB: refused with the estimate.
  _one_line_error(_jaxsr("upscale", src, "--checkpoint", ckpt, "--output", tmp_path / "none",
                         env={inference.MEMORY_ENV: "100K"}), "--tile:", "GiB")
  assert not (tmp_path / "none").exists()


# Row 11: animated GIFs.

def test_animated_gif_first_frame_with_one_warning(tmp_path, fsrcnn_x2):
  _, ckpt = fsrcnn_x2
  folder = tmp_path / "in"
  folder.mkdir()
  frames = [Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)) for i in range(3)]
  frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
  assert [p.name for p in list_images(folder)] == ["anim.gif"]  # folders list GIFs too
  with pytest.warns(UserWarning, match=r"anim.gif: 3 frames; only the first is used"):
    first = read_image(folder / "anim.gif")
  assert first.shape[:2] == (6, 8) and (first == 0).all()  # frame 0 is black
  proc = _jaxsr("upscale", folder, "--checkpoint", ckpt, "--output", tmp_path / "out")
  assert proc.returncode == 0, proc.stderr
  warnings_ = [l for l in proc.stderr.splitlines() if l.strip()]
  assert warnings_ == [f"jaxsr: warning: {folder / 'anim.gif'}: 3 frames; only the first is "
                       f"used (the other 2 are ignored)"], proc.stderr
  assert read_image(tmp_path / "out" / "anim_x2.png").shape[:2] == (12, 16)
