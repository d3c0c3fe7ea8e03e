"""LPIPS: the JAX function, its weight loader, and agreement with the ``lpips`` package."""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import convert, metrics
from jaxsr.convert import lpips as lpips_convert
from jaxsr.errors import InputError


def _random_params(net: str, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  layers = [{"kernel": rng.normal(0, np.sqrt(2 / (k * k * cin)), (k, k, cin, cout)).astype(np.float32),
             "bias": rng.normal(0, 0.05, cout).astype(np.float32)}
            for cin, cout, k in lpips_convert._CONV_SHAPES[net]]
  linear = [np.abs(rng.normal(0, 0.1, c)).astype(np.float32) for c in metrics.LPIPS_CHANNELS[net]]
  return {"backbone": layers, "linear": linear}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_identical_images_give_zero_and_different_ones_do_not(net):
  params = _random_params(net)
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 64, 64, 3))
  y = jnp.clip(x + 0.1 * jax.random.normal(jax.random.PRNGKey(1), x.shape), 0, 1)
  same = metrics.lpips(x, x, params=params, net=net)
  other = metrics.lpips(x, y, params=params, net=net)
  assert same.shape == (2,) and other.shape == (2,)
  np.testing.assert_array_equal(np.asarray(same), 0.0)
  assert np.all(np.asarray(other) > 1e-4)


def test_batched_equals_per_image_and_jit_equals_eager():
  params = _random_params("alex", seed=3)
  key_x, key_y = jax.random.split(jax.random.PRNGKey(2))
  x = jax.random.uniform(key_x, (2, 3, 48, 56, 3))
  y = jax.random.uniform(key_y, (2, 3, 48, 56, 3))
  batched = metrics.lpips(x, y, params=params)
  assert batched.shape == (2, 3)
  single = np.array([[float(metrics.lpips(x[i, j], y[i, j], params=params)) for j in range(3)]
                     for i in range(2)])
  np.testing.assert_allclose(np.asarray(batched), single, rtol=1e-5)
  jitted = jax.jit(lambda a, b, p: metrics.lpips(a, b, params=p, net="alex"))(x, y, params)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(batched), rtol=1e-5)


def test_wrong_net_or_params_or_shapes_raise_input_error():
  params = _random_params("alex")
  x = jnp.zeros((32, 32, 3))
  with pytest.raises(InputError, match="net"):
    metrics.lpips(x, x, params=params, net="squeeze")
  with pytest.raises(InputError, match="13"):
    metrics.lpips(x, x, params=params, net="vgg")
  with pytest.raises(InputError, match="images"):
    metrics.lpips(x, jnp.zeros((32, 33, 3)), params=params)


def test_missing_backbone_is_one_line_naming_file_and_folder(tmp_path, monkeypatch):
  monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
  with pytest.raises(InputError) as info:
    convert.load_lpips_params("vgg")
  message = str(info.value)
  assert "\n" not in message
  assert "vgg16-397923af.pth" in message and str(tmp_path / "torch" / "hub" / "checkpoints") in message


def test_missing_linear_is_one_line(tmp_path):
  backbone = tmp_path / "alexnet.pth"
  backbone.write_bytes(b"")  # existence is checked first; the linear file is looked up next
  with pytest.raises(InputError) as info:
    convert.load_lpips_params("alex", backbone=backbone, linear=tmp_path / "nope.pth")
  assert "\n" not in str(info.value) and "nope.pth" in str(info.value)
  assert info.value.field == "lpips_linear"


# --- the oracle: the lpips package's forward pass ------------------------------------------

@functools.lru_cache(maxsize=None)
def _load_oracle():
  """``(torch, lpips module, {net: torchvision builder})`` or a skip.

  torchvision's wheel on PyPI is a CUDA build whose ``__init__`` fails beside the CPU torch of
  the oracle install (its C++ ops do not load); the two model files LPIPS uses are plain
  Python, so they are loaded under stand-in parent packages instead, and the ``lpips``
  package is given those as ``torchvision.models``.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  tv_spec = importlib.util.find_spec("torchvision")
  lp_spec = importlib.util.find_spec("lpips")
  if tv_spec is None or lp_spec is None:
    return None
  root = pathlib.Path(list(tv_spec.submodule_search_locations)[0])
  for name, path in (("torchvision", root), ("torchvision.models", root / "models")):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module
  import torchvision.models.alexnet as tv_alex  # pylint: disable=g-import-not-at-top
  import torchvision.models.vgg as tv_vgg  # pylint: disable=g-import-not-at-top
  sys.modules["torchvision.models"].alexnet = tv_alex.alexnet
  sys.modules["torchvision.models"].vgg16 = tv_vgg.vgg16
  import lpips as lpips_pkg  # pylint: disable=g-import-not-at-top
  return torch, lpips_pkg, {"alex": tv_alex.alexnet, "vgg": tv_vgg.vgg16}


@pytest.mark.oracle
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_agrees_with_the_lpips_package(net, tmp_path):
  oracle = _load_oracle()
  if oracle is None:
    pytest.skip("needs torch, torchvision and the lpips package (tools/install_oracle.sh)")
  torch, lpips_pkg, builders = oracle
  torch.manual_seed(0)
  trunk = builders[net](weights=None)  # random ImageNet-layout weights, torchvision's own init
  backbone = tmp_path / lpips_convert.BACKBONE_FILES[net]
  torch.save(trunk.state_dict(), backbone)

  pretrained_networks = sys.modules["lpips.pretrained_networks"]
  real = builders[net]

  def with_our_weights(pretrained=False, **_):
    model = real(weights=None)
    model.load_state_dict(torch.load(backbone, map_location="cpu"))
    return model

  attr = "alexnet" if net == "alex" else "vgg16"
  original = getattr(pretrained_networks.tv, attr)
  setattr(pretrained_networks.tv, attr, with_our_weights)
  try:
    reference = lpips_pkg.LPIPS(net=net, version="0.1", verbose=False).eval()
  finally:
    setattr(pretrained_networks.tv, attr, original)

  rng = np.random.default_rng(1)
  x = rng.uniform(0, 1, (3, 64, 80, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.15, x.shape), 0, 1).astype(np.float32)
  with torch.no_grad():
    expected = reference(torch.from_numpy(x).permute(0, 3, 1, 2),
                         torch.from_numpy(y).permute(0, 3, 1, 2), normalize=True)
  expected = expected.numpy().reshape(-1)
  params = convert.load_lpips_params(net, backbone=backbone)  # real heads, from the package
  ours = np.asarray(jax.jit(lambda a, b: metrics.lpips(a, b, params=params, net=net))(x, y))
  np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
  print(f"LPIPS-{net}: max |jaxsr - lpips| = {np.abs(ours - expected).max():.2e}, values {expected}")
  assert np.all(expected > 1e-3)
