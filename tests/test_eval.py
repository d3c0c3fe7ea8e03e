"""eval.py and eval_lib: the published bicubic rows, the JSON shape, and one-line errors."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxsr import degradations
from jaxsr import eval_lib
from jaxsr.data import load_eval_set
from jaxsr.data.eval_sets import EvalImage
from jaxsr.errors import InputError
from conftest import REPO, shared_path

from jaxsr.commands import evaluate as eval_script  # the program of eval.py / jaxsr eval

# PUBLISHED_Y: the bicubic rows of the y protocol as the SR papers print them (2 decimals of dB,
# 4 of SSIM). Set5 matches to that precision; Set14 differs by up to 0.0095 dB / 0.0006, a gap
# not traced to a cause, hence its wider tolerance. REFERENCE_RGB: bicubic under the rgb
# protocol as computed by a separate float64 implementation of it; jaxsr must agree to
# 0.001 dB and 1e-5 SSIM.
PUBLISHED_Y = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
}
TOLERANCE_Y = {"Set5": (0.005, 0.0003), "Set14": (0.015, 0.001)}
REFERENCE_RGB = {("Set5", 2): (33.6818, 0.93052), ("Set14", 2): (30.3301, 0.87003)}


def _run(**kw):
  args = dict(model="bicubic", datasets="set5", scales="2", protocol=None, data_dir=None,
              output_json=None)
  args.update(kw)
  return eval_script.run(**args)


@pytest.mark.shared
def test_y_protocol_reproduces_published_bicubic_rows(tmp_path):
  data = shared_path("data", "benchmarks")
  out = tmp_path / "r.json"
  results = _run(datasets="set5,set14", scales="2,3,4", protocol="y", data_dir=str(data),
                 output_json=str(out))
  assert len(results) == 6
  for r in results:
    want_p, want_s = PUBLISHED_Y[(r["dataset"], r["scale"])]
    tol_p, tol_s = TOLERANCE_Y[r["dataset"]]
    assert abs(r["psnr"] - want_p) <= tol_p, r
    assert abs(r["ssim"] - want_s) <= tol_s, r
  saved = json.loads(out.read_text())
  entry = saved["results"][0]
  assert set(entry) == {"dataset", "scale", "protocol", "psnr", "ssim", "images"}
  assert entry["dataset"] == "Set5" and entry["protocol"] == "y"
  assert [i["name"] for i in entry["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
  assert entry["psnr"] == pytest.approx(np.mean([i["psnr"] for i in entry["images"]]))


@pytest.mark.shared
def test_rgb_protocol_equals_reference_figures():
  data = shared_path("data", "benchmarks")
  for r in _run(datasets="set5,set14", scales="2", protocol="rgb", data_dir=str(data)):
    want_p, want_s = REFERENCE_RGB[(r["dataset"], r["scale"])]
    assert abs(r["psnr"] - want_p) <= 0.001 and abs(r["ssim"] - want_s) <= 1e-5, r


@pytest.mark.shared
def test_folder_path_and_grey_image_in_both_protocols():
  set14 = shared_path("data", "benchmarks", "Set14")
  name, images = load_eval_set(str(set14))
  assert name == "Set14"
  bridge = next(i for i in images if i.name == "bridge")
  assert bridge.hr.shape[-1] == 1  # 1-channel file
  y = eval_lib.degrade(bridge, scale=3, protocol="y")
  rgb = eval_lib.degrade(bridge, scale=3, protocol="rgb")
  assert y.lr.shape[-1] == 1 and rgb.lr.shape[-1] == 3
  np.testing.assert_array_equal(y.hr[..., 0], rgb.hr[..., 0])  # grey is its own Y
  # rgb: Y of a replicated grey image is the affine luma, not the grey value.
  np.testing.assert_allclose(rgb.hr_y[..., 0], 16 + 219.0 / 255.0 * rgb.hr[..., 0], atol=1e-9)


def test_embedded_set_needs_no_files(capsys):
  results = _run(datasets="embedded", scales="3")
  assert results[0]["dataset"] == "Embedded" and len(results[0]["images"]) == 4
  assert 25 < results[0]["psnr"] < 40
  assert "Embedded" in capsys.readouterr().out


def test_degrade_shapes_and_modcrop():
  hr = np.random.RandomState(0).randint(0, 256, (50, 47, 3)).astype(np.uint8)
  pair = eval_lib.degrade(EvalImage("x", hr), scale=4, protocol="rgb")
  assert pair.lr.shape == (12, 11, 3) and pair.hr.shape == (48, 44, 3)
  assert pair.lr.dtype == np.float32
  np.testing.assert_array_equal(np.round(pair.lr * 255), np.round(pair.lr * 255).astype(np.uint8))
  pair = eval_lib.degrade(EvalImage("x", hr), scale=4, protocol="y")
  assert pair.lr.shape == (12, 11, 1) and pair.hr_y.shape == (48, 44, 1)
  same = degradations.degrade(hr, scale=4, protocol="y", name="x")  # what eval_lib wraps
  assert same.name == pair.name and np.array_equal(same.lr, pair.lr)


def test_a_perfect_model_scores_infinite_psnr_and_unit_ssim():
  hr = np.random.RandomState(1).randint(0, 256, (40, 40, 3)).astype(np.uint8)
  image = EvalImage("x", hr)
  ref = eval_lib.degrade(image, scale=2, protocol="y").hr
  perfect = lambda lr: (ref[None] / 255.0).astype(np.float32)
  r = eval_lib.evaluate(perfect, [image], scale=2, protocol="y", dataset="t")
  assert np.isinf(r["psnr"]) and r["ssim"] == pytest.approx(1.0, abs=1e-6)


def _write(path: pathlib.Path, array, mode=None):
  Image.fromarray(array, mode).save(path)
  return path


def test_bad_inputs_raise_one_line_errors_naming_the_culprit(tmp_path):
  with pytest.raises(InputError, match="unknown dataset"):
    _run(datasets="set6")
  with pytest.raises(InputError, match="no such folder"):
    _run(datasets=str(tmp_path / "missing"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(InputError, match="no image files"):
    _run(datasets=str(empty))
  corrupt = tmp_path / "corrupt"
  corrupt.mkdir()
  (corrupt / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
  with pytest.raises(InputError, match="broken.png"):
    _run(datasets=str(corrupt))
  small = tmp_path / "small"
  small.mkdir()
  _write(small / "tiny.png", np.zeros((3, 3, 3), np.uint8))
  with pytest.raises(InputError, match="tiny.*too small"):
    _run(datasets=str(small), scales="4")
  with pytest.raises(InputError, match="--scales"):
    _run(datasets="embedded", scales="x")
  with pytest.raises(InputError, match="Set5 in <data dir>/Set5"):
    _run(datasets="set5", data_dir=str(tmp_path))


def test_alpha_dropped_with_warning_and_16_bit_scaled(tmp_path):
  folder = tmp_path / "odd"
  folder.mkdir()
  rgba = np.random.RandomState(2).randint(0, 256, (32, 32, 4)).astype(np.uint8)
  _write(folder / "a_rgba.png", rgba)
  grey16 = (np.random.RandomState(3).rand(32, 32) * 65535).astype(np.uint16)
  import tensorflow as tf
  (folder / "b_grey16.png").write_bytes(tf.io.encode_png(grey16[..., None]).numpy())
  with pytest.warns(UserWarning, match="a_rgba.png: alpha channel dropped"):
    name, images = load_eval_set(str(folder))
  np.testing.assert_array_equal(images[0].hr, rgba[..., :3])
  np.testing.assert_array_equal(images[1].hr[..., 0], np.floor(grey16 / 257.0 + 0.5).astype(np.uint8))


def test_cli_prints_one_line_error_without_traceback(tmp_path):
  proc = subprocess.run([sys.executable, str(REPO / "eval.py"), "--datasets", str(tmp_path / "nope")],
                        capture_output=True, text=True, cwd=REPO, timeout=120)
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  assert f"eval.py: error: {tmp_path / 'nope'}: no such folder" in proc.stderr.strip().splitlines()


def test_runtime_sets_the_xla_cpu_flag_once(monkeypatch):
  from jaxsr import runtime
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  monkeypatch.delenv("JAXSR_XLA_DEFAULTS", raising=False)
  import jaxlib
  expected = jaxlib.__version__.startswith("0.10.")
  assert runtime.configure_xla_cpu() is expected
  assert runtime.configure_xla_cpu() is False  # already there
  if expected:
    assert os.environ["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=2 "
                                       "--xla_cpu_experimental_ynn_fusion_type=")
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAXSR_XLA_DEFAULTS", "1")
  assert runtime.configure_xla_cpu() is False and os.environ["XLA_FLAGS"] == ""
