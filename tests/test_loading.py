"""jaxsr.loading.load_model (checkpoints and weights files), InputError fields, and
eval_lib.write_results."""

from __future__ import annotations

import dataclasses
import json
import logging

import jax
import numpy as np
import pytest

from conftest import shared_path
import factories
from jaxsr import convert
from jaxsr import eval_lib
from jaxsr import loading
from jaxsr.errors import InputError

RNG = np.random.default_rng(0)


def _fsrcnn(scale: int) -> convert.Imported:
  """A small random FSRCNN(16, 4, 1) imported from an FSRCNN-pytorch state dict."""
  return convert.import_state_dict(factories.fsrcnn_pytorch_state_dict(RNG), scale=scale)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  """Two x2 checkpoints: the MATLAB-luma default and one recorded as OpenCV-luma."""
  root = tmp_path_factory.mktemp("ckpts")
  imp = _fsrcnn(2)
  imp.save(root / "matlab")
  dataclasses.replace(imp, luma="opencv").save(root / "opencv")
  return root, imp


def _raises(field, match, **kw) -> InputError:
  with pytest.raises(InputError, match=match) as info:
    loading.load_model(**kw)
  assert info.value.field == field, info.value
  return info.value


def test_checkpoint(checkpoints):
  root, imp = checkpoints
  got = loading.load_model(checkpoint=root / "matlab")
  assert (got.name, got.scale, got.format, got.luma, got.channels) == (
      "fsrcnn", 2, "checkpoint", "matlab", 1)
  assert got.source == str(root / "matlab") and got.meta["model"]["name"] == "fsrcnn"
  assert "step" in got.meta and got.meta["imported"]["format"] == "fsrcnn-pytorch-pth"
  assert type(got.module) is type(imp.module) and got.module.scale == 2
  jax.tree.map(np.testing.assert_array_equal, got.variables, imp.variables)
  x = RNG.random((1, 6, 5, 1), np.float32)
  np.testing.assert_array_equal(got.module.apply(got.variables, x),
                                imp.module.apply(imp.variables, x))
  assert loading.load_model(checkpoint=root / "matlab", scale=2).scale == 2
  assert loading.load_model(checkpoint=root / "opencv").luma == "opencv"
  with pytest.raises(dataclasses.FrozenInstanceError):
    got.scale = 3  # type: ignore[misc]


def test_checkpoint_errors_name_the_field(checkpoints, tmp_path):
  root, _ = checkpoints
  e = _raises("scale", r"x2 model, not x4", checkpoint=root / "matlab", scale=4)
  assert str(e).startswith("scale: ") and str(root / "matlab") in str(e)
  assert e.describe({"scale": "--scales"}).startswith("--scales: ")
  e = _raises("checkpoint", "no jaxsr checkpoint here", checkpoint=tmp_path)
  assert str(tmp_path) in str(e)
  assert "--" not in str(e)


def test_neither_or_both(checkpoints, tmp_path):
  root, _ = checkpoints
  e = _raises(None, "either a checkpoint .* or a weights file .*not both",
              checkpoint=root / "matlab", weights=tmp_path / "w.pth", model="fsrcnn")
  assert "--" not in str(e)
  e = _raises(None, "give a model", model="fsrcnn")
  assert "--" not in str(e)


def test_weights_file(caplog):
  path = shared_path("weights", "fsrcnn_pytorch", "fsrcnn_x3.pth")
  got = loading.load_model(weights=path, model="fsrcnn")
  assert (got.name, got.scale, got.format, got.luma, got.module.scale) == (
      "fsrcnn", 3, "fsrcnn-pytorch-pth", "matlab", 3)
  assert got.meta["model"] == {"name": "fsrcnn", "scale": 3, "overrides": {}}
  assert got.meta["imported"]["format"] == "fsrcnn-pytorch-pth"
  assert not [n for n in got.notes if "trained for" in n]
  # A scale-free file at another scale than its name's: refused, naming both scales...
  e = _raises("scale", r"weights for x3 \(its file name says x3\), not x2", weights=path,
              model="fsrcnn", scale=2)
  assert str(path) in str(e) and "force the scale" in str(e)
  # ...unless forced: built at x2, with a warning and a note.
  with caplog.at_level(logging.WARNING, logger="jaxsr.loading"):
    other = loading.load_model(weights=path, model="fsrcnn", scale=2, force_scale=True)
  assert other.scale == 2 == other.module.scale
  assert "trained for x3 used at x2" in caplog.text
  assert any("trained for x3 used at x2" in n for n in other.notes)
  assert other.meta["model"]["scale"] == 2


def test_checkpoint_scale_forced_only_where_parameters_fit(checkpoints, tmp_path):
  root, imp = checkpoints
  e = _raises("scale", r"x2 model, not x3 \(its recorded scale\)", checkpoint=root / "matlab",
              scale=3)
  assert "force the scale" in str(e)
  forced = loading.load_model(checkpoint=root / "matlab", scale=3, force_scale=True)
  assert forced.scale == 3 == forced.module.scale
  assert any("used at x3 (scale forced)" in n for n in forced.notes)
  jax.tree.map(np.testing.assert_array_equal, forced.variables, imp.variables)
  # ESPCN's pixel shuffle fixes the scale (its last conv has scale**2 channels): no forcing.
  from jaxsr import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from jaxsr import models  # pylint: disable=g-import-not-at-top
  module = models.get_model("espcn", scale=2)
  variables = module.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))
  checkpoint_lib.save_model(tmp_path / "espcn", dict(variables), model="espcn", scale=2)
  for force in (False, True):
    _raises("scale", r"x2 model, not x3 \(its architecture fixes the scale",
                checkpoint=tmp_path / "espcn", scale=3, force_scale=force)


def test_structural_scale_mismatch_is_not_forcible():
  path = shared_path("weights", "opencv_dnn_superres", "ESPCN_x2.pb")
  for force in (False, True):
    e = _raises("scale", r"weights for x2 \(its architecture fixes the scale\), not x3",
                weights=path, model="espcn", scale=3, force_scale=force)
    assert str(path) in str(e)
  assert loading.import_weights(path, scale=2).scale == 2


def test_scale_free_file_without_xn_takes_the_request(tmp_path):
  torch = pytest.importorskip("torch")
  sd = factories.fsrcnn_pytorch_state_dict(RNG)
  torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, tmp_path / "fsrcnn.pth")
  got = loading.import_weights(tmp_path / "fsrcnn.pth", scale=4)
  assert got.scale == 4 and not [n for n in got.notes if "forced" in n]


def test_weights_errors_name_the_field(tmp_path):
  path = shared_path("weights", "fsrcnn_pytorch", "fsrcnn_x3.pth")
  assert loading.load_model(weights=path).name == "fsrcnn"  # recognised without ``model``
  e = _raises("model", "unknown model", weights=path, model="nonexistent")
  assert e.describe({"model": "--model"}).startswith("--model: ")
  _raises("model", "cannot take PyTorch weights", weights=path, model="srcnn")
  _raises(None, "no such weights file", weights=tmp_path / "missing.pth", model="fsrcnn")
  (tmp_path / "fsrcnn.pth").write_bytes(path.read_bytes())  # a name without xN
  _raises("scale", "does not record its scale", weights=tmp_path / "fsrcnn.pth", model="fsrcnn")


def test_input_error_field():
  plain = InputError("something is wrong")
  assert plain.field is None and str(plain) == "something is wrong"
  assert plain.describe({"x": "--x"}) == "something is wrong"
  e = InputError("bad value 3", field="scale")
  assert (str(e), e.message) == ("scale: bad value 3", "bad value 3")
  assert e.describe({"scale": "--scale"}) == "--scale: bad value 3"
  assert e.describe({}) == "scale: bad value 3"
  assert isinstance(e, ValueError)


def test_write_results(tmp_path):
  results = [{"dataset": "Set5", "scale": 3, "protocol": "y", "psnr": 30.5, "ssim": 0.9,
              "images": [{"name": "baby", "psnr": 30.5, "ssim": 0.9}]}]
  path = eval_lib.write_results(tmp_path / "new" / "r.json", results, model="bicubic",
                                weights=None, checkpoint=None)
  assert path == tmp_path / "new" / "r.json"
  text = path.read_text()
  assert text == json.dumps({"model": "bicubic", "weights": None, "checkpoint": None,
                             "results": results}, indent=1)
  assert list(json.loads(text)) == ["model", "weights", "checkpoint", "results"]
  assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left
  eval_lib.write_results(path, results[:0], model="x")  # replaces
  assert json.loads(path.read_text()) == {"model": "x", "results": []}
