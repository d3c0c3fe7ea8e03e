"""SwinIR (jaxsr.models.swinir) and its import (official / BasicSR .pth, .safetensors).

Default tests use tiny configurations (embed 12, 1-2 blocks per group, window 4, 13x18 px) and
state dicts built here with numpy in the official key layout. Tests marked ``oracle`` compare
with spandrel's PyTorch SwinIR (``spandrel/architectures/SwinIR/__arch/SwinIR.py``, loaded by
path under stub parent packages because ``import spandrel`` needs a working torchvision); they
skip when torch or spandrel is absent. The papers' configurations are only counted (abstract
evaluation), never run.
"""

from __future__ import annotations

import json
import math
import pathlib
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import cli
from jaxsr import convert
from jaxsr import inference
from jaxsr import models
from jaxsr.convert import pytorch as pt
from jaxsr.convert import safetensors_io
from jaxsr.errors import InputError
from jaxsr.models import swinir

import oracle  # tests/oracle.py

# ----------------------------------------------------------------------------
# A numpy state dict in the official layout (keys and shapes of network_swinir.py).


def swinir_state_dict(rng, *, scale=2, upsampler="pixelshuffle", resi="1conv", embed_dim=12,
                      depths=(2, 1), num_heads=(3, 2), window_size=4, mlp_ratio=2.,
                      num_feat=8, channels=3, img_size=16) -> dict[str, np.ndarray]:
  sd: dict[str, np.ndarray] = {}
  r = lambda *shape: rng.normal(0, 0.1, shape).astype(np.float32)  # noqa: E731

  def conv(key, cout, cin, k=3):
    sd[f"{key}.weight"], sd[f"{key}.bias"] = r(cout, cin, k, k), r(cout)

  def lin(key, cout, cin):
    sd[f"{key}.weight"], sd[f"{key}.bias"] = r(cout, cin), r(cout)

  def norm(key, c):
    sd[f"{key}.weight"], sd[f"{key}.bias"] = 1 + r(c), r(c)

  def resi_conv(key, c):
    if resi == "1conv":
      conv(key, c, c)
    else:
      conv(f"{key}.0", c // 4, c)
      conv(f"{key}.2", c // 4, c // 4, 1)
      conv(f"{key}.4", c, c // 4)

  d, ws = embed_dim, window_size
  conv("conv_first", d, channels)
  norm("patch_embed.norm", d)
  for i, (depth, heads) in enumerate(zip(depths, num_heads)):
    for j in range(depth):
      k = f"layers.{i}.residual_group.blocks.{j}"
      norm(f"{k}.norm1", d)
      sd[f"{k}.attn.relative_position_bias_table"] = r((2 * ws - 1) ** 2, heads)
      sd[f"{k}.attn.relative_position_index"] = swinir.relative_position_index(ws)
      lin(f"{k}.attn.qkv", 3 * d, d)
      lin(f"{k}.attn.proj", d, d)
      norm(f"{k}.norm2", d)
      lin(f"{k}.mlp.fc1", int(d * mlp_ratio), d)
      lin(f"{k}.mlp.fc2", d, int(d * mlp_ratio))
      if j % 2:
        sd[f"{k}.attn_mask"] = swinir.shifted_window_mask(img_size, img_size, ws, ws // 2)
    resi_conv(f"layers.{i}.conv", d)
  norm("norm", d)
  resi_conv("conv_after_body", d)
  if upsampler == "pixelshuffledirect":
    conv("upsample.0", channels * scale * scale, d)
    return sd
  conv("conv_before_upsample.0", num_feat, d)
  if upsampler == "pixelshuffle":
    stages = models.common.upsample_stages(scale)
    for i, s in enumerate(stages):
      conv(f"upsample.{2 * i}", num_feat * s * s, num_feat)
  else:
    for k in range(1, int(math.log2(scale)) + 1):
      conv(f"conv_up{k}", num_feat, num_feat)
    conv("conv_hr", num_feat, num_feat)
  conv("conv_last", channels, num_feat)
  return sd


def write_safetensors(path: pathlib.Path, sd: dict[str, np.ndarray]) -> pathlib.Path:
  """A minimal safetensors writer (F32 / I64), independent of the reader under test."""
  header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
  for key, a in sd.items():
    a = np.ascontiguousarray(a)
    dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
    raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
    header[key] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset,
                                                                            offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
  text = json.dumps(header).encode()
  text += b" " * ((-len(text)) % 8)
  path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
  return path


# ----------------------------------------------------------------------------
# The model.


def _tiny(scale=3, upsampler="pixelshuffle"):
  """A tiny SwinIR and random variables, via the importer (compiling ``model.init``'s random
  initialisers costs minutes on a loaded 2-core CPU; the importer only evaluates shapes)."""
  sd = swinir_state_dict(np.random.default_rng(0), scale=scale, upsampler=upsampler)
  imp = convert.import_state_dict(sd)
  return imp.module, imp.variables


def test_any_input_size():
  model, variables = _tiny()
  # Smaller than a window (13x18, not a multiple of it: the bucketing test and the oracle).
  x = jax.random.uniform(jax.random.key(0), (2, 3, 5, 3))
  y = jax.jit(model.apply)(variables, x)
  assert y.shape == (2, 9, 15, 3)
  assert bool(jnp.all(jnp.isfinite(y)))


def test_buffers_derived_from_the_config():
  ws = 4
  index = swinir.relative_position_index(ws)
  assert index.shape == (16, 16) and index.min() == 0 and index.max() == (2 * ws - 1) ** 2 - 1
  for q, k in [(0, 0), (5, 10), (15, 0)]:  # row (dy + ws - 1) * (2ws - 1) + (dx + ws - 1)
    dy, dx = q // ws - k // ws, q % ws - k % ws
    assert index[q, k] == (dy + ws - 1) * (2 * ws - 1) + dx + ws - 1
  mask = swinir.shifted_window_mask(8, 8, ws, 2)
  assert mask.shape == (4, 16, 16)
  assert not mask[0].any()  # the top-left window holds one region only
  assert (mask[3] != 0).any() and set(np.unique(mask)) == {0., -100.}


def test_runs_at_exact_sizes_whatever_the_bucket_and_radius_infinite():
  model, variables = _tiny()
  x = np.random.default_rng(0).random((13, 18, 3), np.float32)
  assert inference.needs_exact_sizes(model)
  exact = inference.upscale(model, variables, x, bucket=None)  # the model as it is
  assert exact.shape == (39, 54, 3) and np.isfinite(exact).all()
  bucketed = inference.upscale(model, variables, x, bucket=16)  # padding would change it
  np.testing.assert_array_equal(bucketed, exact)
  assert inference.receptive_radius(model) == math.inf


# Parameters of the papers' configurations (abstract evaluation; nothing runs). Ours count the
# relative-position bias tables (225 x 6 per Swin block); the paper's lightweight figures
# (878K / 886K / 897K) do not: 910,152 - 24 * 1350 = 877,752.
PAPER_COUNTS = [("swinir", 2, 11_752_487), ("swinir", 3, 11_937_127),
                ("swinir", 4, 11_900_199), ("swinir_light", 2, 910_152),
                ("swinir_light", 3, 918_267), ("swinir_light", 4, 929_628),
                ("swinir_real", 4, 11_715_559)]


@pytest.mark.parametrize("name,scale,count", PAPER_COUNTS)
def test_registry_parameter_counts(name, scale, count):
  model = models.get_model(name, scale=scale)
  x = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
  assert models.count_params(models.registry.abstract_variables(model, x)) == count
  if name == "swinir_light":
    tables = sum(model.depths) * (2 * model.window_size - 1) ** 2 * model.num_heads[0]
    assert round((count - tables) / 1000) == {2: 878, 3: 886, 4: 897}[scale]


# ----------------------------------------------------------------------------
# Import.


CASES = [("pixelshuffle", 2, "1conv", "swinir"), ("pixelshuffle", 3, "3conv", "swinir"),
         ("pixelshuffledirect", 4, "1conv", "swinir_light"),
         ("nearest+conv", 4, "1conv", "swinir_real")]


@pytest.mark.parametrize("upsampler,scale,resi,name", CASES)
def test_config_read_from_the_weights(upsampler, scale, resi, name):
  sd = swinir_state_dict(np.random.default_rng(0), scale=scale, upsampler=upsampler, resi=resi)
  assert pt.detect_family(sd) == "swinir"
  imp = convert.import_state_dict(sd)
  assert (imp.name, imp.scale) == (name, scale)
  module = imp.module
  assert (module.embed_dim, module.depths, module.num_heads, module.window_size,
          module.upsampler, module.resi_connection) == (12, (2, 1), (3, 2), 4, upsampler, resi)
  table = imp.variables["params"]["layers_0"]["blocks_1"]["attn"]["relative_position_bias_table"]
  np.testing.assert_array_equal(
      table, sd["layers.0.residual_group.blocks.1.attn.relative_position_bias_table"])
  y = jax.eval_shape(module.apply, imp.variables, jnp.zeros((1, 5, 7, 3)))
  assert y.shape == (1, 5 * scale, 7 * scale, 3)


def test_buffers_are_checked_not_trusted():
  sd = swinir_state_dict(np.random.default_rng(0))
  bad = dict(sd)
  key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
  bad[key] = bad[key][::-1].copy()
  with pytest.raises(InputError, match="not the relative position index of a 4x4 window"):
    convert.import_state_dict(bad)
  bad = dict(sd)
  key = "layers.0.residual_group.blocks.1.attn_mask"
  bad[key] = np.zeros_like(bad[key])
  with pytest.raises(InputError, match="not the shifted-window attention mask"):
    convert.import_state_dict(bad)
  bad = dict(sd)
  del bad["layers.1.residual_group.blocks.0.attn.qkv.weight"]
  with pytest.raises(InputError, match=r"missing key 'layers\.1\.residual_group\.blocks\.0"
                                       r"\.attn\.qkv\.weight'"):
    convert.import_state_dict(bad)


def test_safetensors_equals_pth_and_wrappers(tmp_path):
  torch = pytest.importorskip("torch")
  sd = swinir_state_dict(np.random.default_rng(1), scale=4, upsampler="pixelshuffledirect")
  st = convert.load_weights(write_safetensors(tmp_path / "light.safetensors", sd))
  assert convert.detect_format(tmp_path / "light.safetensors") == "safetensors"
  tensors = {k: torch.from_numpy(v) for k, v in sd.items()}
  for wrapper in ("params", "params_ema", None):
    path = tmp_path / f"light_{wrapper}.pth"
    torch.save({wrapper: tensors} if wrapper else tensors, path)
    imp = convert.load_weights(path)
    assert (imp.name, imp.scale, imp.overrides) == (st.name, st.scale, st.overrides)
    jax.tree.map(np.testing.assert_array_equal, imp.variables, st.variables)


def test_safetensors_reader_matches_the_package(tmp_path):
  st_numpy = pytest.importorskip("safetensors.numpy")
  sd = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(4, dtype=np.int64),
        "c": np.float16([1.5, -2.]), "empty": np.zeros((0, 3), np.float32)}
  st_numpy.save_file(sd, str(tmp_path / "pkg.safetensors"))
  got = safetensors_io.read_safetensors(tmp_path / "pkg.safetensors")
  want = st_numpy.load_file(str(tmp_path / "pkg.safetensors"))
  assert set(got) == set(want)
  for k in want:
    assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
    np.testing.assert_array_equal(got[k], want[k])


def test_corrupt_safetensors_one_line(tmp_path):
  good = write_safetensors(tmp_path / "good.safetensors", {"w": np.ones(4, np.float32)})
  raw = good.read_bytes()
  cases = {"truncated": (raw[:-3], "outside the .*data buffer"),
           "header": (struct.pack("<Q", 1 << 40) + raw[8:], "corrupt safetensors file"),
           "json": (raw[:8] + b"{" + b"x" * (len(raw) - 9), "corrupt safetensors header")}
  for name, (data, match) in cases.items():
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    with pytest.raises(InputError, match=match) as info:
      convert.load_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cli_convert_without_model(tmp_path, capsys):
  sd = swinir_state_dict(np.random.default_rng(2), scale=2, upsampler="nearest+conv")
  path = write_safetensors(tmp_path / "real.safetensors", sd)
  assert cli.main(["convert", str(path), "--output", str(tmp_path / "ckpt")]) == 0
  assert "swinir_real x2" in capsys.readouterr().out


# Unsupported architectures that share SwinIR's key names are named, not mis-imported.
LOOKALIKES = {
    "HAT": ["layers.0.residual_group.blocks.0.conv_block.cab.0.weight", "conv_after_body.weight",
            "relative_position_index_SA"],
    "Swin2SR": ["layers.0.residual_group.blocks.0.attn.logit_scale",
                "layers.0.residual_group.blocks.0.attn.cpb_mlp.0.weight"],
    "DAT": ["before_RG.1.weight", "layers.0.blocks.0.ffn.sg.conv.weight",
            "conv_after_body.weight"],
    "OmniSR": ["residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "input.weight"],
    "SPAN": ["conv_1.sk.weight", "block_1.c1_r.sk.weight"],
}


@pytest.mark.parametrize("family", sorted(LOOKALIKES))
def test_unsupported_architecture_says_what_it_looks_like(family):
  sd = {k: np.zeros((4, 4), np.float32) for k in LOOKALIKES[family]}
  sd.update({"conv_first.weight": np.zeros((4, 3, 3, 3), np.float32)})
  with pytest.raises(InputError, match=rf"unsupported architecture: looks like {family} "
                                       rf"\(not supported\)"):
    convert.import_state_dict(sd, scale=4)


def test_swinir_without_upsampler_is_named():
  sd = swinir_state_dict(np.random.default_rng(0))
  for k in [k for k in sd if k.startswith(("upsample.", "conv_before_upsample."))]:
    del sd[k]
  with pytest.raises(InputError, match="looks like SwinIR for denoising/JPEG"):
    convert.import_state_dict(sd)


# ----------------------------------------------------------------------------
# Exactness against spandrel's PyTorch SwinIR (oracle).


def _spandrel_swinir():
  """spandrel's SwinIR module (loaded by path, ``tests/oracle.py``), or skip."""
  torch = pytest.importorskip("torch")
  module = oracle.load_spandrel_swinir()
  if module is None:
    pytest.skip("spandrel is not installed (the SwinIR oracle: pip install spandrel --no-deps)")
  return torch, module


_SLOW = pytest.mark.slow
ORACLE = [("pixelshuffle", 2, "1conv", 4, 16), ("pixelshuffledirect", 3, "1conv", 4, 16),
          ("nearest+conv", 4, "3conv", 4, 16),
          pytest.param("pixelshuffle", 3, "3conv", 4, 16, marks=_SLOW),
          pytest.param("pixelshuffle", 4, "1conv", 8, 24, marks=_SLOW),
          pytest.param("pixelshuffledirect", 4, "3conv", 8, 24, marks=_SLOW),
          pytest.param("nearest+conv", 2, "1conv", 4, 16, marks=_SLOW)]


@pytest.mark.oracle
@pytest.mark.parametrize("upsampler,scale,resi,ws,img", ORACLE)
def test_matches_spandrel(tmp_path, upsampler, scale, resi, ws, img):
  torch, arch = _spandrel_swinir()
  torch.manual_seed(0)
  dim = 24 if ws == 8 else 12
  net = arch.SwinIR(img_size=img, embed_dim=dim, depths=[2, 1], num_heads=[3, 2],
                    window_size=ws, mlp_ratio=2., upscale=scale, upsampler=upsampler,
                    resi_connection=resi, in_chans=3).eval()
  rng = np.random.default_rng(0)
  with torch.no_grad():  # non-trivial norms, biases and position tables
    for _, p in net.named_parameters():
      p.add_(torch.from_numpy(rng.normal(0, 0.05, tuple(p.shape)).astype(np.float32)))
  tensors = net.state_dict()
  path = tmp_path / "net.pth"
  torch.save({"params_ema": tensors}, path)
  imp = convert.load_weights(path)
  assert imp.scale == scale and imp.module.upsampler == upsampler
  write_safetensors(tmp_path / "net.safetensors",
                    {k: v.numpy() for k, v in tensors.items()})
  st = convert.load_weights(tmp_path / "net.safetensors")
  jax.tree.map(np.testing.assert_array_equal, imp.variables, st.variables)
  for h, w in [(13, 18)] + ([(img, img)] if ws == 8 else []):  # padded; the training size
    x = rng.random((1, 3, h, w), dtype=np.float32)
    with torch.no_grad():
      want = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    with jax.default_matmul_precision("highest"):
      got = np.asarray(jax.jit(imp.module.apply)(imp.variables, x.transpose(0, 2, 3, 1)))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.oracle
@pytest.mark.parametrize("name,scale,count", PAPER_COUNTS)
def test_parameter_counts_match_spandrel(name, scale, count):
  torch, arch = _spandrel_swinir()
  del torch
  m = models.get_model(name, scale=scale)
  net = arch.SwinIR(img_size=64, embed_dim=m.embed_dim, depths=list(m.depths),
                    num_heads=list(m.num_heads), window_size=m.window_size,
                    mlp_ratio=m.mlp_ratio, upscale=scale, upsampler=m.upsampler,
                    resi_connection=m.resi_connection)
  assert sum(p.numel() for p in net.parameters()) == count
