"""eval.py / jaxsr eval beyond one model: SR folders, several methods, formats, images, progress."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxsr import color
from jaxsr import eval_lib
from jaxsr.commands import evaluate as eval_script
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError
from conftest import REPO


def _smooth(h: int, w: int, seed: int) -> np.ndarray:
  """A smooth-ish uint8 RGB image (bicubic is a sensible method on it)."""
  rng = np.random.RandomState(seed)
  yy, xx = np.mgrid[0:h, 0:w] / 7.0
  planes = [np.sin(xx * rng.uniform(0.3, 1.2) + yy * rng.uniform(0.3, 1.2) + rng.uniform(0, 6))
            for _ in range(3)]
  image = (np.stack(planes, -1) * 0.45 + 0.5) * 255 + rng.normal(0, 6, (h, w, 3))
  return np.clip(image, 0, 255).astype(np.uint8)


def _save(path: pathlib.Path, image: np.ndarray) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
  return path


@pytest.fixture()
def hr_set(tmp_path) -> pathlib.Path:
  """A 3-image HR set named 'Tiny' (odd sizes, so modcrop matters)."""
  folder = tmp_path / "Tiny"
  for i, (name, h, w) in enumerate((("a", 49, 41), ("b01", 40, 52), ("c", 45, 45))):
    _save(folder / f"{name}.png", _smooth(h, w, i))
  return folder


def _bicubic_outputs(hr_set: pathlib.Path, scale: int, protocol: str) -> dict[str, np.ndarray]:
  """What eval_lib scores for bicubic: name -> uint8 SR image."""
  _, images = load_eval_set(str(hr_set))
  out = {}
  for image in images:
    pair = eval_lib.degrade(image, scale=scale, protocol=protocol)
    out[image.name] = eval_lib.to_uint8(eval_lib.bicubic(scale)(pair.lr[None])[0])
  return out


def _methods(hr_set, **kw):
  args = dict(datasets=str(hr_set), scales="2", protocol=None, data_dir=None)
  args.update(kw)
  return eval_script.run_methods(**args)


@pytest.mark.parametrize("protocol", ["y", "rgb"])
def test_sr_dir_is_scored_exactly_like_the_model_path(tmp_path, hr_set, protocol):
  sr = tmp_path / "results"
  for name, image in _bicubic_outputs(hr_set, 2, protocol).items():
    _save(sr / f"{name}_x2_SR.png", image)
  table = _methods(hr_set, sr_dir=f"copy={sr}", bicubic=True, protocol=protocol)
  (label_a, (bic,)), (label_b, (dirs,)) = table
  assert (label_a, label_b) == ("bicubic", "copy")
  assert bic["images"] == dirs["images"] and bic["psnr"] == dirs["psnr"]
  assert 20 < bic["psnr"] < 60 and dirs["protocol"] == protocol


def test_y_protocol_rounds_the_y_of_an_rgb_result(tmp_path, hr_set):
  """An RGB file under protocol y: its MATLAB Y rounded to uint8 is what is scored."""
  sr = tmp_path / "rgb_results"
  rgb = _bicubic_outputs(hr_set, 2, "rgb")
  for name, image in rgb.items():
    _save(sr / f"{name}.png", image)
  (_, (entry,)), = _methods(hr_set, sr_dir=str(sr), protocol="y")
  _, images = load_eval_set(str(hr_set))
  for image, row in zip(images, entry["images"]):
    pair = eval_lib.degrade(image, scale=2, protocol="y")
    want = eval_lib.score(color.y_uint8(rgb[image.name]).astype(np.float64),
                          pair.hr_y, crop=2)
    assert (row["psnr"], row["ssim"]) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("stem", ["a", "a_x2", "ax2", "a_SR", "a_x2_SR", "a_SRx2", "A_sr",
                                  "a_SRF_2", "a_SRF_2_SR", "a_ESRGAN", "EDSR_a", "a_x2_RCAN"])
def test_file_names_with_the_usual_suffixes_match(tmp_path, stem):
  folder = tmp_path / "f"
  _save(folder / f"{stem}.png", np.zeros((4, 4, 3), np.uint8))
  _save(folder / "b01_x2.png", np.zeros((4, 4, 3), np.uint8))
  _save(folder / "b01_x3.png", np.zeros((4, 4, 3), np.uint8))  # another scale: ignored
  files = eval_lib.match_sr_files(folder, ["a", "b01"], scale=2)
  assert files["a"].name == f"{stem}.png" and files["b01"].name == "b01_x2.png"


def test_unmatched_files_are_named_in_one_line(tmp_path):
  folder = tmp_path / "f"
  for stem in ("a_x4", "zebra", "b01", "b01_SR"):
    _save(folder / f"{stem}.png", np.zeros((4, 4, 3), np.uint8))
  with pytest.raises(InputError) as e:
    eval_lib.match_sr_files(folder, ["a", "b01", "c"], scale=4)
  msg = str(e.value)
  assert "\n" not in msg and str(folder) in msg
  assert "no SR image for c" in msg
  assert "files matching no HR image: zebra.png" in msg
  assert "several files for b01 (b01.png, b01_SR.png)" in msg


def test_sr_folder_layouts(tmp_path):
  def folder_for(rel, **kw):
    root = tmp_path / rel.split("/")[0]
    _save(tmp_path / rel / "a.png", np.zeros((4, 4, 3), np.uint8))
    return eval_lib.find_sr_folder(root, dataset="Set5", scale=4, **kw)

  assert folder_for("r1/Set5/x4", only_set=False) == tmp_path / "r1/Set5/x4"
  assert folder_for("r2/set5_X4", only_set=False) == tmp_path / "r2/set5_X4"
  assert folder_for("r3/x4/Set5", only_set=False) == tmp_path / "r3/x4/Set5"
  assert folder_for("r4/Set5", only_set=False) == tmp_path / "r4/Set5"
  assert folder_for("r5/x4", only_set=True) == tmp_path / "r5/x4"
  assert folder_for("r6", only_set=True) == tmp_path / "r6"
  _save(tmp_path / "r8/BSD100/a.png", np.zeros((4, 4, 3), np.uint8))
  assert eval_lib.find_sr_folder(tmp_path / "r8", dataset="B100", scale=2,
                                 only_set=False) == tmp_path / "r8/BSD100"
  # A set folder split per scale but without this scale: not used for it.
  _save(tmp_path / "r9/Set5/x2/a.png", np.zeros((4, 4, 3), np.uint8))
  with pytest.raises(InputError, match=r"no SR images of Set5 at x4; looked in .*r9/Set5/x4"):
    eval_lib.find_sr_folder(tmp_path / "r9", dataset="Set5", scale=4, only_set=False)
  with pytest.raises(InputError, match="no such folder"):
    eval_lib.find_sr_folder(tmp_path / "nope", dataset="Set5", scale=4, only_set=True)


def test_size_mismatch_names_the_file_and_hr_size_is_modcropped(tmp_path, hr_set):
  sr = tmp_path / "sizes"
  outputs = _bicubic_outputs(hr_set, 2, "rgb")
  _, images = load_eval_set(str(hr_set))
  for image in images:  # the full HR size (a is 49x41): accepted and modcropped
    padded = np.zeros(image.hr.shape[:2] + (3,), np.uint8)
    out = outputs[image.name]
    padded[: out.shape[0], : out.shape[1]] = out
    _save(sr / f"{image.name}.png", padded)
  (_, (entry,)), = _methods(hr_set, sr_dir=str(sr), protocol="rgb")
  (_, (ref,)), = _methods(hr_set, protocol="rgb")
  assert entry["images"] == ref["images"]
  _save(sr / "b01.png", np.zeros((30, 52, 3), np.uint8))
  with pytest.raises(InputError, match=r"b01.png: SR image of 30x52 does not match b01 at x2 "
                                       r"\(HR 40x52, modcropped 40x52\)"):
    _methods(hr_set, sr_dir=str(sr), protocol="rgb")


def test_several_methods_one_table_in_every_format(tmp_path, hr_set, capsys):
  sr = tmp_path / "better"
  for scale in (2, 3):
    for name, image in _bicubic_outputs(hr_set, scale, "y").items():
      _save(sr / f"x{scale}" / f"{name}.png", image)
  out_json = tmp_path / "r.json"
  common = dict(model="bicubic", datasets=str(hr_set), scales="2,3", protocol="y",
                data_dir=None, sr_dir=["same=" + str(sr)], bicubic=True)
  entries = eval_script.run(output_json=str(out_json), table_format="markdown", **common)
  assert len(entries) == 4
  text = capsys.readouterr().out
  lines = text.splitlines()
  assert lines[0] == "| Method | Tiny x2 | Tiny x3 |"
  assert lines[2].startswith("| bicubic | **") and lines[3].startswith("| same | **")  # ties
  doc = json.loads(out_json.read_text())
  assert [m["model"] for m in doc["methods"]] == ["bicubic", "same"]
  assert doc["methods"][1]["sr_dir"] == str(sr) and doc["methods"][0]["checkpoint"] is None
  assert [r["scale"] for r in doc["methods"][1]["results"]] == [2, 3]

  eval_script.run(output_json=None, table_format="latex", **common)
  latex = capsys.readouterr().out
  assert "\\begin{tabular}{l|cc}" in latex and "\\textbf{" in latex and "Tiny $\\times$3" in latex
  eval_script.run(output_json=None, table_format="csv", **common)
  rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
  assert rows[0][:4] == ["method", "protocol", "Tiny x2 PSNR", "Tiny x2 SSIM"]
  assert float(rows[1][2]) == pytest.approx(doc["methods"][0]["results"][0]["psnr"], abs=1e-4)
  eval_script.run(output_json=None, table_format="json", **common)
  assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(doc))
  eval_script.run(output_json=None, table_format="text", **common)
  text = capsys.readouterr().out.splitlines()
  assert text[0].split() == ["Method", "Protocol", "Tiny", "x2", "Tiny", "x3"]
  assert text[1].split()[:2] == ["bicubic", "y"] and text[2].split()[:2] == ["same", "y"]


def test_best_is_per_column_and_lower_is_better_where_the_metric_says(monkeypatch):
  monkeypatch.setitem(eval_lib.METRICS, "err", eval_lib.Metric(
      "err", lambda *a, **k: 0.0, higher_is_better=False, digits=2, label="ERR"))
  entry = lambda p, e: [{"dataset": "S", "scale": 2, "protocol": "y", "psnr": p, "err": e}]
  md = eval_lib.format_comparison([("a", entry(30.0, 0.5)), ("b", entry(31.0, 0.7))],
                                  fmt="markdown", metrics=("psnr", "err"))
  assert "| a | 30.00/**0.50** |" in md and "| b | **31.00**/0.70 |" in md


def test_a_registered_metric_is_computed_and_saved(tmp_path, hr_set, monkeypatch):
  def mean_abs(sr, hr, *, scale, protocol):
    del protocol
    return float(np.abs(sr[scale:-scale, scale:-scale].astype(float)
                        - hr[scale:-scale, scale:-scale]).mean())
  monkeypatch.setitem(eval_lib.METRICS, "mae", eval_lib.Metric("mae", mean_abs, False, 3, "MAE"))
  (_, (entry,)), = _methods(hr_set, metrics="psnr,mae")
  assert list(entry) == ["dataset", "scale", "protocol", "psnr", "mae", "images"]
  assert list(entry["images"][0]) == ["name", "psnr", "mae"] and entry["mae"] > 0
  with pytest.raises(InputError, match="unknown metric 'nope'; available: psnr, ssim"):
    eval_lib.parse_metrics("psnr,nope")


def test_save_images_writes_what_was_scored(tmp_path, hr_set):
  out = tmp_path / "imgs"
  _methods(hr_set, save_images=str(out), protocol="rgb", scales="2,3")
  want = _bicubic_outputs(hr_set, 3, "rgb")
  saved = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
  assert saved == [f"bicubic/Tiny/x{s}/{n}.png" for s in (2, 3) for n in ("a", "b01", "c")]
  np.testing.assert_array_equal(np.asarray(Image.open(out / "bicubic/Tiny/x3/a.png")), want["a"])


class _Tty(io.StringIO):
  def isatty(self):
    return True


def test_progress_bar_on_a_terminal_only(hr_set):
  tty = _Tty()
  ticks = iter(range(100))
  bar = eval_script.ProgressBar(tty, width=10, clock=lambda: float(next(ticks)))
  _methods(hr_set, progress=bar)
  text = tty.getvalue()
  assert "bicubic Tiny x2 [###.......] 1/3" in text and "ETA" in text
  assert "[##########] 3/3" in text and text.endswith("\r\x1b[K")
  quiet = io.StringIO()
  _methods(hr_set, progress=eval_script.ProgressBar(quiet))
  assert quiet.getvalue() == ""


def test_cli_unmatched_sr_file_is_one_line_exit_2(tmp_path, hr_set):
  sr = tmp_path / "res"
  for name, image in _bicubic_outputs(hr_set, 2, "y").items():
    if name != "c":
      _save(sr / f"{name}_x2.png", image)
  proc = subprocess.run([sys.executable, str(REPO / "eval.py"), "--sr-dir", str(sr),
                         "--datasets", str(hr_set), "--scales", "2"],
                        capture_output=True, text=True, cwd=REPO, timeout=300)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  (line,) = proc.stderr.strip().splitlines()
  assert line.startswith(f"eval.py: error: {sr}: SR images do not match") and "for c" in line


@pytest.mark.slow
def test_cli_repeated_flags_give_one_table(tmp_path, hr_set):
  """Two --sr-dir flags and --model bicubic through absl: three rows, one JSON."""
  sr = tmp_path / "res"
  for name, image in _bicubic_outputs(hr_set, 2, "y").items():
    _save(sr / f"{name}_x2_SR.png", image)
  out = tmp_path / "r.json"
  proc = subprocess.run([sys.executable, "-m", "jaxsr", "eval", "--model", "bicubic",
                         "--sr-dir", f"one={sr}", "--sr-dir", f"two={sr}", "--datasets",
                         str(hr_set), "--scales", "2", "--format", "csv", "--output-json",
                         str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = list(csv.reader(io.StringIO(proc.stdout)))
  assert [r[0] for r in rows[1:4]] == ["bicubic", "one", "two"]
  assert len({tuple(r[1:]) for r in rows[1:4]}) == 1
  assert [m["model"] for m in json.loads(out.read_text())["methods"]] == ["bicubic", "one", "two"]


def _niqe_or_skip():
  niqe = eval_lib._metrics_function("niqe", "niqe")  # pylint: disable=protected-access
  load = eval_lib._metrics_function("load_niqe_params", "niqe")  # pylint: disable=protected-access
  if niqe is None or load is None:
    pytest.skip("jaxsr.metrics has no niqe yet")
  return niqe, load


def test_niqe_without_its_model_file_fails_before_computing(tmp_path, hr_set, monkeypatch):
  _niqe_or_skip()
  monkeypatch.setenv("JAXSR_NIQE_PARAMS", str(tmp_path / "missing.npz"))
  eval_lib._niqe_params.cache_clear()  # pylint: disable=protected-access
  try:
    with pytest.raises(InputError, match="missing.npz: no such file"):
      _methods(hr_set, metrics="psnr,niqe", progress=eval_script.ProgressBar(_Tty()))
  finally:
    eval_lib._niqe_params.cache_clear()  # pylint: disable=protected-access


@pytest.mark.slow
def test_niqe_is_the_library_function_on_the_sr_image(tmp_path):
  niqe, load = _niqe_or_skip()
  try:
    params = load()
  except InputError as e:
    pytest.skip(str(e))
  folder = tmp_path / "Big"
  _save(folder / "p.png", _smooth(200, 104, 7))
  (_, (rgb,)), = _methods(folder, metrics="psnr,niqe", protocol="rgb")
  (_, (y,)), = _methods(folder, metrics="niqe", protocol="y")
  sr = _bicubic_outputs(folder, 2, "rgb")["p"]
  want = float(niqe(sr.astype(np.float32), params=params, max_value=255.0, crop_border=2))
  assert rgb["niqe"] == pytest.approx(want, abs=1e-6) and np.isfinite(want)
  sr_y = _bicubic_outputs(folder, 2, "y")["p"]
  want_y = float(niqe(sr_y.astype(np.float32), params=params, max_value=255.0, crop_border=2))
  assert y["niqe"] == pytest.approx(want_y, abs=1e-6) and list(y) == [
      "dataset", "scale", "protocol", "niqe", "images"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> pathlib.Path:
  """A 2-step ESPCN x3 training run (the packaged 'test' recipe)."""
  workdir = tmp_path_factory.mktemp("ckpt") / "run"
  proc = subprocess.run([sys.executable, "-m", "jaxsr", "train", "--config", "recipe:test",
                         "--workdir", str(workdir), "--config.num_train_steps=2",
                         "--config.eval_datasets="], capture_output=True, text=True,
                        cwd=workdir.parent, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


@pytest.mark.slow
def test_two_checkpoints_and_bicubic_in_one_table(tiny_checkpoint, hr_set, capsys):
  table = eval_script.run_methods(datasets=str(hr_set), scales=None, protocol=None,
                                  data_dir=None, bicubic=True,
                                  checkpoint=[str(tiny_checkpoint), f"mine={tiny_checkpoint}"])
  assert [label for label, _ in table] == ["bicubic", "espcn", "mine"]
  assert all([e["scale"] for e in entries] == [3] for _, entries in table)  # its own scale
  assert all(entries[0]["protocol"] == "y" for _, entries in table)  # a Y model: all y
  assert table[1][1] == table[2][1]
  assert table[0][1][0]["psnr"] != table[1][1][0]["psnr"]


def test_lpips_inputs_follow_the_protocol():
  rgb = np.random.RandomState(4).randint(0, 256, (20, 22, 3)).astype(np.uint8)
  grey = rgb[..., :1]
  x, y = eval_lib.lpips_inputs(rgb, grey, scale=2, protocol="rgb")
  assert x.shape == y.shape == (1, 16, 18, 3) and x.dtype == np.float32
  np.testing.assert_array_equal(x[0], rgb[2:-2, 2:-2] / np.float32(255))
  np.testing.assert_array_equal(y[0, ..., 2], grey[2:-2, 2:-2, 0] / np.float32(255))
  x, _ = eval_lib.lpips_inputs(rgb, grey, scale=2, protocol="y")
  want = color.y_uint8(rgb)[2:-2, 2:-2, 0] / np.float32(255)
  for c in range(3):
    np.testing.assert_array_equal(x[0, ..., c], want)


def test_row_labels_are_unique(tmp_path, hr_set):
  for where in ("a/res", "b/res"):
    for name, image in _bicubic_outputs(hr_set, 2, "y").items():
      _save(tmp_path / where / f"{name}.png", image)
  table = _methods(hr_set, sr_dir=[str(tmp_path / "a/res"), str(tmp_path / "b/res"),
                                   f"res={tmp_path / 'a/res'}"])
  assert [label for label, _ in table] == ["a/res", "b/res", "res"]


def _random_alex_params(seed: int = 0) -> dict:
  rng = np.random.RandomState(seed)
  shapes = ((11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256))
  backbone = [{"kernel": (rng.randn(k, k, cin, cout) / np.sqrt(k * k * cin)).astype(np.float32),
               "bias": (rng.randn(cout) * 0.1).astype(np.float32)} for k, cin, cout in shapes]
  linear = [np.abs(rng.randn(c)).astype(np.float32) * 0.1 for _, _, c in shapes]
  return {"backbone": backbone, "linear": linear}


@pytest.mark.parametrize("protocol", ["y", "rgb"])
def test_lpips_is_the_library_function_on_the_protocol_images(hr_set, monkeypatch, protocol):
  from jaxsr import metrics  # pylint: disable=g-import-not-at-top
  if getattr(metrics, "lpips", None) is None:
    pytest.skip("jaxsr.metrics has no lpips yet")
  params = _random_alex_params()
  monkeypatch.setitem(eval_lib.METRICS, "lpips", eval_lib.lpips_metric("alex", params=params))
  (_, (entry,)), = _methods(hr_set, metrics="psnr,lpips", protocol=protocol)
  _, images = load_eval_set(str(hr_set))
  outputs = _bicubic_outputs(hr_set, 2, protocol)
  for image, row in zip(images, entry["images"]):
    pair = eval_lib.degrade(image, scale=2, protocol=protocol)
    x, y = eval_lib.lpips_inputs(outputs[image.name], pair.hr, scale=2, protocol=protocol)
    want = float(metrics.lpips(x, y, params=params, net="alex")[0])
    assert row["lpips"] == pytest.approx(want, rel=1e-6) and want > 0
  assert entry["lpips"] == pytest.approx(np.mean([r["lpips"] for r in entry["images"]]))


def test_lpips_without_weights_is_one_line_before_computing(hr_set, tmp_path, monkeypatch):
  from jaxsr import metrics  # pylint: disable=g-import-not-at-top
  if getattr(metrics, "lpips", None) is None:
    pytest.skip("jaxsr.metrics has no lpips yet")
  monkeypatch.setitem(eval_lib.METRICS, "lpips", eval_lib.lpips_metric(
      "alex", backbone=tmp_path / "alexnet.pth"))
  tty = _Tty()
  with pytest.raises(InputError, match="alexnet.pth: no such file") as e:
    _methods(hr_set, metrics="psnr,lpips", progress=eval_script.ProgressBar(tty))
  assert e.value.field == "lpips_backbone" and tty.getvalue() == ""  # nothing evaluated
