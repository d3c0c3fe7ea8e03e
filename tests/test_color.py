"""jaxsr.color: YCbCr of both standards, numpy (0..255) and jax.numpy ([0, 1]), and the Y planes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from jaxsr import color
from jaxsr.errors import InputError

RNG = np.random.default_rng(0)


def _opencv_reference(rgb: np.ndarray) -> np.ndarray:
  """OpenCV's documented RGB -> YCrCb formulas (delta 128), reordered to Y, Cb, Cr."""
  r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
  y = 0.299 * r + 0.587 * g + 0.114 * b
  return np.stack([y, (b - y) * 0.564 + 128.0, (r - y) * 0.713 + 128.0], -1)


def test_standard_names():
  assert (color.MATLAB, color.OPENCV) == ("matlab", "opencv")
  assert color.STANDARDS == (color.MATLAB, color.OPENCV)


def test_roundtrip_both_standards():
  rgb = RNG.integers(0, 256, (5, 7, 3))
  for standard in color.STANDARDS:
    for x in (rgb.astype(np.uint8), rgb.astype(np.float64)):
      ycc = color.rgb_to_ycbcr(x, standard=standard)
      assert ycc.dtype == np.float64 and ycc.shape == (5, 7, 3)
      back = color.ycbcr_to_rgb(ycc, standard=standard)
      assert back.dtype == np.float64
      np.testing.assert_allclose(back, rgb, atol=1e-9)
    x01 = jnp.asarray(rgb / 255.0, jnp.float32)
    back01 = color.ycbcr_to_rgb_jnp(color.rgb_to_ycbcr_jnp(x01, standard=standard),
                                    standard=standard)
    np.testing.assert_allclose(np.asarray(back01), rgb / 255.0, atol=2e-6)


def test_matlab_anchor_values():
  white = color.rgb_to_ycbcr(np.full((1, 1, 3), 255, np.uint8))[0, 0]
  black = color.rgb_to_ycbcr(np.zeros((1, 1, 3), np.uint8))[0, 0]
  np.testing.assert_allclose(white, [235.0, 128.0, 128.0], atol=1e-9)
  np.testing.assert_allclose(black, [16.0, 128.0, 128.0], atol=1e-9)
  red = color.rgb_to_ycbcr(np.array([[[255, 0, 0]]], np.uint8))[0, 0]
  np.testing.assert_allclose(red, [16 + 65.481, 128 - 37.797, 128 + 112.0], atol=1e-9)
  blue = color.rgb_to_ycbcr(np.array([[[0, 0, 255]]], np.uint8))[0, 0]
  assert blue[1] == pytest.approx(240.0)  # Cb peaks at 240
  rgb = RNG.integers(0, 256, (6, 5, 3)).astype(np.uint8)
  np.testing.assert_allclose(color.rgb_to_ycbcr(rgb), skcolor.rgb2ycbcr(rgb), atol=1e-9)
  np.testing.assert_allclose(color.rgb_to_ycbcr(rgb, standard=None), color.rgb_to_ycbcr(rgb))


def test_opencv_anchor_values():
  for v in (0, 17, 200, 255):
    grey = color.rgb_to_ycbcr(np.full((1, 1, 3), float(v)), standard=color.OPENCV)[0, 0]
    np.testing.assert_allclose(grey, [v, 128.0, 128.0], atol=1e-9)
  rgb = RNG.integers(0, 256, (6, 5, 3)).astype(np.uint8)
  np.testing.assert_allclose(color.rgb_to_ycbcr(rgb, standard=color.OPENCV),
                             _opencv_reference(rgb), atol=1e-9)


def test_numpy_and_jnp_agree():
  rgb = RNG.integers(0, 256, (2, 9, 11, 3)).astype(np.uint8)
  x01 = jnp.asarray(rgb / 255.0, jnp.float32)
  for standard in color.STANDARDS:
    want = color.rgb_to_ycbcr(rgb, standard=standard) / 255.0
    got = jax.jit(lambda x, s=standard: color.rgb_to_ycbcr_jnp(x, standard=s))(x01)
    assert got.dtype == jnp.float32 and got.shape == rgb.shape
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
    back = color.ycbcr_to_rgb_jnp(jnp.asarray(want, jnp.float32), standard=standard)
    np.testing.assert_allclose(np.asarray(back), rgb / 255.0, atol=2e-6)
  y = color.rgb_to_y(x01)
  assert y.shape == rgb.shape[:-1] + (1,)
  np.testing.assert_allclose(np.asarray(y), color.rgb_to_ycbcr(rgb)[..., :1] / 255.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(color.rgb_to_y(x01, keepdims=False)),
                             np.asarray(y)[..., 0])
  np.testing.assert_allclose(np.asarray(y) * 255.0, color.y_float(rgb), atol=1e-4)


def test_y_uint8_and_y_float():
  grey = RNG.integers(0, 256, (4, 6, 1)).astype(np.uint8)
  assert color.y_uint8(grey) is grey  # a 1-channel image is its own Y
  yf = color.y_float(grey)
  assert yf.dtype == np.float64 and np.array_equal(yf, grey)
  levels = np.arange(256, dtype=np.uint8)
  rgb_grey = np.repeat(levels.reshape(16, 16, 1), 3, -1)
  y = color.y_uint8(rgb_grey)
  assert y.dtype == np.uint8 and y.shape == (16, 16, 1)
  grid = levels.reshape(16, 16).astype(np.float64)
  np.testing.assert_array_equal(y[..., 0], np.floor(16 + 219 * grid / 255 + 0.5))
  assert (y.min(), y.max()) == (16, 235)
  rgb = RNG.integers(0, 256, (7, 8, 3)).astype(np.uint8)
  yf = color.y_float(rgb)
  assert yf.dtype == np.float64 and yf.shape == (7, 8, 1)
  np.testing.assert_allclose(yf, color.rgb_to_ycbcr(rgb)[..., :1], atol=1e-9)
  np.testing.assert_array_equal(color.y_uint8(rgb), np.floor(yf + 0.5).astype(np.uint8))


def test_bad_arguments():
  with pytest.raises(InputError, match="standard: unknown YCbCr standard 'bt709'"):
    color.rgb_to_ycbcr(np.zeros((2, 2, 3)), standard="bt709")
  with pytest.raises(InputError) as e:
    color.ycbcr_to_rgb_jnp(jnp.zeros((2, 2, 3)), standard="MATLAB")
  assert e.value.field == "standard"
  with pytest.raises(ValueError, match="3 channels"):
    color.rgb_to_ycbcr(np.zeros((2, 2, 1)))
  with pytest.raises(ValueError, match="3 channels"):
    color.rgb_to_ycbcr_jnp(jnp.zeros((2, 2, 4)))
  with pytest.raises(ValueError, match="1 or 3 channels"):
    color.rgb_to_y(jnp.zeros((2, 2, 2)))
