"""Importers of published weights (jaxsr.convert) and eval.py --weights/--checkpoint.

Tests marked with ``pytest.importorskip('torch')`` compare with PyTorch forward passes of small,
faithful re-implementations of BasicSR's architectures (same key names, reduced depth); CI does
not install torch, so they skip there. Tests on ../shared files skip without them.
"""

from __future__ import annotations

import math
import os
import pathlib
import pickle
import zipfile

import jax
import numpy as np
import pytest

from conftest import shared_path
from jaxsr import checkpoint
from jaxsr import convert
from jaxsr import inference
from jaxsr.errors import InputError

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------
# Safety: nothing in a weights file runs.


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _evil_files(tmp_path: pathlib.Path, marker: pathlib.Path) -> list[pathlib.Path]:
  payload = pickle.dumps({"conv_first.weight": _Evil(str(marker))}, protocol=2)
  legacy = tmp_path / "evil_legacy.pth"
  legacy.write_bytes(payload)  # a bare pickle: what torch's legacy loader reads first
  archive = tmp_path / "evil_zip.pth"
  with zipfile.ZipFile(archive, "w") as zf:
    zf.writestr("archive/data.pkl", payload)
    zf.writestr("archive/version", "3\n")
  return [legacy, archive]


def test_code_in_a_pickle_is_refused_and_not_run(tmp_path):
  marker = tmp_path / "pwned"
  for path in _evil_files(tmp_path, marker):
    with pytest.raises(InputError, match=r"refusing to load.*(posix|nt)\.system"):
      convert.load_weights(path)
    with pytest.raises(InputError, match="refusing to load"):
      convert.read_state_dict(path)
  assert not marker.exists()
  # The payload is live: plain pickle would have run it.
  pickle.loads(pickle.dumps(_Evil(str(marker))))
  assert marker.exists()


def test_eval_py_refuses_code_with_one_line_error(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  marker = tmp_path / "pwned"
  path = _evil_files(tmp_path, marker)[1]
  repo = pathlib.Path(__file__).resolve().parents[1]
  proc = subprocess.run([sys.executable, str(repo / "eval.py"), "--model", "edsr", "--weights",
                         str(path), "--datasets", "embedded", "--scales", "2"],
                        capture_output=True, text=True, cwd=repo, timeout=120)
  assert proc.returncode == 2, proc.stderr
  err = [l for l in proc.stderr.splitlines() if l.startswith("eval.py: error:")]
  assert len(err) == 1 and "refusing to load" in err[0], proc.stderr
  assert "Traceback" not in proc.stderr
  assert not marker.exists()


def test_corrupt_and_unknown_files(tmp_path):
  bad = tmp_path / "bad.pth"
  bad.write_bytes(b"\x80\x02garbage")
  with pytest.raises(InputError, match="bad.pth"):
    convert.load_weights(bad)
  other = tmp_path / "weights.xyz"
  other.write_bytes(b"hello")
  with pytest.raises(InputError, match="unknown weights format"):
    convert.load_weights(other)
  with pytest.raises(InputError, match="no such weights file"):
    convert.load_weights(tmp_path / "missing.pth")


# ----------------------------------------------------------------------------
# Shape checks name the first key that does not fit (numpy state dicts; no torch needed).


def _fsrcnn_pytorch_sd(d=56, s=12, m=4, channels=1) -> dict[str, np.ndarray]:
  r = lambda *shape: RNG.normal(0, 0.1, shape).astype(np.float32)  # noqa: E731
  sd = {"first_part.0.weight": r(d, channels, 5, 5), "first_part.0.bias": r(d),
        "first_part.1.weight": r(d) + 0.25, "mid_part.0.weight": r(s, d, 1, 1),
        "mid_part.0.bias": r(s), "mid_part.1.weight": r(s) + 0.25}
  for i in range(m):
    sd[f"mid_part.{2 + 2 * i}.weight"] = r(s, s, 3, 3)
    sd[f"mid_part.{2 + 2 * i}.bias"] = r(s)
    sd[f"mid_part.{3 + 2 * i}.weight"] = r(s) + 0.25
  sd[f"mid_part.{2 + 2 * m}.weight"] = r(d, s, 1, 1)
  sd[f"mid_part.{2 + 2 * m}.bias"] = r(d)
  sd[f"mid_part.{3 + 2 * m}.weight"] = r(d) + 0.25
  sd["last_part.weight"] = r(d, channels, 9, 9)
  sd["last_part.bias"] = r(channels)
  return sd


def test_state_dict_shape_errors_name_the_key():
  sd = _fsrcnn_pytorch_sd()
  imp = convert.import_state_dict(sd, scale=3)
  assert (imp.name, imp.scale, imp.overrides) == ("fsrcnn", 3, {})
  assert convert.import_state_dict(_fsrcnn_pytorch_sd(32, 5, 1), scale=2).name == "fsrcnn_s"

  bad = dict(sd)
  bad["mid_part.4.weight"] = np.zeros((12, 11, 3, 3), np.float32)
  with pytest.raises(InputError, match=r"'mid_part\.4\.weight' has shape \(12, 11, 3, 3\).*"
                                       r"expects \(12, 12, 3, 3\)"):
    convert.import_state_dict(bad, scale=3)
  bad = dict(sd)
  bad["last_part.weight"] = np.zeros((56, 1, 7, 7), np.float32)
  with pytest.raises(InputError, match=r"'last_part\.weight'"):
    convert.import_state_dict(bad, scale=3)
  bad = dict(sd)
  del bad["mid_part.5.weight"]
  with pytest.raises(InputError, match=r"missing key 'mid_part\.5\.weight'"):
    convert.import_state_dict(bad, scale=3)
  bad = dict(sd, extra_thing=np.zeros(3, np.float32))
  with pytest.raises(InputError, match=r"unexpected key 'extra_thing'"):
    convert.import_state_dict(bad, scale=3)
  with pytest.raises(InputError, match="does not record its scale"):
    convert.import_state_dict(sd)
  with pytest.raises(InputError, match="not 'edsr'"):
    convert.import_state_dict(sd, scale=3, model="edsr")
  with pytest.raises(InputError, match="unrecognised state dict layout"):
    convert.import_state_dict({"foo.weight": np.zeros(3, np.float32)})


def test_srcnn_mat_roundtrip_and_errors(tmp_path):
  scipy_io = pytest.importorskip("scipy.io")
  w = {"weights_conv1": RNG.normal(size=(81, 64)), "biases_conv1": RNG.normal(size=(64, 1)),
       "weights_conv2": RNG.normal(size=(64, 25, 32)), "biases_conv2": RNG.normal(size=(32, 1)),
       "weights_conv3": RNG.normal(size=(32, 25)), "biases_conv3": RNG.normal(size=(1, 1))}
  path = tmp_path / "srcnn_x3.mat"
  scipy_io.savemat(path, w)
  imp = convert.load_weights(path)
  assert (imp.name, imp.scale, imp.overrides, imp.luma) == ("srcnn", 3, {}, "matlab")
  k1 = imp.variables["params"]["conv1"]["kernel"]
  # column-major: tap (row 1, column 2) of filter 5 is element 1 + 9 * 2.
  np.testing.assert_allclose(k1[1, 2, 0, 5], w["weights_conv1"][1 + 9 * 2, 5], rtol=1e-6)
  k2 = imp.variables["params"]["conv2"]["kernel"]
  np.testing.assert_allclose(k2[3, 1, 7, 4], w["weights_conv2"][7, 3 + 5 * 1, 4], rtol=1e-6)
  k3 = imp.variables["params"]["conv3"]["kernel"]
  np.testing.assert_allclose(k3[0, 4, 9, 0], w["weights_conv3"][9, 0 + 5 * 4], rtol=1e-6)
  w915 = dict(w, weights_conv2=RNG.normal(size=(64, 1, 32)))
  scipy_io.savemat(tmp_path / "m_x2.mat", w915)
  assert convert.load_weights(tmp_path / "m_x2.mat").name == "srcnn_915"
  bad = dict(w, biases_conv2=RNG.normal(size=(31, 1)))
  scipy_io.savemat(tmp_path / "bad_x3.mat", bad)
  with pytest.raises(InputError, match=r"'biases_conv2' has shape \(31, 1\).*expects \(32, 1\)"):
    convert.load_weights(tmp_path / "bad_x3.mat")
  scipy_io.savemat(tmp_path / "noscale.mat", w)
  with pytest.raises(InputError, match="does not record its scale"):
    convert.load_weights(tmp_path / "noscale.mat")
  assert convert.load_weights(tmp_path / "noscale.mat", scale=2).scale == 2
  with pytest.raises(InputError, match="cannot be imported as 'espcn'"):
    convert.load_weights(path, model="espcn")


def test_scale_from_filename():
  assert convert.scale_from_filename("srcnn_9-5-5_imagenet_x3.mat") == 3
  assert convert.scale_from_filename("FSRCNN-small_x2.pb") == 2
  assert convert.scale_from_filename("RealESRGAN_x4plus.pth") == 4
  assert convert.scale_from_filename("EDSR_Lx4_f256_b32_DIV2K_official.pth") is None  # 'Lx4'
  assert convert.scale_from_filename("model.pth") is None


def test_saved_checkpoint_loads_and_matches(tmp_path):
  imp = convert.import_state_dict(_fsrcnn_pytorch_sd(), scale=3)
  imp.save(tmp_path / "ckpt")
  module, variables, meta = checkpoint.load_model(tmp_path / "ckpt")
  assert module == imp.module
  assert meta["imported"]["format"] == "fsrcnn-pytorch-pth" and meta["imported"]["luma"] == "matlab"
  x = RNG.random((1, 13, 11, 1), np.float32)
  np.testing.assert_allclose(module.apply(variables, x), imp.module.apply(imp.variables, x),
                             atol=1e-6)


# ----------------------------------------------------------------------------
# PyTorch: the reader and BasicSR's layouts against torch forward passes.


def test_reader_matches_torch_load(tmp_path):
  torch = pytest.importorskip("torch")
  sd = {"w": torch.randn(4, 3, 3, 3), "h": torch.randn(5).half(), "t": torch.randn(6, 4).t(),
        "view": torch.randn(10)[2:7], "scalar": torch.tensor(3.5), "i": torch.arange(4)}
  for zip_format in (True, False):
    path = tmp_path / f"sd_{zip_format}.pth"
    torch.save({"params": sd}, path, _use_new_zipfile_serialization=zip_format)
    got = convert.read_state_dict(path)["params"]
    want = torch.load(path, weights_only=True, map_location="cpu")["params"]
    for k, v in want.items():
      np.testing.assert_array_equal(got[k], v.numpy())
      assert got[k].shape == tuple(v.shape)


def _torch_archs(torch):
  """Small faithful copies of BasicSR's archs (same module names -> same state-dict keys)."""
  nn, F = torch.nn, torch.nn.functional

  class ResidualBlockNoBN(nn.Module):

    def __init__(self, nf, res_scale=1.):
      super().__init__()
      self.res_scale = res_scale
      self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
      self.relu = nn.ReLU()

    def forward(self, x):
      return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale

  class Upsample(nn.Sequential):

    def __init__(self, scale, nf):
      m = []
      if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
          m += [nn.Conv2d(nf, 4 * nf, 3, 1, 1), nn.PixelShuffle(2)]
      else:
        m += [nn.Conv2d(nf, 9 * nf, 3, 1, 1), nn.PixelShuffle(3)]
      super().__init__(*m)

  mean = (0.4488, 0.4371, 0.4040)

  class EDSR(nn.Module):

    def __init__(self, scale, nf, nb, res_scale):
      super().__init__()
      self.mean = torch.Tensor(mean).view(1, 3, 1, 1)
      self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
      self.body = nn.Sequential(*[ResidualBlockNoBN(nf, res_scale) for _ in range(nb)])
      self.conv_after_body = nn.Conv2d(nf, nf, 3, 1, 1)
      self.upsample = Upsample(scale, nf)
      self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
      x = (x - self.mean) * 255.
      x = self.conv_first(x)
      res = self.conv_after_body(self.body(x)) + x
      return self.conv_last(self.upsample(res)) / 255. + self.mean

  class ChannelAttention(nn.Module):

    def __init__(self, nf, squeeze):
      super().__init__()
      self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(nf, nf // squeeze, 1),
                                     nn.ReLU(), nn.Conv2d(nf // squeeze, nf, 1), nn.Sigmoid())

    def forward(self, x):
      return x * self.attention(x)

  class RCAB(nn.Module):

    def __init__(self, nf, squeeze):
      super().__init__()
      self.rcab = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.ReLU(), nn.Conv2d(nf, nf, 3, 1, 1),
                                ChannelAttention(nf, squeeze))

    def forward(self, x):
      return self.rcab(x) + x

  class ResidualGroup(nn.Module):

    def __init__(self, nf, nb, squeeze):
      super().__init__()
      self.residual_group = nn.Sequential(*[RCAB(nf, squeeze) for _ in range(nb)])
      self.conv = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x):
      return self.conv(self.residual_group(x)) + x

  class RCAN(nn.Module):

    def __init__(self, scale, nf, ng, nb, squeeze):
      super().__init__()
      self.mean = torch.Tensor(mean).view(1, 3, 1, 1)
      self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
      self.body = nn.Sequential(*[ResidualGroup(nf, nb, squeeze) for _ in range(ng)])
      self.conv_after_body = nn.Conv2d(nf, nf, 3, 1, 1)
      self.upsample = Upsample(scale, nf)
      self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
      x = (x - self.mean) * 255.
      x = self.conv_first(x)
      res = self.conv_after_body(self.body(x)) + x
      return self.conv_last(self.upsample(res)) / 255. + self.mean

  class MSRResNet(nn.Module):

    def __init__(self, scale, nf, nb):
      super().__init__()
      self.scale = scale
      self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
      self.body = nn.Sequential(*[ResidualBlockNoBN(nf) for _ in range(nb)])
      if scale in (2, 3):
        self.upconv1 = nn.Conv2d(nf, nf * scale * scale, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(scale)
      else:
        self.upconv1 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
      self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
      self.lrelu = nn.LeakyReLU(0.1)

    def forward(self, x):
      out = self.body(self.lrelu(self.conv_first(x)))
      out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
      if self.scale == 4:
        out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
      out = self.conv_last(self.lrelu(self.conv_hr(out)))
      return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear",
                                 align_corners=False)

  class ResidualDenseBlock(nn.Module):

    def __init__(self, nf, gc):
      super().__init__()
      for i in range(1, 5):
        setattr(self, f"conv{i}", nn.Conv2d(nf + (i - 1) * gc, gc, 3, 1, 1))
      self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
      self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
      x1 = self.lrelu(self.conv1(x))
      x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
      x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
      x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
      return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x

  class RRDB(nn.Module):

    def __init__(self, nf, gc):
      super().__init__()
      self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(nf, gc) for _ in range(3))

    def forward(self, x):
      return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

  class RRDBNet(nn.Module):

    def __init__(self, nf, nb, gc):
      super().__init__()
      self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
      self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
      self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
      self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
      self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
      feat = self.conv_first(x)
      feat = feat + self.conv_body(self.body(feat))
      feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
      feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
      return self.conv_last(self.lrelu(self.conv_hr(feat)))

  class FSRCNN(nn.Module):  # yjn870/FSRCNN-pytorch models.py

    def __init__(self, scale, d=56, s=12, m=4):
      super().__init__()
      self.first_part = nn.Sequential(nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d))
      mid = [nn.Conv2d(d, s, 1), nn.PReLU(s)]
      for _ in range(m):
        mid += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
      mid += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
      self.mid_part = nn.Sequential(*mid)
      self.last_part = nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4,
                                          output_padding=scale - 1)

    def forward(self, x):
      return self.last_part(self.mid_part(self.first_part(x)))

  return dict(EDSR=EDSR, RCAN=RCAN, MSRResNet=MSRResNet, RRDBNet=RRDBNet, FSRCNN=FSRCNN)


_TORCH_CASES = [
    ("EDSR", dict(scale=2, nf=16, nb=2, res_scale=1.), "edsr_baseline", 2, {}),
    ("EDSR", dict(scale=3, nf=16, nb=2, res_scale=1.), "edsr_baseline", 3, {}),
    # EDSR proper scales residuals by 0.1 (not stored in the file): the registry's 'edsr'.
    ("EDSR", dict(scale=4, nf=16, nb=2, res_scale=0.1), "edsr", 4, {}),
    ("EDSR", dict(scale=2, nf=16, nb=2, res_scale=0.1), "edsr_baseline", 2, {"res_scale": 0.1}),
    ("RCAN", dict(scale=2, nf=16, ng=2, nb=2, squeeze=4), "rcan", 2, {}),
    ("RCAN", dict(scale=3, nf=16, ng=2, nb=2, squeeze=4), "rcan", 3, {}),
    ("MSRResNet", dict(scale=2, nf=16, nb=2), "msrresnet", 2, {}),
    ("MSRResNet", dict(scale=3, nf=16, nb=2), "msrresnet", 3, {}),
    ("MSRResNet", dict(scale=4, nf=16, nb=2), "msrresnet", 4, {}),
    ("RRDBNet", dict(nf=16, nb=2, gc=8), "rrdbnet", 4, {}),
    ("FSRCNN", dict(scale=2), "fsrcnn", 2, {}),
    ("FSRCNN", dict(scale=3), "fsrcnn", 3, {}),
    ("FSRCNN", dict(scale=4, d=32, s=5, m=1), "fsrcnn_s", 4, {}),
]


@pytest.mark.parametrize("arch,kwargs,family,scale,overrides", _TORCH_CASES,
                         ids=[f"{c[2]}-x{c[3]}-{i}" for i, c in enumerate(_TORCH_CASES)])
def test_pytorch_layouts_match_torch_forward(tmp_path, arch, kwargs, family, scale, overrides):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  net = _torch_archs(torch)[arch](**kwargs).eval()
  with torch.no_grad():  # non-trivial PReLU slopes and biases
    for name, p in net.named_parameters():
      if p.ndim == 1:
        p.copy_(torch.randn_like(p) * 0.1 + (0.25 if ".1." in name or "part.1" in name else 0))
  channels = 1 if arch == "FSRCNN" else 3
  x = np.random.default_rng(1).random((1, 11, 9, channels), np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  sd = net.state_dict()
  if arch == "FSRCNN":  # the shared files: legacy serialization, bare state dict
    path = tmp_path / f"fsrcnn_x{scale}.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
  else:  # BasicSR checkpoints: params_ema preferred over params
    path = tmp_path / "net.pth"
    decoy = {k: torch.zeros_like(v) for k, v in sd.items()}
    torch.save({"params": decoy, "params_ema": sd}, path)
  imp = convert.load_weights(path, model=family if arch != "FSRCNN" else None, **overrides)
  assert imp.name == family and imp.scale == scale
  with jax.default_matmul_precision("highest"):
    got = np.asarray(imp.module.apply(imp.variables, x))
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # Bucketed whole-image inference gives the same result.
  np.testing.assert_allclose(inference.upscale(imp.module, imp.variables, x[0]), want[0],
                             atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch,kwargs,family,scale,overrides", _TORCH_CASES,
                         ids=[f"{c[2]}-x{c[3]}-{i}" for i, c in enumerate(_TORCH_CASES)])
def test_every_layout_is_recognised_without_model(arch, kwargs, family, scale, overrides):
  """``jaxsr convert FILE`` needs no ``--model``: family, scale and sizes come from the file."""
  del overrides
  torch = pytest.importorskip("torch")
  from jaxsr.convert import pytorch as pt  # pylint: disable=g-import-not-at-top

  net = _torch_archs(torch)[arch](**kwargs)
  sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
  want = pt._family_of_name(family)  # pylint: disable=protected-access
  assert pt.detect_family(sd) == want
  imp = convert.import_state_dict(sd, scale=scale if arch == "FSRCNN" else None)
  assert imp.scale == scale and imp.name in pt.LAYOUTS[pt.FAMILIES.index(want)].names


def test_esrgan_original_key_names(tmp_path):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  net = _torch_archs(torch)["RRDBNet"](nf=8, nb=1, gc=4).eval()
  renames = [("body.", "RRDB_trunk."), (".rdb", ".RDB"), ("conv_body.", "trunk_conv."),
             ("conv_up1.", "upconv1."), ("conv_up2.", "upconv2."), ("conv_hr.", "HRconv.")]
  old = {}
  for k, v in net.state_dict().items():
    for a, b in renames:
      if k.startswith(a) or (a.startswith(".") and a in k):
        k = k.replace(a, b, 1)
    old[k] = v
  assert "RRDB_trunk.0.RDB1.conv1.weight" in old
  torch.save(old, tmp_path / "RRDB_ESRGAN_x4.pth")
  imp = convert.load_weights(tmp_path / "RRDB_ESRGAN_x4.pth")
  x = np.random.default_rng(1).random((1, 7, 6, 3), np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(imp.module.apply(imp.variables, x), want, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------
# The shared published files.


def _opencv_reference(path: pathlib.Path, x: np.ndarray) -> np.ndarray:
  """Runs the frozen graph itself in TensorFlow."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  graph = convert.opencv_pb.read_graph(path)

  def fn():
    return tf.compat.v1.import_graph_def(graph, input_map={"IteratorGetNext:0": tf.constant(x)},
                                         return_elements=["NHWC_output:0"])

  return tf.compat.v1.wrap_function(fn, [])()[0].numpy()


@pytest.mark.parametrize("name", ["FSRCNN", "FSRCNN-small", "ESPCN"])
def test_opencv_graphs_match_tensorflow(name):
  folder = shared_path("weights", "opencv_dnn_superres")
  expected_name = {"FSRCNN": "fsrcnn", "FSRCNN-small": "fsrcnn_s", "ESPCN": "espcn"}[name]
  x = np.random.default_rng(2).random((1, 23, 17, 1), np.float32)
  for scale in (2, 3, 4):
    path = folder / f"{name}_x{scale}.pb"
    imp = convert.load_weights(path)
    assert (imp.name, imp.scale, imp.luma) == (expected_name, scale, "opencv")
    want = _opencv_reference(path, x)
    with jax.default_matmul_precision("highest"):
      got = np.asarray(imp.module.apply(imp.variables, x))
    assert got.shape == want.shape == (1, 23 * scale, 17 * scale, 1)
    assert np.abs(got - want).max() < 1e-5
  with pytest.raises(InputError, match="x2, not x3"):
    convert.load_weights(folder / f"{name}_x2.pb", scale=3)
  with pytest.raises(InputError, match="not 'srcnn'"):
    convert.load_weights(folder / f"{name}_x2.pb", model="srcnn")


def test_srcnn_mat_equals_matlab_test_code():
  """The imported model equals SRCNN.m: imfilter(bicubic Y, K, 'same', 'replicate') x3 layers."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top
  path = shared_path("weights", "srcnn", "srcnn_9-5-5_imagenet_x3.mat")
  mat = convert.srcnn_mat.read_mat(path)
  lr = np.random.default_rng(3).random((14, 12), np.float64)
  im = imresize.imresize_np(lr, 3)
  w1, w2, w3 = mat["weights_conv1"], mat["weights_conv2"], mat["weights_conv3"]
  f1, f2, f3 = 9, 5, 5
  c1 = np.stack([np.maximum(ndimage.correlate(im, w1[:, o].reshape(f1, f1, order="F"),
                                              mode="nearest") + mat["biases_conv1"][o, 0], 0)
                 for o in range(64)])
  c2 = np.stack([np.maximum(sum(ndimage.correlate(c1[i], w2[i, :, o].reshape(f2, f2, order="F"),
                                                  mode="nearest") for i in range(64))
                            + mat["biases_conv2"][o, 0], 0) for o in range(32)])
  want = sum(ndimage.correlate(c2[i], w3[i, :].reshape(f3, f3, order="F"), mode="nearest")
             for i in range(32)) + mat["biases_conv3"][0, 0]
  imp = convert.load_weights(path)
  got = inference.upscale(imp.module, imp.variables, lr[..., None].astype(np.float32))[..., 0]
  assert np.abs(got - want).max() < 1e-5


def test_fsrcnn_pytorch_files_load():
  folder = shared_path("weights", "fsrcnn_pytorch")
  for scale in (2, 3, 4):
    imp = convert.load_weights(folder / f"fsrcnn_x{scale}.pth")
    assert (imp.name, imp.scale, imp.overrides, imp.format) == ("fsrcnn", scale, {},
                                                                "fsrcnn-pytorch-pth")


def _eval(tmp_path, **kw):
  from jaxsr.commands import evaluate as eval_script  # pylint: disable=g-import-not-at-top

  defaults = dict(model="bicubic", datasets="set5", scales=None, protocol=None,
                  data_dir=str(shared_path("data")), output_json=None)
  defaults.update(kw)
  return eval_script.run(**defaults)


@pytest.mark.parametrize("weights,scale,published", [
    # Measured: 36.6564 / 32.7488 / 30.4840 (9-5-5 x2/x3/x4), 32.3897 (9-1-5 x3).
    pytest.param("srcnn_9-1-5_91images_x3.mat", 3, 32.39),  # the cheapest: fast suite
    pytest.param("srcnn_9-5-5_imagenet_x2.mat", 2, 36.66, marks=pytest.mark.slow),
    pytest.param("srcnn_9-5-5_imagenet_x3.mat", 3, 32.75, marks=pytest.mark.slow),
    pytest.param("srcnn_9-5-5_imagenet_x4.mat", 4, 30.48, marks=pytest.mark.slow),
])
def test_srcnn_reproduces_published_set5(tmp_path, weights, scale, published):
  path = shared_path("weights", "srcnn", weights)
  (result,) = _eval(tmp_path, model="srcnn", weights=str(path))
  assert result["scale"] == scale and result["protocol"] == "y"
  assert abs(result["psnr"] - published) < 0.02, result["psnr"]


def test_eval_checkpoint_equals_weights(tmp_path):
  path = shared_path("weights", "opencv_dnn_superres", "ESPCN_x3.pb")
  convert.load_weights(path).save(tmp_path / "espcn")
  (a,) = _eval(tmp_path, model="espcn", weights=str(path), datasets="embedded", data_dir=None)
  (b,) = _eval(tmp_path, checkpoint=str(tmp_path / "espcn"), datasets="embedded", data_dir=None)
  assert a["scale"] == b["scale"] == 3 and a["protocol"] == b["protocol"] == "y"
  assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-6)
  with pytest.raises(InputError, match="x3 model"):
    _eval(tmp_path, checkpoint=str(tmp_path / "espcn"), scales="2", datasets="embedded",
          data_dir=None)
  with pytest.raises(InputError, match="protocol='y'"):
    _eval(tmp_path, checkpoint=str(tmp_path / "espcn"), protocol="rgb", datasets="embedded",
          data_dir=None)
  (c,) = _eval(tmp_path, weights=str(path), datasets="embedded", data_dir=None)  # no model
  assert c["psnr"] == a["psnr"]
  with pytest.raises(InputError, match="fsrcnn"):
    _eval(tmp_path, model="fsrcnn", weights=str(path), datasets="embedded", data_dir=None)
  with pytest.raises(InputError, match="no jaxsr checkpoint"):
    _eval(tmp_path, checkpoint=str(tmp_path / "nothing"), datasets="embedded", data_dir=None)


def test_fsrcnn_pytorch_files_match_torch_forward():
  torch = pytest.importorskip("torch")
  folder = shared_path("weights", "fsrcnn_pytorch")
  x = np.random.default_rng(4).random((1, 31, 27, 1), np.float32)
  for scale in (2, 3, 4):
    path = folder / f"fsrcnn_x{scale}.pth"
    net = _torch_archs(torch)["FSRCNN"](scale=scale).eval()
    net.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    with torch.no_grad():
      want = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    imp = convert.load_weights(path)
    with jax.default_matmul_precision("highest"):
      got = np.asarray(imp.module.apply(imp.variables, x))
    assert np.abs(got - want).max() < 1e-4
