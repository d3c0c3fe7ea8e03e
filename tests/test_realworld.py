"""jaxsr.realworld: Real-ESRGAN's degradations against BasicSR (oracle) and their statistics.

The oracle tests load BasicSR's ``degradations.py``, ``diffjpeg.py`` and ``img_process_util.py``
by path (tests/oracle.py) and compare op by op with the same parameters; random draws are fixed
by replaying jaxsr's standard normals / Poisson counts into ``torch.randn`` / ``torch.poisson``.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import realworld as rw
from jaxsr.errors import InputError
from jaxsr.realworld import pipeline, resampling
import oracle

_BASICSR = oracle.load_basicsr_realworld()
needs_basicsr = pytest.mark.skipif(
    _BASICSR is None, reason="needs torch, cv2, scipy and basicsr-fixed (tools/install_oracle.sh)")


def _photo(size: int = 64, top: int = 100, left: int = 150) -> np.ndarray:
  from jaxsr.data.embedded import embedded_images  # pylint: disable=g-import-not-at-top
  image = dict(embedded_images("test"))["astronaut"]
  return (image[top:top + size, left:left + size].astype(np.float32) / 255).copy()


def _nchw(img):
  return _BASICSR.torch.from_numpy(np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1))[None])


def _nhwc(t):
  return t.detach().numpy()[0].transpose(1, 2, 0)


# --- kernels ---------------------------------------------------------------------------------

_KERNEL_PARAMS = ((7, 0.5, 2.0, 0.7, 0.6), (13, 2.5, 1.1, -2.0, 3.0), (21, 3.0, 0.2, 2.9, 1.7))


@pytest.mark.oracle
@needs_basicsr
@pytest.mark.parametrize("k,sx,sy,theta,beta", _KERNEL_PARAMS)
def test_kernels_match_basicsr(k, sx, sy, theta, beta):
  d = _BASICSR.degradations
  pairs = [
      (d.bivariate_Gaussian(k, sx, sy, theta, isotropic=True), rw.gaussian_kernel(sx, k=k)),
      (d.bivariate_Gaussian(k, sx, sy, theta, isotropic=False),
       rw.gaussian_kernel(sx, sy, theta, k=k)),
      (d.bivariate_generalized_Gaussian(k, sx, sy, theta, beta, isotropic=True),
       rw.generalized_gaussian_kernel(sx, beta=beta, k=k)),
      (d.bivariate_generalized_Gaussian(k, sx, sy, theta, beta, isotropic=False),
       rw.generalized_gaussian_kernel(sx, sy, theta, beta, k=k)),
      (d.bivariate_plateau(k, sx, sy, theta, beta, isotropic=True),
       rw.plateau_kernel(sx, beta=beta, k=k)),
      (d.bivariate_plateau(k, sx, sy, theta, beta, isotropic=False),
       rw.plateau_kernel(sx, sy, theta, beta, k=k)),
  ]
  for ref, mine in pairs:
    np.testing.assert_allclose(np.asarray(mine), np.pad(ref, (21 - k) // 2), atol=1e-6, rtol=0)


@pytest.mark.oracle
@needs_basicsr
def test_sinc_kernels_match_basicsr():
  sinc = jax.jit(lambda om, k: rw.circular_lowpass_kernel(om, k=k))
  for k in (7, 13, 21):
    for omega in np.linspace(math.pi / 5, math.pi, 7).astype(np.float32):
      ref = _BASICSR.degradations.circular_lowpass_kernel(float(omega), k, pad_to=21)
      np.testing.assert_allclose(np.asarray(sinc(omega, k)), ref, atol=1e-6, rtol=0)


def test_random_kernels_are_normalised_and_jit():
  o = rw.RealESRGANOptions()
  draw = jax.jit(jax.vmap(lambda key: rw.random_kernel(
      key, kernel_sizes=o.kernel_sizes, kernel_probs=o.kernel_probs, sinc_prob=o.sinc_prob,
      blur_sigma=o.blur_sigma, betag_range=o.betag_range, betap_range=o.betap_range)))
  kernels = np.asarray(draw(jax.random.split(jax.random.key(0), 64)))
  assert kernels.shape == (64, 21, 21)
  np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-5)
  assert len({np.count_nonzero(np.abs(k).sum(0) > 0) for k in kernels}) > 3  # sizes vary
  np.testing.assert_allclose(kernels, kernels[:, ::-1, ::-1], atol=1e-6)  # point symmetric


@pytest.mark.oracle
@needs_basicsr
def test_filter2d_matches_basicsr():
  img = _photo(40)
  kernel = np.asarray(rw.gaussian_kernel(2.0, 0.7, 0.4, k=15))
  ref = _BASICSR.img_process_util.filter2D(_nchw(img), _BASICSR.torch.from_numpy(kernel)[None])
  np.testing.assert_allclose(np.asarray(rw.filter2d(jnp.asarray(img), kernel)), _nhwc(ref),
                             atol=1e-5, rtol=0)
  # a valid region inside a larger buffer filters like the cropped image
  buf = jnp.zeros((48, 56, 3)).at[:33, :29].set(img[:33, :29])
  ref = _BASICSR.img_process_util.filter2D(_nchw(img[:33, :29]),
                                           _BASICSR.torch.from_numpy(kernel)[None])
  out = np.asarray(rw.filter2d(buf, kernel, valid=(33, 29)))
  np.testing.assert_allclose(out[:33, :29], _nhwc(ref), atol=1e-5, rtol=0)
  assert not out[33:].any() and not out[:, 29:].any()


# --- resize ----------------------------------------------------------------------------------

@pytest.mark.oracle
@needs_basicsr
@pytest.mark.parametrize("mode", resampling.MODES)
def test_resize_matches_torch_interpolate(mode):
  functional = _BASICSR.torch.nn.functional
  img = _photo(40)
  fn = jax.jit(lambda x, s, m: resampling.resize_valid(x, (40, 40), (jnp.floor(40 * s).astype(
      jnp.int32),) * 2, out_buf=(64, 64), mode=m, scale=s))
  for s in (0.37, 0.5, 1.0, 1.43):
    ref = _nhwc(functional.interpolate(_nchw(img), scale_factor=float(np.float32(s)), mode=mode))
    n = ref.shape[0]
    out = np.asarray(fn(jnp.asarray(img), jnp.float32(s), resampling.MODES.index(mode)))
    np.testing.assert_allclose(out[:n, :n], ref, atol=2e-6, rtol=0)
    assert not out[n:].any() and not out[:, n:].any()
  for size in ((17, 23), (51, 77)):
    ref = _nhwc(functional.interpolate(_nchw(img), size=size, mode=mode))
    np.testing.assert_allclose(np.asarray(rw.resize(jnp.asarray(img), size, mode=mode)), ref,
                               atol=2e-6, rtol=0)


# --- JPEG ------------------------------------------------------------------------------------

@pytest.mark.oracle
@needs_basicsr
@pytest.mark.parametrize("quality", (30, 60, 95))
def test_jpeg_matches_diffjpeg(quality):
  img = _photo(64)[:50, :60]  # not a multiple of 16: padding path
  hard = _BASICSR.diffjpeg.DiffJPEG(differentiable=False)
  ref = _nhwc(hard(_nchw(img), quality=quality))
  np.testing.assert_allclose(np.asarray(rw.jpeg(jnp.asarray(img), quality)), ref, atol=1e-4,
                             rtol=0)
  soft = _BASICSR.diffjpeg.DiffJPEG(differentiable=True)
  ref = _nhwc(soft(_nchw(img), quality=quality))
  np.testing.assert_allclose(np.asarray(rw.jpeg(jnp.asarray(img), quality, soft_round=True)),
                             ref, atol=1e-4, rtol=0)


# measured on the 64x64 astronaut crop: see the README; the bound leaves ~1.5x headroom.
_PIL_TOLERANCE = {30: 0.025, 60: 0.018, 95: 0.008}


@pytest.mark.parametrize("quality", (30, 60, 95))
def test_jpeg_close_to_pil(quality):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  img = _photo(64)
  buf = io.BytesIO()
  Image.fromarray(np.round(img * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
  pil = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255
  ours = np.asarray(rw.jpeg(jnp.asarray(np.round(img * 255) / 255), quality))
  err = float(np.abs(ours - pil).mean())
  assert err < _PIL_TOLERANCE[quality], err
  assert np.abs(ours - img).mean() > 0  # it does compress


def test_jpeg_is_differentiable_with_soft_round():
  img = jnp.asarray(_photo(32))
  grad = jax.grad(lambda x: rw.jpeg(x, 50.0, soft_round=True).sum())(img)
  assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).sum() > 0


# --- USM -------------------------------------------------------------------------------------

@pytest.mark.oracle
@needs_basicsr
def test_usm_matches_basicsr():
  usm = _BASICSR.img_process_util.USMSharp()
  # The hard mask |I - B| * 255 > 10 flips where PyTorch's and XLA's float32 blurs differ at the
  # threshold; take a crop with no residual within 1e-3 of it (checked on the reference).
  for top in range(60, 400, 37):
    img = _photo(48, top=top)
    t = _nchw(img)
    blur = _BASICSR.img_process_util.filter2D(t, usm.kernel)
    if np.abs(np.abs((t - blur).numpy()) * 255 - 10).min() > 1e-3:
      break
  else:
    pytest.fail("no crop without near-threshold residuals")
  ref = _nhwc(usm(t))
  out = np.asarray(rw.usm_sharpen(jnp.asarray(img)[None])[0])
  np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


# --- noise -----------------------------------------------------------------------------------

class _Replay:
  """Stands in for ``torch.randn`` / ``torch.poisson`` with jaxsr's draws for ``key``."""

  def __init__(self, key, buffer_hw=None):
    self.key = key
    self.buffer_hw = buffer_hw

  def _crop_place(self, h, w):
    return self.buffer_hw or (h, w)

  def randn(self, *size, **_):
    torch = _BASICSR.torch
    h, w = size[-2:]
    bh, bw = self._crop_place(h, w)
    n = np.asarray(jax.random.normal(self.key, (bh, bw, 4), jnp.float32))[:h, :w]
    if len(size) == 2:  # the grey draw
      return torch.from_numpy(np.ascontiguousarray(n[..., 3]))
    return torch.from_numpy(np.ascontiguousarray(n[..., :3].transpose(2, 0, 1))[None])

  def poisson(self, lam):
    torch = _BASICSR.torch
    lam = lam.numpy()[0].transpose(1, 2, 0)
    key = jax.random.split(self.key)[1 if lam.shape[-1] == 1 else 0]
    counts = np.asarray(jax.random.poisson(key, jnp.asarray(lam), lam.shape), np.float32)
    return torch.from_numpy(np.ascontiguousarray(counts.transpose(2, 0, 1))[None])


@pytest.mark.oracle
@needs_basicsr
@pytest.mark.parametrize("gray", (False, True))
def test_noise_matches_basicsr_with_replayed_draws(gray, monkeypatch):
  torch, d = _BASICSR.torch, _BASICSR.degradations
  img = _photo(40)
  key = jax.random.key(7)
  replay = _Replay(key)
  monkeypatch.setattr(torch, "randn", replay.randn)
  monkeypatch.setattr(torch, "poisson", replay.poisson)
  g = torch.tensor([float(gray)])
  ref = d.add_gaussian_noise_pt(_nchw(img), sigma=torch.tensor([17.0]), gray_noise=g)
  out = rw.add_gaussian_noise(key, jnp.asarray(img), 17.0, gray)
  np.testing.assert_allclose(np.asarray(out), _nhwc(ref), atol=1e-6, rtol=0)
  ref = d.add_poisson_noise_pt(_nchw(img), scale=torch.tensor([2.2]), gray_noise=g)
  out = rw.add_poisson_noise(key, jnp.asarray(img), 2.2, gray)
  np.testing.assert_allclose(np.asarray(out), _nhwc(ref), atol=1e-6, rtol=0)


def test_noise_draws_follow_the_configured_ranges():
  """Per-sample sigma / Poisson scale: their draws span the ranges and the noise has them."""
  o = rw.RealESRGANOptions()
  n = 512
  draws = jax.jit(jax.vmap(lambda k: rw.draw_params(k, options=o)))(
      jax.random.split(jax.random.key(2026), n))
  for values, (low, high) in ((draws.sigma1, o.noise_range), (draws.sigma2, o.noise_range2),
                              (draws.poisson1, o.poisson_scale_range),
                              (draws.poisson2, o.poisson_scale_range2)):
    v = np.asarray(values)
    assert low <= v.min() and v.max() <= high
    width = high - low
    assert v.min() < low + 0.02 * width and v.max() > high - 0.02 * width
    assert abs(v.mean() - (low + high) / 2) < 4 * width / math.sqrt(12 * n)
  for flags, p in ((draws.gaussian1, o.gaussian_noise_prob), (draws.gray1, o.gray_noise_prob),
                   (draws.gray2, o.gray_noise_prob2), (draws.second_blur, o.second_blur_prob)):
    assert abs(np.asarray(flags).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
  # the noise realises the drawn strength: per-sample std of Gaussian noise on mid-grey is
  # sigma / 255 within 8% (sd of the estimate ~1.3% with 3072 values), Poisson on a constant
  # image (one level: counts ~ Poisson(x)) has std scale * sqrt(x) within 12% (sd ~2%).
  grey = jnp.full((32, 32, 3), 0.5)
  keys = jax.random.split(jax.random.key(5), 16)
  sig = np.asarray(draws.sigma1[:16])
  gauss = jax.vmap(lambda k, s: rw.gaussian_noise(k, grey.shape, s, False))(keys, sig)
  np.testing.assert_allclose(np.asarray(gauss).std(axis=(1, 2, 3)), sig / 255, rtol=0.08)
  scales = np.asarray(draws.poisson1[:16])
  shot = jax.vmap(lambda k, s: rw.poisson_noise(k, grey, s, False))(keys, scales)
  np.testing.assert_allclose(np.asarray(shot).std(axis=(1, 2, 3)), scales * math.sqrt(0.5),
                             rtol=0.12)
  np.testing.assert_allclose(np.asarray(shot).mean(axis=(1, 2, 3)), 0, atol=0.1 * scales.max())


# --- the pipeline ----------------------------------------------------------------------------

@pytest.mark.slow  # compiling the whole pipeline takes ~1-3 min on 2 CPU cores
def test_degrade_batch_shapes_range_and_determinism():
  hr = jnp.asarray(np.stack([_photo(48), _photo(48, top=200)]))
  fn = jax.jit(rw.degrade_batch, static_argnames=("scale", "options"))
  lr = np.asarray(fn(jax.random.key(1), hr, scale=4))
  assert lr.shape == (2, 12, 12, 3) and lr.dtype == np.float32
  assert lr.min() >= 0 and lr.max() <= 1
  np.testing.assert_array_equal(np.round(lr * 255), lr * 255)
  np.testing.assert_array_equal(lr, np.asarray(fn(jax.random.key(1), hr, scale=4)))
  assert not np.array_equal(lr[0], np.asarray(fn(jax.random.key(2), hr, scale=4))[0])


def _reference_pipeline(x, d, *, scale, buffers):
  """The same composition of BasicSR ops with jaxsr's draws ``d`` for one sample."""
  torch, deg = _BASICSR.torch, _BASICSR.degradations
  functional = torch.nn.functional
  filter2d = _BASICSR.img_process_util.filter2D
  jpeger = _BASICSR.diffjpeg.DiffJPEG(differentiable=False)
  t = lambda a: torch.from_numpy(np.asarray(a, np.float32).copy())
  h, w = x.shape[:2]
  modes = resampling.MODES

  def noise(out, key, buffer_hw, gaussian, sigma, pscale, gray):
    replay = _Replay(key, buffer_hw)
    saved = torch.randn, torch.poisson
    torch.randn, torch.poisson = replay.randn, replay.poisson
    try:
      g = t([float(gray)])
      if gaussian:
        return deg.add_gaussian_noise_pt(out, sigma=t([float(sigma)]), gray_noise=g)
      return deg.add_poisson_noise_pt(out, scale=t([float(pscale)]), gray_noise=g)
    finally:
      torch.randn, torch.poisson = saved

  out = filter2d(_nchw(x), t(d.kernel1)[None])
  out = functional.interpolate(out, scale_factor=float(d.scale1), mode=modes[int(d.mode1)])
  out = noise(out, d.noise_key1, buffers[0], d.gaussian1, d.sigma1, d.poisson1, d.gray1)
  out = jpeger(torch.clamp(out, 0, 1), quality=t([float(d.quality1)]))
  if d.second_blur:
    out = filter2d(out, t(d.kernel2)[None])
  size = (int(h / scale * float(d.scale2)), int(w / scale * float(d.scale2)))
  out = functional.interpolate(out, size=size, mode=modes[int(d.mode2)])
  out = noise(out, d.noise_key2, buffers[1], d.gaussian2, d.sigma2, d.poisson2, d.gray2)
  final = lambda o: filter2d(functional.interpolate(o, size=(h // scale, w // scale),
                                                    mode=modes[int(d.mode3)]),
                             t(d.sinc_kernel)[None])
  if d.sinc_first:
    out = jpeger(torch.clamp(final(out), 0, 1), quality=t([float(d.quality2)]))
  else:
    out = final(jpeger(torch.clamp(out, 0, 1), quality=t([float(d.quality2)])))
  return _nhwc(torch.clamp(out, 0, 1))


@pytest.mark.slow
@pytest.mark.oracle
@needs_basicsr
def test_pipeline_matches_basicsr_composition():
  """Fixed draws, Gaussian noise in both stages (Poisson counts of a pixel that rounds
  differently by 1e-7 upstream are unrelated draws, so those are compared op by op above)."""
  scale, size = 4, 96
  o = rw.RealESRGANOptions()
  hr = jnp.asarray(_photo(size))
  x = rw.usm_sharpen(hr[None])[0]
  draws = jax.vmap(lambda k: rw.draw_params(k, options=o))(
      jax.random.split(jax.random.key(11), 256))
  h1 = np.floor(size * np.asarray(draws.scale1))
  ok = (np.asarray(draws.gaussian1) & np.asarray(draws.gaussian2) & (h1 > 24)
        & np.asarray(draws.second_blur))
  chosen = [int(np.flatnonzero(ok & (np.asarray(draws.sinc_first) == first))[0])
            for first in (True, False)]
  fn = jax.jit(lambda xx, d: pipeline.degrade(xx, d, scale=scale, options=o, sharpened=True,
                                               round_output=False))
  buffers = pipeline.buffer_shapes(size, size, scale=scale, options=o)
  for i in chosen:
    d = jax.tree.map(lambda a: a[i], draws)  # pylint: disable=cell-var-from-loop
    ours = np.asarray(fn(x, d))
    ref = _reference_pipeline(np.asarray(x), jax.device_get(d), scale=scale, buffers=buffers)
    assert ours.shape == ref.shape == (size // scale, size // scale, 3)
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)


_WORKER = r"""
import jax, jax.numpy as jnp, numpy as np, sys
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxsr import realworld as rw
from jaxsr.errors import InputError
hr = jax.random.uniform(jax.random.key(3), (8, 32, 32, 3))
fn = jax.jit(rw.degrade_batch, static_argnames=("scale", "options"))
mesh = Mesh(np.array(jax.devices()), ("data",))
hr = jax.device_put(hr, NamedSharding(mesh, P("data")))
lr = fn(jax.random.key(0), hr, scale=2)
np.save(sys.argv[1], np.asarray(lr))
print(len(jax.devices()))
"""


@pytest.mark.slow
def test_same_batch_on_one_and_eight_devices(tmp_path):
  outs = []
  for devices in (1, 8):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               TF_CPP_MIN_LOG_LEVEL="2")
    path = tmp_path / f"lr{devices}.npy"
    run = subprocess.run([sys.executable, "-c", _WORKER, str(path)], env=env,
                         capture_output=True, text=True, timeout=900, check=True)
    assert run.stdout.strip().splitlines()[-1] == str(devices)
    outs.append(np.load(path))
  np.testing.assert_allclose(outs[1], outs[0], atol=1e-6, rtol=0)


def test_paired_random_crop_is_aligned():
  lr = jnp.arange(2 * 8 * 8 * 1, dtype=jnp.float32).reshape(2, 8, 8, 1)
  hr = jnp.repeat(jnp.repeat(lr, 4, axis=1), 4, axis=2)
  hr_c, lr_c = rw.paired_random_crop(jax.random.key(0), hr, lr, lr_size=3, scale=4)
  assert hr_c.shape == (2, 12, 12, 1) and lr_c.shape == (2, 3, 3, 1)
  np.testing.assert_array_equal(hr_c[:, ::4, ::4], lr_c)
  with pytest.raises(InputError):
    rw.paired_random_crop(jax.random.key(0), hr, lr, lr_size=9, scale=4)
