"""``jaxsr upscale`` / ``jaxsr convert`` (jaxsr.cli) and ``jaxsr.inference.upscale_image``."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from jaxsr import cli
from jaxsr import color
import factories
from jaxsr import convert
from jaxsr import imresize
from jaxsr import inference
from jaxsr.data.images import read_image

REPO = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _fsrcnn_checkpoint(directory: pathlib.Path, scale: int = 2) -> convert.Imported:
  """A small random FSRCNN(16, 4, 1) in the FSRCNN-pytorch layout, saved as a checkpoint."""
  imp = convert.import_state_dict(factories.fsrcnn_pytorch_state_dict(RNG), scale=scale)
  imp.save(directory)
  return imp


def _write(path: pathlib.Path, array: np.ndarray) -> pathlib.Path:
  Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
  return path


@pytest.fixture(scope="module")
def y_model(tmp_path_factory):
  directory = tmp_path_factory.mktemp("ckpt") / "fsrcnn"
  return directory, _fsrcnn_checkpoint(directory)


def test_upscale_y_model_on_rgb_and_grey(tmp_path, y_model):
  ckpt, imp = y_model
  yy, xx = np.mgrid[0:13, 0:17] / 8.0  # smooth and unsaturated: no RGB clipping after chroma
  rgb = np.stack([120 + 30 * np.sin(xx + c) * np.cos(yy - c) for c in range(3)], -1)
  rgb = np.round(rgb).astype(np.uint8)
  grey = RNG.integers(0, 256, (9, 8, 1)).astype(np.uint8)
  a, b = _write(tmp_path / "a.png", rgb), _write(tmp_path / "b.jpg", grey)
  out = tmp_path / "out"
  assert cli.main(["upscale", str(a), str(b), "--checkpoint", str(ckpt), "--output", str(out)]) == 0
  sr = read_image(out / "a_x2.png")
  assert sr.shape == (26, 34, 3)
  # Y: the model's output on MATLAB Y / 255; CbCr: bicubic. Compare in YCbCr (uint8 rounding).
  ycc = color.rgb_to_ycbcr(rgb)
  want_y = inference.upscale(imp.module, imp.variables,
                             (ycc[..., :1] / 255).astype(np.float32))[..., 0] * 255
  got = color.rgb_to_ycbcr(sr)
  assert np.abs(got[..., 0] - want_y).max() < 1.0  # uint8 RGB rounding only
  want_c = imresize.imresize_np(ycc[..., 1:], 2)
  assert np.abs(got[..., 1:] - want_c).max() < 1.5
  g = read_image(out / "b_x2.png")
  assert g.shape == (18, 16, 1)
  grey = read_image(b)  # JPEG is lossy: what the command read
  direct = inference.upscale(imp.module, imp.variables, grey.astype(np.float32) / 255)
  np.testing.assert_array_equal(g, np.floor(np.clip(direct, 0, 1) * 255 + 0.5).astype(np.uint8))


def test_upscale_tile_and_self_ensemble(tmp_path, y_model):
  ckpt, _ = y_model
  grey = RNG.integers(0, 256, (40, 36, 1)).astype(np.uint8)
  src = _write(tmp_path / "g.png", grey)
  outs = {}
  for name, extra in [("whole", []), ("tiled", ["--tile", "24", "--tile-overlap", "12"]),
                      ("ens", ["--self-ensemble"])]:
    assert cli.main(["upscale", str(src), "--checkpoint", str(ckpt), "--output",
                     str(tmp_path / name)] + extra) == 0
    outs[name] = read_image(tmp_path / name / "g_x2.png").astype(int)
  assert np.abs(outs["tiled"] - outs["whole"]).max() <= 1  # exact up to rounding
  assert outs["ens"].shape == outs["whole"].shape


def test_upscale_rgb_model_with_weights(tmp_path):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  sd = {"conv_first.weight": torch.randn(8, 3, 3, 3) * 0.01, "conv_first.bias": torch.zeros(8)}
  for i in range(1):
    for c in (1, 2):
      sd[f"body.{i}.conv{c}.weight"] = torch.randn(8, 8, 3, 3) * 0.01
      sd[f"body.{i}.conv{c}.bias"] = torch.zeros(8)
  sd.update({"conv_after_body.weight": torch.randn(8, 8, 3, 3) * 0.01,
             "conv_after_body.bias": torch.zeros(8),
             "upsample.0.weight": torch.randn(32, 8, 3, 3) * 0.01,
             "upsample.0.bias": torch.zeros(32),
             "conv_last.weight": torch.randn(3, 8, 3, 3) * 0.01, "conv_last.bias": torch.zeros(3)})
  weights = tmp_path / "edsr_tiny_x2.pth"
  torch.save({"params": sd}, weights)
  src = _write(tmp_path / "c.png", RNG.integers(0, 256, (10, 12, 3)).astype(np.uint8))
  assert cli.main(["upscale", str(src), "--model", "edsr_baseline", "--weights", str(weights),
                   "--output", str(tmp_path / "o")]) == 0
  assert read_image(tmp_path / "o" / "c_x2.png").shape == (20, 24, 3)


@pytest.mark.parametrize("make_args,message", [
    (lambda d, c: ["upscale", str(d / "missing.png"), "--checkpoint", str(c), "--output",
                   str(d / "o")], "no such file or folder"),
    (lambda d, c: ["upscale", str(d / "corrupt.png"), "--checkpoint", str(c), "--output",
                   str(d / "o")], "cannot read image"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--output", str(d / "o")], "give a model"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--weights", str(d / "ok.png"), "--output",
                   str(d / "o")], "--model: the registry name"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--checkpoint", str(d), "--output",
                   str(d / "o")], "no jaxsr checkpoint"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--checkpoint", str(c), "--scale", "4",
                   "--output", str(d / "o")], "x2 model, not x4"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--checkpoint", str(c), "--output",
                   str(d / "ok.png")], "not a folder"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--checkpoint", str(c), "--tile", "8",
                   "--output", str(d / "o")], "must exceed --tile-overlap"),
    (lambda d, c: ["upscale", str(d / "ok.png"), "--model", "nonexistent", "--weights",
                   str(d / "ok.png"), "--output", str(d / "o")], "unknown model"),
    (lambda d, c: ["convert", str(d / "ok.png"), "--output", str(d / "o")],
     "unknown weights format"),
])
def test_one_line_errors(tmp_path, capsys, y_model, make_args, message):
  ckpt, _ = y_model
  _write(tmp_path / "ok.png", np.zeros((8, 8, 3), np.uint8))
  (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
  assert cli.main(make_args(tmp_path, ckpt)) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("jaxsr: error:") and message in err[0], err


def test_console_entry_point_one_line_error(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "jaxsr", "upscale", str(tmp_path / "nope.png"),
                         "--model", "srcnn", "--weights", str(tmp_path / "w.mat"), "--output",
                         str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO,
                        timeout=120)
  assert proc.returncode == 2
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert lines[-1].startswith("jaxsr: error:") and "Traceback" not in proc.stderr


def test_convert_then_upscale_opencv_fsrcnn(tmp_path):
  weights = shared_path("weights", "opencv_dnn_superres", "FSRCNN_x3.pb")
  assert cli.main(["convert", str(weights), "--output", str(tmp_path / "ck")]) == 0
  hr = read_image(shared_path("data", "benchmarks", "Set5", "butterfly.png"))
  lr = imresize.imresize_np(hr[:255, :255], 1 / 3)
  src = _write(tmp_path / "lr.png", lr)
  assert cli.main(["upscale", str(src), "--checkpoint", str(tmp_path / "ck"), "--output",
                   str(tmp_path / "o")]) == 0
  sr = read_image(tmp_path / "o" / "lr_x3.png")
  imp = convert.load_weights(weights)
  as_matlab = inference.upscale_image(lr, imp.module, imp.variables, scale=3, luma="matlab")
  ref = color.rgb_to_ycbcr(hr[:255, :255])[..., 0]

  def psnr_y(a):
    d = color.rgb_to_ycbcr(a)[..., 0][6:-6, 6:-6] - ref[6:-6, 6:-6]
    return 10 * np.log10(255 ** 2 / np.mean(d ** 2))

  # Measured: 24.88 dB (OpenCV luma, as the command does), 24.84 (fed MATLAB luma), 24.07 bicubic.
  assert psnr_y(sr) > psnr_y(imresize.imresize_np(lr, 3)) + 0.5
  assert psnr_y(sr) > psnr_y(as_matlab)
