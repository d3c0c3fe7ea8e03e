"""Cloud paths: work directories, data and evaluation outputs on a non-local file system.

The offline non-local file system is TensorFlow's in-memory ``ram://`` (``tf.io.gfile``). The
``ram`` fixture teaches ``etils.epath`` that scheme (epath maps only gs/s3/az/hf), backed by
epath's ``tf.io.gfile`` backend, so the library sees a genuinely non-local path and takes its
remote branches (no pathlib, open() or os.* on it). Checkpoints go through tensorstore, which
does not know ``ram://``: the training test keeps them on a local ``config.checkpoint_dir``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from etils.epath import backend as epath_backend
from etils.epath import gpath
from etils.epath import register
from PIL import Image

from jaxsr import files
from jaxsr.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]


class _RamBackend(type(epath_backend.tf_backend)):
  """epath's tf.io.gfile backend, replacing a file on write: TensorFlow's ram:// file system
  writes over an existing file without truncating it (GCS and local files replace it)."""

  def open(self, path, mode):  # pylint: disable=arguments-differ
    if "w" in mode and self.gfile.exists(path):
      self.gfile.remove(path)
    return super().open(path, mode)


_RAM_BACKEND = _RamBackend()


class _RamPath(gpath.PosixGPath):
  """``ram://`` paths for epath, on ``_RamBackend``."""

  @property
  def _backend(self):
    return _RAM_BACKEND


@pytest.fixture
def ram(monkeypatch):
  """A fresh ``ram://<id>`` root that ``etils.epath`` (and so jaxsr) treats as remote."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import

  monkeypatch.setattr(gpath, "_URI_PREFIXES", gpath._URI_PREFIXES + ("ram://",))
  monkeypatch.setattr(gpath, "_URI_SCHEMES", gpath._URI_SCHEMES | {"ram"})
  monkeypatch.setitem(gpath._URI_MAP_ROOT, "ram://", "/ram/")
  monkeypatch.setitem(gpath._PREFIX_TO_BACKEND, "ram", _RAM_BACKEND)
  monkeypatch.setitem(register._URI_PREFIXES_TO_CLS, "ram://", _RamPath)
  return f"ram://jaxsr-{uuid.uuid4().hex[:8]}"


def _png(path: str, array: np.ndarray) -> None:
  files.as_path(path).parent.mkdir(parents=True, exist_ok=True)
  files.save_png(path, array)


def _images(root: str, n: int, size: int = 24, seed: int = 0) -> str:
  rng = np.random.default_rng(seed)
  for i in range(n):
    yy, xx = np.mgrid[0:size, 0:size] / 5.0
    smooth = np.stack([120 + 60 * np.sin(xx * (1 + c) + i) * np.cos(yy - c) for c in range(3)], -1)
    image = np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)
    _png(f"{root}/img{i:02d}.png", image)
  return root


# ----------------------------------------------------------------------------- jaxsr.files


def test_path_helpers(ram):
  assert files.is_local("/a/b") and files.is_local(pathlib.Path("x")) and not files.is_local(ram)
  assert str(files.as_path("~/x")) == os.path.expanduser("~/x")
  assert str(files.as_path(f"{ram}/a") / "b") == f"{ram}/a/b"
  assert isinstance(files.to_path("rel/x"), pathlib.Path)
  assert files.split_paths("gs://b/x:/data:~/d") == ["gs://b/x", "/data", "~/d"]
  with pytest.raises(InputError, match=r"^workdir: nope://x: unknown file system 'nope://'"):
    files.as_path("nope://x", field="workdir")


def test_write_atomic_on_a_remote_path(ram):
  target = files.as_path(f"{ram}/out/a.bin")
  target.parent.mkdir(parents=True)
  assert files.write_atomic(target, lambda f: f.write(b"one")) == target
  assert target.read_bytes() == b"one"

  def fail(f):
    f.write(b"partial")
    raise OSError("boom")

  with pytest.raises(OSError, match="boom"):
    files.write_atomic(target, fail)
  assert target.read_bytes() == b"one"  # nothing of the failed write is published
  assert [p.name for p in target.parent.iterdir()] == ["a.bin"]
  image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
  files.save_png(f"{ram}/out/i.png", image)
  from jaxsr.data.images import read_image  # pylint: disable=g-import-not-at-top
  np.testing.assert_array_equal(read_image(f"{ram}/out/i.png"), image)


def test_an_unanswered_remote_path_is_one_line_within_the_timeout(ram, monkeypatch):
  monkeypatch.setenv("JAXSR_REMOTE_TIMEOUT", "0.3")
  monkeypatch.setattr(_RamPath, "exists", lambda self: time.sleep(30))
  start = time.monotonic()
  with pytest.raises(InputError, match=r"^workdir: ram://.*: no answer from its file system "
                                       r"within 0.3 s"):
    files.check_reachable(f"{ram}/w", field="workdir")
  assert time.monotonic() - start < 5


def test_a_failing_remote_file_system_is_one_line(ram, monkeypatch):
  def refuse(self):
    raise PermissionError("403 Forbidden: no access to bucket")

  monkeypatch.setattr(_RamPath, "exists", refuse)
  with pytest.raises(InputError, match=r"^report: ram://.*: cannot reach it \(PermissionError: "
                                       r"403 Forbidden"):
    files.check_reachable(f"{ram}/r", field="report")


# ----------------------------------------------------------------------------- training


def _train_config(ram: str, tmp_path: pathlib.Path, steps: int):
  from configs import test as test_config  # pylint: disable=g-import-not-at-top

  config = test_config.get_config()
  config.update(num_train_steps=steps, eval_every_steps=2,
                eval_datasets=f"{ram}/data/MySet", checkpoint_dir=str(tmp_path / "ckpt"),
                batches_per_transfer=2)
  config.data.hr_folder = f"{ram}/data/hr"
  if not files.as_path(f"{ram}/data").exists():
    _images(f"{ram}/data/hr", 3, size=30)
    _images(f"{ram}/data/MySet", 2, size=24, seed=1)
  return config


def _history(root) -> list[int]:
  return [json.loads(line)["step"]
          for line in (root / "eval_history.jsonl").read_text().splitlines()]


def test_train_with_workdir_data_and_eval_set_on_ram(ram, tmp_path):
  """Logs, summary, eval history and comparison on ram://; data and eval set read from it."""
  from jaxsr import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top

  workdir = f"{ram}/runs/a"
  summary = train_lib.train_and_evaluate(_train_config(ram, tmp_path, 4), workdir)
  root = files.as_path(workdir)
  saved = json.loads((root / "summary.json").read_text())
  assert saved["step"] == 4 and saved["params_sha256"] == summary["params_sha256"]
  assert summary["eval"][0]["dataset"] == "MySet"
  assert _history(root) == [2, 4]  # appended at step 2 and at the end
  assert (root / "comparison.png").exists()
  assert list(root.glob("events.out.tfevents.*"))
  assert not (root / "train.lock").exists() and not (root / "checkpoints").exists()
  assert ckpt_lib.CheckpointManager(tmp_path / "ckpt").all_steps() == [4]


@pytest.mark.slow
def test_train_on_ram_resumes_like_an_uninterrupted_run(ram, tmp_path):
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top

  workdir = f"{ram}/runs/b"
  train_lib.train_and_evaluate(_train_config(ram, tmp_path, 4), workdir)
  resumed = train_lib.train_and_evaluate(_train_config(ram, tmp_path, 6), workdir)
  straight = train_lib.train_and_evaluate(_train_config(ram, tmp_path / "s", 6), f"{ram}/runs/c")
  assert resumed["step"] == 6 and resumed["params_sha256"] == straight["params_sha256"]
  assert _history(files.as_path(workdir)) == [2, 4, 6]  # the remote history grew whole


def test_train_refuses_bad_remote_workdirs_in_one_line(ram):
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top

  with pytest.raises(InputError, match=r"^workdir: nope://w: unknown file system"):
    train_lib.train_and_evaluate(test_config.get_config(), "nope://w")
  blocker = files.as_path(f"{ram}/file")
  blocker.write_bytes(b"x")
  with pytest.raises(InputError, match=r"^ram://.*/file: not a directory"):
    train_lib.train_and_evaluate(test_config.get_config(), str(blocker))


def test_prepared_records_on_ram(ram, tmp_path):
  """Images on ram:// prepared by tfds, then the prepared records read from a ram:// data_dir.

  tfds prepares into an ``incomplete.*`` folder and renames it; TensorFlow's ram:// renames a
  folder's name but not its files (GCS and local folders move whole), so the preparation runs
  on a local data_dir here and its result is copied to ram:// to be read from there.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jaxsr.data import sources  # pylint: disable=g-import-not-at-top

  hr = _images(f"{ram}/raw", 2, size=16)
  local = sources.RecordSource("image_folder", data_dir=str(tmp_path / "tfds"), manual_dir=hr,
                               scales=(2,))
  for folder, _, names in os.walk(tmp_path / "tfds"):
    target = f"{ram}/tfds/{os.path.relpath(folder, tmp_path / 'tfds')}"
    tf.io.gfile.makedirs(target)
    for name in names:
      tf.io.gfile.copy(os.path.join(folder, name), f"{target}/{name}")
  source = sources.RecordSource("image_folder", data_dir=f"{ram}/tfds", manual_dir=hr,
                                scales=(2,))
  assert len(source) == 2
  assert str(source._records[0][0]).startswith(f"{ram}/tfds/")  # pylint: disable=protected-access
  example = source.load_one(1)
  assert example.name == "img01" and example.hr.shape == (16, 16, 3)
  np.testing.assert_array_equal(example.lr[2], local.load_one(1).lr[2])


# ----------------------------------------------------------------------------- evaluation


def test_eval_outputs_on_ram_and_sr_dir_read_back(ram, capsys):
  from jaxsr.commands import evaluate  # pylint: disable=g-import-not-at-top

  evalset = _images(f"{ram}/sets/Tiny", 2, size=24)
  out = f"{ram}/eval"
  entries = evaluate.run(model="bicubic", datasets=evalset, scales="2", protocol=None,
                         data_dir=None, output_json=f"{out}/results.json",
                         save_images=f"{out}/images", report=f"{out}/report")
  root = files.as_path(out)
  document = json.loads((root / "results.json").read_text())
  assert document["results"][0]["psnr"] == pytest.approx(entries[0]["psnr"])
  assert (root / "report" / "index.html").read_text().startswith("<!DOCTYPE html>")
  saved = sorted(p.name for p in (root / "images" / "bicubic" / "Tiny" / "x2").iterdir())
  assert saved == ["img00.png", "img01.png"]
  assert f"wrote {out}/report/index.html" in capsys.readouterr().out
  # The saved SR images, read back from ram:// as an --sr-dir, score the same.
  again = evaluate.run(model="bicubic", datasets=evalset, scales="2", protocol=None,
                       data_dir=None, output_json=None, sr_dir=f"{out}/images/bicubic",
                       bicubic=False)
  assert again[0]["psnr"] == pytest.approx(entries[0]["psnr"], abs=1e-3)


def test_eval_bad_remote_outputs_are_one_line(ram):
  from jaxsr.commands import evaluate  # pylint: disable=g-import-not-at-top

  with pytest.raises(InputError, match=r"^report: nope://r: unknown file system"):
    evaluate.run(model="bicubic", datasets="embedded", scales="2", protocol=None, data_dir=None,
                 output_json=None, report="nope://r")
  with pytest.raises(InputError, match=r"^sr_dir: .*: no such folder"):
    evaluate.run(model="bicubic", datasets="embedded", scales="2", protocol=None, data_dir=None,
                 output_json=None, sr_dir=f"{ram}/missing", bicubic=False)


# ----------------------------------------------------------------------------- jaxsr upscale


def test_upscale_reads_and_writes_ram(ram, tmp_path, capsys):
  import factories  # pylint: disable=g-import-not-at-top
  from jaxsr import cli  # pylint: disable=g-import-not-at-top
  from jaxsr import convert  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  convert.import_state_dict(factories.fsrcnn_pytorch_state_dict(rng), scale=2).save(
      tmp_path / "fsrcnn")
  src = _images(f"{ram}/in", 1, size=12)
  assert cli.main(["upscale", src, "--checkpoint", str(tmp_path / "fsrcnn"),
                   "--output", f"{ram}/out"]) == 0
  out = files.as_path(f"{ram}/out/img00_x2.png")
  with out.open("rb") as f, Image.open(f) as img:
    assert img.size == (24, 24)
  assert f"-> {out}" in capsys.readouterr().out


# ----------------------------------------------------------------------------- gs:// offline


def test_unreachable_gs_path_is_one_line_and_status_2(tmp_path):
  """Without network or credentials a gs:// path fails in one line, bounded in time."""
  env = {k: v for k, v in os.environ.items()  # not the fake GCS's proxy, if one runs
         if not k.lower().endswith("_proxy") and "GCS" not in k and "GOOGLE" not in k}
  env.update(JAXSR_REMOTE_TIMEOUT="20", PYTHONPATH=str(REPO))
  start = time.monotonic()
  proc = subprocess.run(
      [sys.executable, "-m", "jaxsr", "eval", "--model", "bicubic", "--datasets", "embedded",
       "--scales", "2", "--report", "gs://jaxsr-test-no-such-bucket-4c1d/report"],
      capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
  if proc.returncode == 0:
    pytest.skip("this machine reaches GCS")
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [line for line in proc.stderr.splitlines() if line.startswith("jaxsr eval: error:")]
  assert len(lines) == 1 and "gs://jaxsr-test-no-such-bucket-4c1d/report" in lines[0], proc.stderr
  assert "Traceback" not in proc.stderr
  assert time.monotonic() - start < 120


# ----------------------------------------------------------------------------- gs:// (fake GCS)
# tests/gcs_fake.py: a local fake-gcs-server that tf.io.gfile and tensorstore reach offline;
# the fixture skips with a reason when it cannot run. Kept last: its environment is set for
# the rest of this module once it starts.

from gcs_fake import fake_gcs  # noqa: E402,F401  pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.slow
@pytest.mark.oracle
def test_eval_outputs_on_fake_gcs(fake_gcs):  # pylint: disable=redefined-outer-name
  from jaxsr.commands import evaluate  # pylint: disable=g-import-not-at-top

  out = f"{fake_gcs}/eval"
  evaluate.run(model="bicubic", datasets="embedded", scales="2", protocol=None, data_dir=None,
               output_json=f"{out}/results.json", report=f"{out}/report")
  root = files.check_reachable(out)
  assert json.loads((root / "results.json").read_text())["results"][0]["scale"] == 2
  assert (root / "report" / "index.html").exists()


@pytest.mark.slow
@pytest.mark.oracle
def test_train_workdir_and_checkpoints_on_fake_gcs_resume(fake_gcs, tmp_path):  # pylint: disable=redefined-outer-name
  """Everything on gs://: events, summary, history and the Orbax checkpoints (tensorstore)."""
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from jaxsr import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top

  def config(steps):
    c = test_config.get_config()
    c.update(num_train_steps=steps, eval_every_steps=2, batches_per_transfer=2)
    return c

  workdir = f"{fake_gcs}/runs/a"
  train_lib.train_and_evaluate(config(4), workdir)
  root = files.as_path(workdir)
  assert ckpt_lib.CheckpointManager(root / "checkpoints").all_steps() == [4]
  resumed = train_lib.train_and_evaluate(config(8), workdir)
  straight = train_lib.train_and_evaluate(config(8), str(tmp_path / "local"))
  assert resumed["step"] == 8 and resumed["params_sha256"] == straight["params_sha256"]
  assert _history(root) == [2, 4, 6, 8]
  module, variables, meta = ckpt_lib.load_model(workdir)
  assert meta["step"] == 8
  assert ckpt_lib.params_sha256(variables["params"]) == resumed["params_sha256"]
