"""imresize: MATLAB bicubic semantics, numpy vs JAX, and BasicSR as an oracle."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import imresize as ir
from conftest import shared_path
from oracle import load_basicsr


def _reference_1d(x: np.ndarray, out_len: int, scale: float) -> np.ndarray:
  """Per-pixel float64 loop over MATLAB's contributions() on axis 0, written independently."""
  n = x.shape[0]
  def cubic(t):
    t = abs(t)
    if t <= 1:
      return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
      return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0
  width = 4.0 / scale if scale < 1 else 4.0
  out = np.zeros((out_len,) + x.shape[1:])
  for i in range(1, out_len + 1):
    u = i / scale + 0.5 * (1 - 1 / scale)
    left = math.floor(u - width / 2)
    taps = [left + k for k in range(int(math.ceil(width)) + 2)]
    w = np.array([scale * cubic((u - j) * scale) if scale < 1 else cubic(u - j) for j in taps])
    w /= w.sum()
    for j, wj in zip(taps, w):
      while j < 1 or j > n:  # mirror, edge pixel included
        j = 1 - j if j < 1 else 2 * n + 1 - j
      out[i - 1] += wj * x[j - 1]
  return out


def _reference(x, scale):
  out_h, out_w = (int(math.ceil(n * scale)) for n in x.shape[:2])
  y = _reference_1d(x.astype(np.float64), out_h, scale)
  return np.swapaxes(_reference_1d(np.swapaxes(y, 0, 1), out_w, scale), 0, 1)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.7, 2, 3, 4, 1.5])
@pytest.mark.parametrize("size", [(13, 10), (4, 7), (1, 5)])
def test_numpy_matches_independent_reference(scale, size):
  x = np.random.RandomState(0).rand(*size, 2)
  np.testing.assert_allclose(ir.imresize_np(x, scale), _reference(x, scale), atol=1e-12)


def test_output_shapes_and_layouts():
  x = np.random.RandomState(1).rand(2, 3, 17, 15, 3)
  assert ir.imresize_np(x, 1 / 3).shape == (2, 3, 6, 5, 3)
  assert ir.imresize_np(x[0, 0], 2).shape == (34, 30, 3)
  assert ir.imresize_np(x[0, 0, ..., 0], 2).shape == (34, 30)
  assert ir.imresize_np(x[0, 0], output_shape=(20, 9)).shape == (20, 9, 3)
  assert ir.imresize(jnp.asarray(x), 4).shape == (2, 3, 68, 60, 3)
  # Batch elements are resized independently.
  np.testing.assert_allclose(ir.imresize_np(x, 1 / 3)[1, 2], ir.imresize_np(x[1, 2], 1 / 3))


def test_output_shape_uses_per_axis_scale_and_smaller_scale_first():
  x = np.random.RandomState(2).rand(12, 20, 1)
  got = ir.imresize_np(x, output_shape=(6, 30))
  # Width is upscaled (1.5), height downscaled (0.5): MATLAB resizes height first.
  h = np.swapaxes(_reference_1d(x, 6, 0.5), 0, 1)
  want = np.swapaxes(_reference_1d(h, 30, 1.5), 0, 1)
  np.testing.assert_allclose(got, want, atol=1e-12)


def test_uint8_rounds_and_saturates():
  x = np.zeros((8, 8, 1), np.uint8)
  x[:, 4:] = 255
  out = ir.imresize_np(x, 2)
  assert out.dtype == np.uint8
  exact = ir.imresize_np(x.astype(np.float64), 2)
  assert exact.min() < 0 and exact.max() > 255  # the cubic kernel overshoots at edges
  np.testing.assert_array_equal(out, np.floor(np.clip(exact, 0, 255) + 0.5))


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_jax_matches_numpy_and_jits(scale):
  x = np.random.RandomState(3).rand(2, 23, 18, 3).astype(np.float32)
  got = jax.jit(lambda v: ir.imresize(v, scale))(x)
  np.testing.assert_allclose(np.asarray(got), ir.imresize_np(x.astype(np.float64), scale),
                             atol=2e-6)


def test_jax_is_differentiable():
  x = jnp.asarray(np.random.RandomState(4).rand(1, 12, 12, 1), jnp.float32)
  g = jax.grad(lambda v: jnp.sum(ir.imresize(v, 1 / 2) ** 2))(x)
  # d/dx sum(M x)^2 = 2 M^T (M x); check one axis with the explicit matrices.
  mh = ir.resize_matrix(12, 6)
  y = mh @ np.asarray(x[0, :, :, 0], np.float64) @ mh.T
  np.testing.assert_allclose(np.asarray(g[0, :, :, 0]), 2 * mh.T @ y @ mh, atol=1e-5)


def test_bad_arguments():
  with pytest.raises(ValueError, match="exactly one"):
    ir.imresize_np(np.zeros((4, 4)), 2, output_shape=(8, 8))
  with pytest.raises(ValueError, match="positive"):
    ir.imresize_np(np.zeros((4, 4)), -1)
  with pytest.raises(TypeError, match="uint8 or float"):
    ir.imresize_np(np.zeros((4, 4), np.int32), 2)


def _tie_explained(mismatch, exact, ref):
  """A rounding disagreement is explained when the oracle's own error reaches a .5 tie."""
  distance_to_tie = np.abs(exact - np.floor(exact) - 0.5)
  return np.all(~mismatch | (distance_to_tie <= np.abs(ref - exact) + 1e-9))


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.shared
def test_agrees_with_basicsr_on_set5_set14_after_rounding():
  """After rounding to uint8, jaxsr equals BasicSR except at exact .5 ties.

  BasicSR computes weights and sums in float32, so where the float64 value lies within that
  float32 error of a .5 tie the two round differently; every such pixel is checked to be one.
  """
  oracle = load_basicsr()
  if oracle is None:
    pytest.skip("BasicSR oracle not installed (tools/install_oracle.sh)")
  from PIL import Image
  files = sorted(shared_path("data", "benchmarks", "Set5").glob("*.png"))
  files += sorted(shared_path("data", "benchmarks", "Set14").glob("*.png"))
  total = mismatched = 0
  for f in files:
    img = np.asarray(Image.open(f).convert("RGB"))
    for scale in (1 / 2, 1 / 3, 1 / 4, 2, 3, 4):
      ours = ir.imresize_np(img, scale)
      exact = ir.imresize_np(img.astype(np.float64), scale)
      ref = oracle.imresize(img.astype(np.float64) / 255.0, scale) * 255.0
      ref_u8 = np.floor(np.clip(ref, 0, 255) + 0.5)
      mismatch = ours != ref_u8
      assert ours.shape == ref_u8.shape
      assert np.abs(ours.astype(int) - ref_u8).max() <= 1
      assert _tie_explained(mismatch, exact, ref), (f.name, scale)
      jax_out = np.asarray(ir.imresize(jnp.asarray(img), scale))
      assert _tie_explained(jax_out != ours, exact, exact + 1e-3), (f.name, scale)
      total += ours.size
      mismatched += int(mismatch.sum())
  assert mismatched < 1e-4 * total
