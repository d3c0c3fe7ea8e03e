"""Losses against hand computations in numpy (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import losses
from jaxsr.models import vgg as vgg_lib


def _rand(*shape, seed=0):
  return np.random.RandomState(seed).rand(*shape).astype(np.float32)


def _sig(z):
  return 1.0 / (1.0 + np.exp(-z))


def test_pixel_losses():
  x, y = _rand(2, 5, 5, 3, seed=1), _rand(2, 5, 5, 3, seed=2)
  d = x.astype(np.float64) - y
  np.testing.assert_allclose(losses.l1(x, y), np.abs(d).mean(), rtol=1e-6)
  np.testing.assert_allclose(losses.mse(x, y), (d ** 2).mean(), rtol=1e-6)
  np.testing.assert_allclose(losses.charbonnier(x, y, eps=1e-3),
                             np.sqrt(d ** 2 + 1e-6).mean(), rtol=1e-6)
  assert losses.pixel_loss("l2") is losses.mse
  with pytest.raises(ValueError, match="unknown pixel loss"):
    losses.pixel_loss("l3")


def test_gram_matrix():
  f = _rand(2, 4, 3, 5).astype(np.float64)
  want = np.stack([fi.reshape(-1, 5).T @ fi.reshape(-1, 5) for fi in f]) / (5 * 4 * 3)
  np.testing.assert_allclose(losses.gram_matrix(jnp.asarray(f, jnp.float32)), want, rtol=1e-5)


@pytest.mark.parametrize("kind", losses.GAN_KINDS)
def test_gan_losses_match_hand_computation(kind):
  r = np.random.RandomState(3).randn(6, 1) * 2
  f = np.random.RandomState(4).randn(6, 1) * 2
  if kind == "vanilla":
    d = -np.log(_sig(r)).mean() - np.log(1 - _sig(f)).mean()
    g = -np.log(_sig(f)).mean()
  elif kind == "lsgan":
    d = ((r - 1) ** 2).mean() + (f ** 2).mean()
    g = ((f - 1) ** 2).mean()
  elif kind == "hinge":
    d = np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean()
    g = -f.mean()
  else:  # ESRGAN eq. 8 / 9 with D_ra(a, b) = sigmoid(C(a) - E[C(b)])
    d_rf, d_fr = _sig(r - f.mean()), _sig(f - r.mean())
    d = -np.log(d_rf).mean() - np.log(1 - d_fr).mean()
    g = -np.log(1 - d_rf).mean() - np.log(d_fr).mean()
  rj, fj = jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32)
  np.testing.assert_allclose(losses.gan_d_loss(kind, rj, fj), d, rtol=1e-5)
  np.testing.assert_allclose(losses.gan_g_loss(kind, rj, fj), g, rtol=1e-5)
  # Stable for large logits, and jit-able.
  big = jnp.asarray([[80.0], [-80.0]])
  assert np.isfinite(jax.jit(losses.gan_d_loss, static_argnums=0)(kind, big, -big))
  assert np.isfinite(jax.jit(losses.gan_g_loss, static_argnums=0)(kind, big, -big))


def test_gan_kind_is_checked():
  with pytest.raises(ValueError, match="unknown GAN loss"):
    losses.gan_d_loss("wgan", jnp.zeros((2, 1)), jnp.zeros((2, 1)))


# ---------------------------------------------------------------- perceptual / style vs numpy VGG


def _np_conv3x3(x, k, b):
  """'same' 3x3 convolution (zero padding), NHWC, float64."""
  n, h, w, _ = x.shape
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros((n, h, w, k.shape[-1]))
  for i in range(3):
    for j in range(3):
      out += np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + w], k[i, j])
  return out + b


def _np_vgg(params, x, mean, std, upto):
  x = (x - mean) / std
  feats = {}
  for name in vgg_lib.LAYER_NAMES[:vgg_lib.TORCHVISION_INDEX[upto] + 1]:
    if name.startswith("conv"):
      x = _np_conv3x3(x, params[name]["kernel"], params[name]["bias"])
    elif name.startswith("relu"):
      x = np.maximum(x, 0)
    else:
      n, h, w, c = x.shape
      x = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    feats[name] = x
  return feats


@pytest.fixture(scope="module")
def small_vgg():
  variables = vgg_lib.VGG19(layers=("relu2_1",), use_input_norm=False).init(
      jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
  mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])
  vgg = {"params": variables["params"], "input_mean": mean.astype(np.float32),
         "input_std": std.astype(np.float32)}
  return vgg, params, mean, std


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_perceptual_and_style_losses(small_vgg, criterion):
  vgg, params, mean, std = small_vgg
  x, y = _rand(2, 8, 8, 3, seed=5), _rand(2, 8, 8, 3, seed=6)
  fx = _np_vgg(params, x.astype(np.float64), mean, std, "relu2_1")
  fy = _np_vgg(params, y.astype(np.float64), mean, std, "relu2_1")
  crit = (lambda a, b: np.abs(a - b).mean()) if criterion == "l1" else (
      lambda a, b: ((a - b) ** 2).mean())
  weights = {"conv1_2": 0.5, "relu2_1": 2.0}
  want = sum(w * crit(fx[n], fy[n]) for n, w in weights.items())
  got = jax.jit(lambda a, b: losses.perceptual_loss(vgg, a, b, layer_weights=weights,
                                                    criterion=criterion))(x, y)
  np.testing.assert_allclose(got, want, rtol=2e-4)

  def gram(f):
    n, h, w, c = f.shape
    f = f.reshape(n, h * w, c)
    return np.einsum("npc,npd->ncd", f, f) / (c * h * w)

  want = sum(w * crit(gram(fx[n]), gram(fy[n])) for n, w in weights.items())
  got = losses.style_loss(vgg, x, y, layer_weights=weights, criterion=criterion)
  np.testing.assert_allclose(got, want, rtol=2e-4)


def test_perceptual_short_names_and_gradient(small_vgg):
  vgg = small_vgg[0]
  x, y = _rand(1, 8, 8, 3, seed=7), _rand(1, 8, 8, 3, seed=8)
  a = losses.perceptual_loss(vgg, x, y, layer_weights={"2_1": 1.0}, before_activation=True)
  b = losses.perceptual_loss(vgg, x, y, layer_weights={"conv2_1": 1.0})
  c = losses.perceptual_loss(vgg, x, y, layer_weights={"2_1": 1.0}, before_activation=False)
  assert float(a) == float(b) and float(a) != float(c)
  # Target features carry no gradient; the loss is zero and stationary at x == y.
  gx, gy = jax.grad(lambda u, v: losses.perceptual_loss(vgg, u, v, layer_weights={"relu2_1": 1.}),
                    argnums=(0, 1))(x, y)
  assert np.abs(np.asarray(gx)).sum() > 0 and np.abs(np.asarray(gy)).sum() == 0
  assert float(losses.perceptual_loss(vgg, x, x, layer_weights={"relu2_1": 1.})) == 0.0
  with pytest.raises(ValueError, match="criterion"):
    losses.perceptual_loss(vgg, x, y, layer_weights={"relu2_1": 1.}, criterion="fro")
