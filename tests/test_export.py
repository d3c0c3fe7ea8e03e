"""``jaxsr.export`` and ``jaxsr export``: artifacts run in their own runtimes at any size.

Each artifact is loaded by its own runtime (``jax.export.deserialize``, TensorFlow, the TFLite
interpreter, onnxruntime), run on two image sizes (and batch sizes) and compared with jaxsr's
own output (``jaxsr.inference.upscale(..., bucket=None)``): within 1e-4 in float32, within
``export.TOLERANCE[dtype]`` in reduced precision. Default tests use tiny random models; the
whole registry x every format is ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest

from jaxsr import cli
from jaxsr import convert
from jaxsr import export
from jaxsr import inference
from jaxsr.errors import InputError
import factories

RNG = np.random.default_rng(0)
SIZES = ((1, 7, 9), (2, 12, 5))  # (N, H, W): odd, even, non-square, batch 1 and 2


def _needs(fmt: str) -> None:
  """Skips with a reason when the runtime or converter of ``fmt`` is not installed."""
  wanted = {"stablehlo": (), "savedmodel": ("tensorflow",), "tflite": ("tensorflow",),
            "onnx": ("tensorflow", "tf2onnx", "onnx", "onnxruntime")}[fmt]
  for name in wanted:
    if importlib.util.find_spec(name) is None:
      pytest.skip(f"format {fmt} needs the {name} package")


def _check(net, artifact, *, sizes=SIZES, dtype="float32", reference=None):
  run = export.load(artifact.path)
  for n, h, w in sizes:
    x = RNG.random((n, h, w, net.channels), dtype=np.float32)
    got = run(x)
    want = (inference.upscale(net.module, net.variables, x, bucket=None)
            if reference is None else reference(x))
    assert got.shape == (n, net.scale * h, net.scale * w, net.channels)
    tol = export.TOLERANCE[dtype]
    assert np.abs(got - want).max() < tol, (artifact.format, (n, h, w))


@pytest.fixture(scope="module")
def espcn():
  return export.random_model("espcn", scale=3)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_every_format_any_size(tmp_path, espcn, fmt):
  _needs(fmt)
  art = export.export(espcn, tmp_path / f"espcn{export.SUFFIX[fmt]}", format=fmt)
  _check(espcn, art)
  meta = export.read_metadata(art.path)
  assert meta == json.loads(json.dumps(art.metadata))
  assert (meta["scale"], meta["format"], meta["input"]["channel_order"]) == (3, fmt, "Y")
  assert meta["input"]["range"] == [0.0, 1.0] and meta["dynamic"] == ["N", "H", "W"]
  assert art.size_bytes > 0


def test_pads_and_crops_to_the_models_multiple(tmp_path):
  # RRDBNet x2 with pixel-unshuffle needs even sizes; the artifact pads odd ones itself.
  net = export.random_model("rrdbnet", scale=2, num_feat=8, num_block=1, num_grow_ch=4,
                            unshuffle=2)
  assert export.size_multiple(net.module, net.variables, channels=3) == 2
  art = export.export(net, tmp_path / "rrdb.stablehlo", format="stablehlo")
  assert art.metadata["size_multiple"] == 2

  def padded(x):  # symmetric reflection to even sizes, then crop: what the artifact does
    h, w = x.shape[1:3]
    xp = np.concatenate([x, x[:, ::-1]], axis=1)[:, :h + h % 2]
    xp = np.concatenate([xp, xp[:, :, ::-1]], axis=2)[:, :, :w + w % 2]
    y = inference.upscale(net.module, net.variables, xp, bucket=None)
    return y[:, :2 * h, :2 * w]

  _check(net, art, reference=padded)


def test_bicubic_inside_traces_with_symbolic_sizes(tmp_path):
  # SRCNN's MATLAB bicubic upscale becomes a polyphase filter with the same borders.
  net = export.random_model("srcnn", scale=3)
  art = export.export(net, tmp_path / "srcnn.stablehlo", format="stablehlo")
  _check(net, art, sizes=((1, 5, 8), (1, 11, 3)))


# ----------------------------------------------- models whose pads depend on the image size


@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_border_extension_by_slices_equals_the_index_form(mode):
  # Real-CUGAN / waifu2x extend the image with rows computed from its size; under export the
  # same rows come from slices (any n >= 1, several bounces when n < pad).
  from jaxsr.models import realcugan  # pylint: disable=g-import-not-at-top
  x = RNG.random((1, 40, 2, 1), dtype=np.float32)
  for pad, align in [(18, 2), (28, 4), (7, 1), (0, 8)]:
    for n in (1, 2, 3, 5, 8, 19, 30):
      want = x[:, realcugan.border_index(-(-n // align) * align + 2 * pad, pad, n, mode)]
      got = np.asarray(realcugan.extend_axis(x[:, :n], 1, pad=pad, align=align, mode=mode))
      np.testing.assert_array_equal(got, want, err_msg=f"{pad} {align} {n}")


def test_window_mask_by_broadcasting_equals_numpy():
  from jaxsr.models import swinir  # pylint: disable=g-import-not-at-top
  for ws, shift in ((4, 2), (8, 4)):
    for rows, cols in ((1, 1), (1, 3), (2, 2), (3, 1)):
      np.testing.assert_array_equal(np.asarray(swinir.window_mask(rows, cols, ws, shift)),
                                    swinir.shifted_window_mask(rows * ws, cols * ws, ws, shift))


def test_bilinear_by_fixed_taps_equals_resize():
  import jax  # pylint: disable=g-import-not-at-top
  for s in (2, 3, 4):
    x = RNG.random((2, 3, 5, 3), dtype=np.float32)
    want = jax.image.resize(x, (2, 3 * s, 5 * s, 3), "bilinear")
    got = export._bilinear_axis(export._bilinear_axis(x, s, 1), s, 2)  # pylint: disable=protected-access
    assert np.abs(np.asarray(got) - np.asarray(want)).max() < 1e-6


# One cheap format per family by default (the whole matrix is slow, below): the artifact on
# two sizes equals model.apply at the exact size.
# Real-CUGAN's cascade compiles slowly: one size (batch 2, odd) by default, two when slow.
_SIZE_DEPENDENT = [
    ("realcugan", 2, dict(num_feat=8), "stablehlo", ((2, 5, 7),)),
    ("waifu2x_upconv7", 2, dict(features=(4, 4, 4, 4, 4, 4)), "tflite", ((1, 5, 7), (2, 6, 3))),
    ("swinir_light", 2, dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4),
     "stablehlo", ((1, 5, 7), (2, 6, 3))),
]


@pytest.mark.parametrize("name, scale, overrides, fmt, sizes", _SIZE_DEPENDENT,
                         ids=[f"{c[0]}-{c[3]}" for c in _SIZE_DEPENDENT])
def test_size_dependent_pads_export(tmp_path, name, scale, overrides, fmt, sizes):
  _needs(fmt)
  net = export.random_model(name, scale=scale, **overrides)
  art = export.export(net, tmp_path / f"{name}{export.SUFFIX[fmt]}", format=fmt)
  assert art.metadata["size_multiple"] == 1  # the model pads itself, as in jaxsr
  _check(net, art, sizes=sizes)


def test_swinir_to_onnx_is_refused_in_one_line(tmp_path):
  net = export.random_model("swinir_light", scale=2, embed_dim=8, depths=(2,), num_heads=(2,),
                            window_size=4)
  with pytest.raises(InputError, match="format onnx cannot hold SwinIR's window-attention") as e:
    export.export(net, tmp_path / "s.onnx", format="onnx")
  assert e.value.field == "format" and len(str(e.value).splitlines()) == 1
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_within_stated_tolerance(tmp_path, espcn, dtype):
  art = export.export(espcn, tmp_path / "e.stablehlo", format="stablehlo", dtype=dtype)
  assert art.metadata["compute_dtype"] == dtype
  _check(espcn, art, dtype=dtype)


def test_library_errors(tmp_path, espcn):
  with pytest.raises(InputError, match="unknown format 'pt'") as e:
    export.export(espcn, tmp_path / "a", format="pt")
  assert e.value.field == "format"
  with pytest.raises(InputError, match="unknown dtype") as e:
    export.export(espcn, tmp_path / "a", format="onnx", dtype="int8")
  target = tmp_path / "a.stablehlo"
  target.write_bytes(b"old")
  with pytest.raises(InputError, match="already exists") as e:
    export.export(espcn, target, format="stablehlo")
  assert e.value.field == "output" and target.read_bytes() == b"old"
  export.export(espcn, target, format="stablehlo", overwrite=True)
  assert export.read_metadata(target)["model"] == "espcn"


def _checkpoint(directory: pathlib.Path) -> convert.Imported:
  imp = convert.import_state_dict(factories.fsrcnn_pytorch_state_dict(RNG), scale=2)
  imp.save(directory)
  return imp


def test_cli_export_prints_the_convention(tmp_path, capsys):
  ckpt = tmp_path / "ck"
  _checkpoint(ckpt)
  out = tmp_path / "m.stablehlo"
  assert cli.main(["export", "--checkpoint", str(ckpt), "--output", str(out),
                   "--format", "stablehlo"]) == 0
  text = capsys.readouterr().out
  assert "fsrcnn x2" in text and "float32 in [0, 1]" in text and "MATLAB rgb2ycbcr" in text
  meta = export.read_metadata(out)
  assert meta["luma"] == "matlab" and meta["input"]["channels"] == 1
  # The same file again: refused without --overwrite, in one line, exit 2.
  assert cli.main(["export", "--checkpoint", str(ckpt), "--output", str(out),
                   "--format", "stablehlo"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "--output" in err[0] and "--overwrite" in err[0]


@pytest.mark.parametrize("extra, message", [
    (["--format", "torchscript"], "--format: unknown format 'torchscript'"),
    (["--format", "onnx", "--dtype", "int8"], "--dtype: unknown dtype 'int8'"),
])
def test_cli_bad_options_one_line(tmp_path, capsys, extra, message):
  args = ["export", "--checkpoint", str(tmp_path), "--output", str(tmp_path / "x"), *extra]
  assert cli.main(args) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [f"jaxsr: error: {message}; one of " + err[0].split("; one of ")[1]]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write to read-only folders")
def test_cli_unwritable_output_one_line(tmp_path, capsys):
  ckpt = tmp_path / "ck"
  _checkpoint(ckpt)
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  try:
    assert cli.main(["export", "--checkpoint", str(ckpt), "--output", str(locked / "m.onnx"),
                     "--format", "stablehlo"]) == 2
  finally:
    locked.chmod(0o700)
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "cannot write" in err[0]


# --------------------------------------------------------------------------- slow: the zoo

_TINY = {
    "srcnn": {}, "fsrcnn": {}, "espcn": {}, "vdsr": {},
    "edsr": dict(num_feat=16, num_block=2),
    "rcan": dict(num_feat=16, num_block=2, num_group=2, reduction=4),
    "msrresnet": dict(num_feat=16, num_block=2),
    "rrdbnet": dict(num_feat=16, num_block=1, num_grow_ch=8),
    "srvgg_compact": {},
}


_SWIN = dict(embed_dim=12, depths=(2, 2), num_heads=(2, 2), window_size=4, num_feat=8)
# (name, scale, overrides): the size-dependent families at each of their scales / variants.
_TINY_SIZE_DEPENDENT = [
    ("realcugan", 2, dict(num_feat=16)), ("realcugan", 3, dict(num_feat=16)),
    ("realcugan", 4, dict(num_feat=16)), ("realcugan", 2, dict(num_feat=16, pro=True)),
    ("waifu2x_cunet", 1, dict(num_feat=16)), ("waifu2x_cunet", 2, dict(num_feat=16)),
    ("waifu2x_upconv7", 2, dict(features=(8, 8, 8, 8, 8, 8))),
    ("swinir", 3, _SWIN), ("swinir_light", 4, dict(_SWIN, num_feat=64)),
    ("swinir_real", 4, _SWIN),
]


def _families() -> list[tuple[str, int, dict]]:
  from jaxsr import models  # pylint: disable=g-import-not-at-top
  known = set(models.list_models())
  cases = [(name, 2 if name in ("vdsr", "rcan") else 4, _TINY[name]) for name in _TINY]
  return [c for c in cases + _TINY_SIZE_DEPENDENT if c[0] in known]


# SwinIR -> ONNX: see README "Deploy" (tf2onnx mistranslates the reshapes around the
# attention's matmuls with symbolic window counts); refused in one line.
_REFUSED = {("swinir", "onnx")}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", export.FORMATS)
@pytest.mark.parametrize("name, scale, overrides", _families(),
                         ids=[f"{c[0]}x{c[1]}{'-pro' if c[2].get('pro') else ''}"
                              for c in _families()])
def test_zoo_family_every_format(tmp_path, name, scale, overrides, fmt):
  _needs(fmt)
  net = export.random_model(name, scale=scale, **overrides)
  target = tmp_path / f"{name}{export.SUFFIX[fmt]}"
  if (name.split("_")[0], fmt) in _REFUSED:
    with pytest.raises(InputError, match=f"format {fmt} cannot hold") as e:
      export.export(net, target, format=fmt)
    assert len(str(e.value).splitlines()) == 1
    return
  art = export.export(net, target, format=fmt)
  _check(net, art, sizes=((1, 6, 9), (2, 11, 4)))
