"""jaxsr.degradations: modcrop, each protocol's LR, and the (LR, reference) pairs."""

from __future__ import annotations

import numpy as np
import pytest

from jaxsr import color
from jaxsr import degradations
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np

RNG = np.random.default_rng(0)


def _image(h, w, c=3):
  return RNG.integers(0, 256, (h, w, c)).astype(np.uint8)


def test_protocol_names():
  assert degradations.PROTOCOLS == ("y", "rgb")


def test_modcrop_keeps_the_top_left_multiple_of_scale():
  image = _image(50, 47)
  for scale in (1, 2, 3, 4):
    out = degradations.modcrop(image, scale)
    assert out.shape == (50 - 50 % scale, 47 - 47 % scale, 3)
    np.testing.assert_array_equal(out, image[:out.shape[0], :out.shape[1]])
  assert degradations.modcrop(image[:48, :44], 4).shape == (48, 44, 3)
  assert degradations.modcrop(np.zeros((10, 7)), 3).shape == (9, 6)  # any trailing dims


def test_rgb_protocol_lr_is_rounded_uint8_bicubic():
  hr = _image(50, 47)
  for scale in (2, 3, 4):
    lr = degradations.lr_rgb(hr, scale)
    assert lr.dtype == np.uint8 and lr.shape == (50 // scale, 47 // scale, 3)
    np.testing.assert_array_equal(lr, imresize_np(degradations.modcrop(hr, scale), 1 / scale))
  grey = _image(21, 22, 1)
  assert degradations.lr_rgb(grey, 2).shape == (10, 11, 1)


def test_y_protocol_lr_is_float_bicubic_not_quantised():
  y = color.y_uint8(_image(50, 47))
  for scale in (2, 3, 4):
    lr = degradations.lr_y(y, scale)
    assert lr.dtype == np.float32 and lr.shape == (50 // scale, 47 // scale, 1)
    want = imresize_np(degradations.modcrop(y, scale).astype(np.float64) / 255.0, 1 / scale)
    np.testing.assert_array_equal(lr, want.astype(np.float32))
    assert np.any(np.abs(lr * 255 - np.round(lr * 255)) > 1e-3)


def test_degrade_y():
  hr = _image(50, 47)
  pair = degradations.degrade(hr, scale=4, protocol="y", name="x")
  assert pair.name == "x"
  assert pair.hr.dtype == np.uint8 and pair.hr.shape == (48, 44, 1)
  np.testing.assert_array_equal(pair.hr, color.y_uint8(hr)[:48, :44])
  np.testing.assert_array_equal(pair.lr, degradations.lr_y(pair.hr, 4))
  assert pair.hr_y.dtype == np.float64 and np.array_equal(pair.hr_y, pair.hr)


def test_degrade_rgb_and_a_grey_image():
  hr = _image(50, 47)
  pair = degradations.degrade(hr, scale=4, protocol="rgb")
  assert pair.lr.dtype == np.float32 and pair.lr.shape == (12, 11, 3)
  np.testing.assert_array_equal(pair.hr, hr[:48, :44])
  np.testing.assert_array_equal(
      pair.lr, (degradations.lr_rgb(hr, 4).astype(np.float64) / 255.0).astype(np.float32))
  np.testing.assert_array_equal(pair.hr_y, color.y_float(hr[:48, :44]))
  grey = _image(40, 41, 1)
  pair = degradations.degrade(grey, scale=2, protocol="rgb")
  assert pair.hr.shape == (40, 40, 3) and pair.lr.shape == (20, 20, 3)
  np.testing.assert_allclose(pair.hr_y[..., 0], 16 + 219.0 / 255.0 * grey[:40, :40, 0], atol=1e-9)
  pair = degradations.degrade(grey, scale=2, protocol="y")
  np.testing.assert_array_equal(pair.hr, grey[:40, :40])  # a grey image is its own Y


def test_bad_protocol_and_too_small_image():
  with pytest.raises(InputError, match="protocol: unknown value 'ycbcr'") as e:
    degradations.degrade(_image(40, 40), scale=2, protocol="ycbcr")
  assert e.value.field == "protocol"
  # x4 needs the shaved HR (H // 4 * 4 - 8) to hold the 11x11 SSIM window: H >= 20.
  degradations.degrade(_image(20, 40), scale=4, protocol="y")
  with pytest.raises(InputError, match="tiny: image of 19x40 is too small to evaluate at x4"):
    degradations.degrade(_image(19, 40), scale=4, protocol="y", name="tiny")
