"""Metrics against a float64 numpy reference, scikit-image and (optionally) BasicSR."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from jaxsr import color
from jaxsr import metrics
from conftest import shared_path
from oracle import load_basicsr


def _ref_psnr(x, y, peak):
  mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
  return 10 * np.log10(peak**2 / mse)


def _ref_ssim(x, y, peak):
  """Float64 SSIM per channel with an explicit 11x11 window slid over every valid position."""
  r = np.arange(11) - 5.0
  g = np.exp(-r**2 / (2 * 1.5**2))
  win = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
  values = []
  for c in range(x.shape[-1]):
    a = x[..., c].astype(np.float64)
    b = y[..., c].astype(np.float64)
    pa = np.lib.stride_tricks.sliding_window_view(a, (11, 11))
    pb = np.lib.stride_tricks.sliding_window_view(b, (11, 11))
    mu_a = np.einsum("ijkl,kl->ij", pa, win)
    mu_b = np.einsum("ijkl,kl->ij", pb, win)
    var_a = np.einsum("ijkl,kl->ij", (pa - mu_a[..., None, None]) ** 2, win)
    var_b = np.einsum("ijkl,kl->ij", (pb - mu_b[..., None, None]) ** 2, win)
    cov = np.einsum("ijkl,kl->ij", (pa - mu_a[..., None, None]) * (pb - mu_b[..., None, None]), win)
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    values.append(m.mean())
  return float(np.mean(values))


def _pair(seed, shape=(40, 52, 1), noise=12.0):
  rng = np.random.RandomState(seed)
  base = np.clip(rng.rand(*shape) * 60 + 100 + 60 * np.sin(np.arange(shape[1]) / 5.0)[None, :, None], 0, 255)
  x = np.round(base)
  y = np.round(np.clip(base + rng.randn(*shape) * noise, 0, 255))
  return x, y


@pytest.mark.parametrize("seed", range(3))
def test_psnr_and_ssim_match_float64_reference(seed):
  x, y = _pair(seed, shape=(37, 45, 3))
  np.testing.assert_allclose(float(metrics.psnr(x, y, max_value=255.0)), _ref_psnr(x, y, 255), atol=1e-4)
  np.testing.assert_allclose(float(metrics.ssim(x, y, max_value=255.0)), _ref_ssim(x, y, 255), atol=1e-6)
  # The same in the [0, 1] convention.
  np.testing.assert_allclose(float(metrics.ssim(x / 255, y / 255)), _ref_ssim(x, y, 255), atol=1e-6)


def test_ssim_matches_skimage_gaussian_settings():
  x, y = _pair(7, shape=(64, 48, 1))
  want = structural_similarity(x[..., 0], y[..., 0], gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=255)
  np.testing.assert_allclose(float(metrics.ssim(x, y, max_value=255.0)), want, atol=1e-6)


def test_batched_jit_and_vmap():
  pairs = [_pair(s, shape=(30, 30, 1)) for s in range(4)]
  xs = np.stack([p[0] for p in pairs])
  ys = np.stack([p[1] for p in pairs])
  batched = jax.jit(lambda a, b: metrics.ssim(a, b, max_value=255.0))(xs, ys)
  assert batched.shape == (4,)
  mapped = jax.vmap(lambda a, b: metrics.psnr(a, b, max_value=255.0))(xs, ys)
  for i in range(4):
    np.testing.assert_allclose(float(batched[i]), _ref_ssim(xs[i], ys[i], 255), atol=1e-6)
    np.testing.assert_allclose(float(mapped[i]), _ref_psnr(xs[i], ys[i], 255), atol=1e-4)


def test_masked_metrics_equal_unpadded():
  x, y = _pair(5, shape=(37, 29, 1))
  xp = np.pad(x, ((0, 27), (0, 35), (0, 0)))
  yp = np.pad(y, ((0, 27), (0, 35), (0, 0)))
  p = metrics.psnr_masked(xp, yp, 37, 29, max_value=255.0)
  s = metrics.ssim_masked(xp, yp, 37, 29, max_value=255.0)
  np.testing.assert_allclose(float(p), _ref_psnr(x, y, 255), atol=1e-4)
  np.testing.assert_allclose(float(s), _ref_ssim(x, y, 255), atol=1e-6)


def test_rgb_to_y_crop_and_quantize():
  rgb = np.array([[[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]])
  y = np.asarray(metrics.rgb_to_y(rgb))
  np.testing.assert_allclose(y[0, 0, :, 0] * 255, [235.0, 16.0, 16 + 65.481], atol=1e-4)
  grey = np.full((1, 2, 2, 1), 0.3)
  assert metrics.rgb_to_y(grey) is not None and np.allclose(metrics.rgb_to_y(grey), grey)
  assert metrics.rgb_to_y is color.rgb_to_y  # offered here, defined in jaxsr.color
  assert metrics.crop_border(np.zeros((2, 10, 12, 1)), 3).shape == (2, 4, 6, 1)
  q = np.asarray(metrics.quantize(jnp.array([-0.1, 0.6 / 255, 1.6 / 255, 0.49999, 2.0])))
  np.testing.assert_allclose(q * 255, [0, 1, 2, 127, 255], atol=1e-4)


def test_identical_images_and_errors():
  x, _ = _pair(0)
  assert float(metrics.ssim(x, x, max_value=255.0)) == pytest.approx(1.0, abs=1e-6)
  assert np.isinf(float(metrics.psnr(x, x, max_value=255.0)))
  with pytest.raises(ValueError, match="smaller than"):
    metrics.ssim(np.zeros((8, 20, 1)), np.zeros((8, 20, 1)))
  with pytest.raises(ValueError, match="1 or 3 channels"):
    metrics.rgb_to_y(np.zeros((4, 4, 2)))


@pytest.mark.oracle
@pytest.mark.shared
def test_matches_basicsr_metrics_on_set5():
  oracle = load_basicsr()
  if oracle is None:
    pytest.skip("BasicSR oracle not installed (tools/install_oracle.sh)")
  from jaxsr import imresize as ir
  from jaxsr.data import read_image
  for path in sorted(shared_path("data", "benchmarks", "Set5").glob("*.png")):
    hr = read_image(path)
    hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
    sr = ir.imresize_np(ir.imresize_np(hr, 1 / 4), 4)
    bgr_hr, bgr_sr = hr[..., ::-1].astype(np.float64), sr[..., ::-1].astype(np.float64)
    want_p = oracle.calculate_psnr(bgr_sr, bgr_hr, crop_border=4, test_y_channel=True)
    want_s = oracle.calculate_ssim(bgr_sr, bgr_hr, crop_border=4, test_y_channel=True)
    ys = metrics.crop_border(metrics.rgb_to_y(sr / 255.0) * 255.0, 4)
    yh = metrics.crop_border(metrics.rgb_to_y(hr / 255.0) * 255.0, 4)
    np.testing.assert_allclose(float(metrics.psnr(ys, yh, max_value=255.0)), want_p, atol=1e-3)
    np.testing.assert_allclose(float(metrics.ssim(ys, yh, max_value=255.0)), want_s, atol=1e-5)
