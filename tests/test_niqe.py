"""NIQE: shapes, batching, the pristine-model loader, and agreement with BasicSR."""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest

import oracle
from conftest import shared_path
from jaxsr import metrics
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np
from jaxsr.metrics import _niqe


@pytest.fixture(scope="module")
def params():
  try:
    return metrics.load_niqe_params()
  except InputError as e:
    pytest.skip(str(e))


def _textured(shape, seed):
  """Smooth random texture in [0, 1] (NIQE of white noise is degenerate)."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 1, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3))
  img = imresize_np(coarse, output_shape=(shape[0], shape[1]))
  return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


@pytest.mark.slow
def test_batched_equals_per_image_and_jit(params):
  images = np.stack([_textured((200, 300), s) for s in range(2)])  # 2 x 3 blocks after the cut
  batched = np.asarray(metrics.niqe(images, params=params))
  assert batched.shape == (2,) and np.all(np.isfinite(batched)) and batched[0] != batched[1]
  single = [float(metrics.niqe(images[i], params=params)) for i in range(2)]
  np.testing.assert_allclose(batched, single, rtol=1e-5)
  jitted = jax.jit(lambda x, p: metrics.niqe(x, params=p))(images, params)
  np.testing.assert_allclose(np.asarray(jitted), batched, atol=1e-3)
  # 255-scale input and CHW order give the same scores (up to a few Y values rounding the
  # other way).
  chw = np.moveaxis(images * 255, -1, -3)
  np.testing.assert_allclose(
      np.asarray(metrics.niqe(chw, params=params, max_value=255.0, input_order="CHW")),
      batched, atol=1e-3)


def test_too_small_and_bad_options_raise_input_error(params):
  with pytest.raises(InputError, match="96x96"):
    metrics.niqe(np.zeros((100, 120, 3), np.float32), params=params, crop_border=4)
  with pytest.raises(InputError, match="convert_to"):
    metrics.niqe(np.zeros((96, 96, 3), np.float32), params=params, convert_to="lab")
  with pytest.raises(InputError, match="channels"):
    metrics.niqe(np.zeros((96, 96, 2), np.float32), params=params)


def test_missing_model_is_one_line_saying_where_to_get_it(monkeypatch, tmp_path):
  monkeypatch.delenv(_niqe.NIQE_ENV_VAR, raising=False)
  monkeypatch.setattr(_niqe, "_basicsr_file", lambda: None)
  with pytest.raises(InputError) as info:
    metrics.load_niqe_params()
  message = str(info.value)
  assert "\n" not in message and "niqe_pris_params.npz" in message and "basicsr" in message
  with pytest.raises(InputError, match="no such file"):
    metrics.load_niqe_params(tmp_path / "absent.npz")


def test_a_damaged_model_file_is_named(tmp_path):
  bad = tmp_path / "model.npz"
  np.savez(bad, mu_pris_param=np.zeros(36), cov_pris_param=np.eye(36))
  with pytest.raises(InputError, match="gaussian_window"):
    metrics.load_niqe_params(bad)
  np.savez(bad, mu_pris_param=np.zeros(36), cov_pris_param=np.eye(36),
           gaussian_window=np.arange(49.0).reshape(7, 7))
  with pytest.raises(InputError, match="separable"):
    metrics.load_niqe_params(bad)


@pytest.mark.oracle
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_agrees_with_basicsr_on_hr_and_bicubic_x4(dataset, params):
  cv2 = pytest.importorskip("cv2")
  if oracle.load_basicsr() is None:
    pytest.skip("needs the BasicSR oracle (tools/install_oracle.sh)")
  root = oracle._root()  # pylint: disable=protected-access
  reference = oracle._load("basicsr.metrics.niqe", root / "metrics" / "niqe.py")  # pylint: disable=protected-access
  folder = shared_path("data", "benchmarks", dataset)
  worst = {}
  for path in sorted(pathlib.Path(folder).glob("*.png")):
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    hr = bgr[: bgr.shape[0] // 4 * 4, : bgr.shape[1] // 4 * 4]
    bicubic = imresize_np(imresize_np(hr, 0.25), 4)  # uint8, MATLAB bicubic down and up
    for kind, img, crop in (("hr", hr, 0), ("bicubic", bicubic, 4)):
      expected = reference.calculate_niqe(img, crop_border=crop)
      ours = float(metrics.niqe(img[..., ::-1].astype(np.float32) / 255, params=params,
                                crop_border=crop))
      worst[(path.stem, kind)] = abs(ours - expected)
  assert len(worst) >= 10
  # ppt3 (a slide: large flat areas) included: see _niqe._local_stats for what it takes.
  failing = {k: v for k, v in worst.items() if v > 0.01}
  assert not failing, failing
