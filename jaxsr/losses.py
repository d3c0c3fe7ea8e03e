"""Training losses: pure functions of arrays, jit/grad-able, mean-reduced unless stated.

Contract: images are ``[N, H, W, C]`` float in [0, 1]; every loss returns a float32 scalar (the
mean over all elements) unless it says otherwise. Losses know nothing of models, except that the
perceptual and style losses run the VGG19 feature extractor (``jaxsr.models.vgg.VGG19``) on the
VGG weights they are given as an argument (a pytree, see :func:`perceptual_loss`).

GAN losses take discriminator *logits* (no sigmoid) of real (HR) and fake (SR) images, each
``[N, 1]`` (any shape works; means are over all elements), and come in pairs:
``gan_d_loss(kind, real, fake)`` for the discriminator and ``gan_g_loss(kind, real, fake)`` for
the generator, with ``kind`` one of :data:`GAN_KINDS`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from jaxsr.models import vgg as vgg_lib

__all__ = [
    "GAN_KINDS", "charbonnier", "gan_d_loss", "gan_g_loss", "gram_matrix", "l1", "mse",
    "perceptual_loss", "pixel_loss", "style_loss", "vgg_features",
]

Array = jax.Array


def l1(x: Array, y: Array) -> Array:
  """Mean absolute error ``mean(|x - y|)`` (EDSR, RCAN, RRDB)."""
  return jnp.mean(jnp.abs(x - y))


def mse(x: Array, y: Array) -> Array:
  """Mean squared error ``mean((x - y)^2)`` (SRCNN, FSRCNN, ESPCN, VDSR)."""
  return jnp.mean(jnp.square(x - y))


def charbonnier(x: Array, y: Array, *, eps: float = 1e-3) -> Array:
  """Charbonnier (smooth L1) ``mean(sqrt((x - y)^2 + eps^2))`` (LapSRN)."""
  return jnp.mean(jnp.sqrt(jnp.square(x - y) + eps * eps))


_PIXEL = {"l1": l1, "mse": mse, "l2": mse, "charbonnier": charbonnier}


def pixel_loss(name: str) -> Callable[[Array, Array], Array]:
  """The pixel loss called ``name``: 'l1', 'mse' (or 'l2'), 'charbonnier'."""
  try:
    return _PIXEL[name]
  except KeyError:
    raise ValueError(f"unknown pixel loss {name!r}; expected one of {sorted(_PIXEL)}") from None


def _criterion(name: str) -> Callable[[Array, Array], Array]:
  if name == "l1":
    return l1
  if name in ("l2", "mse"):
    return mse
  raise ValueError(f"unknown feature criterion {name!r}; expected 'l1' or 'l2'")


# ----------------------------------------------------------------------------- VGG features


def _vgg_parts(vgg: Mapping[str, Any]) -> tuple[Any, Array, Array]:
  """``(params, input_mean, input_std)`` of a VGG weights pytree."""
  params = vgg["params"]
  mean = jnp.asarray(vgg.get("input_mean", vgg_lib.IMAGENET_MEAN), jnp.float32)
  std = jnp.asarray(vgg.get("input_std", vgg_lib.IMAGENET_STD), jnp.float32)
  return params, mean, std


def vgg_features(vgg: Mapping[str, Any], x: Array, *, layers: tuple[str, ...],
                 before_activation: bool = True, normalize: bool = True,
                 compute_dtype: Any = None) -> dict[str, Array]:
  """VGG19 features of ``x`` ``[N, H, W, 3]`` in [0, 1] at ``layers`` (full or short names).

  Args:
    vgg: ``{'params': VGG19 params, 'input_mean': [3], 'input_std': [3]}``; the VGG input is
      ``(x - input_mean) / input_std`` (defaults: the ImageNet statistics torchvision's weights
      expect; ``jaxsr.convert.vgg`` records the right ones for each source).
    x: images, float in [0, 1].
    layers: names such as ``'conv5_4'``/``'relu5_4'`` or short ``'5_4'``.
    before_activation: how short names resolve (``conv`` = before ReLU, ``relu`` = after).
    normalize: apply the input normalisation (False: ``x`` is already normalised).
    compute_dtype: run the network in this dtype (e.g. ``jnp.bfloat16``: the weights and the
      normalised input are cast); the features come back float32. None: as given.

  Returns:
    ``{resolved name: [N, h, w, C]}``.
  """
  params, mean, std = _vgg_parts(vgg)
  names = tuple(vgg_lib.resolve_layer(n, before_activation=before_activation) for n in layers)
  if normalize:
    x = (x - mean) / std
  model = vgg_lib.VGG19(layers=names, use_input_norm=False)
  if compute_dtype is None:
    return model.apply({"params": params}, x)
  params = jax.tree.map(lambda p: p.astype(compute_dtype), params)
  out = model.apply({"params": params}, x.astype(compute_dtype))
  return {k: v.astype(jnp.float32) for k, v in out.items()}


def perceptual_loss(vgg: Mapping[str, Any], x: Array, y: Array, *,
                    layer_weights: Mapping[str, float] = None, before_activation: bool = True,
                    criterion: str = "l1", normalize: bool = True,
                    compute_dtype: Any = None) -> Array:
  """VGG19 feature-reconstruction loss ``sum_l w_l * crit(phi_l(x), phi_l(y))``.

  ``crit`` is ``mean|a - b|`` ('l1', ESRGAN / BasicSR) or ``mean (a - b)^2`` ('l2', SRGAN's
  ``1/(W H) sum (phi(I_HR) - phi(G(I_LR)))^2`` per channel averaged). ``phi_l(y)`` (the target)
  is wrapped in ``stop_gradient``. ESRGAN: ``{'conv5_4': 1.0}`` before activation, L1;
  SRGAN "VGG54": ``{'relu5_4': 1.0}`` (after activation), L2 (the SRGAN paper additionally
  rescales the features by 1/12.75, i.e. ``weight = 1/12.75^2`` on the L2).

  Args:
    vgg: VGG weights pytree (see :func:`vgg_features`).
    x: prediction ``[N, H, W, 3]`` in [0, 1].
    y: target, same shape.
    layer_weights: ``{layer: weight}`` (default ``{'conv5_4': 1.0}``).
    before_activation: how short layer names resolve.
    criterion: 'l1' or 'l2'.
    normalize: apply the VGG input normalisation.
    compute_dtype: the VGG's compute dtype (:func:`vgg_features`); the criterion stays float32.

  Returns:
    Scalar float32.
  """
  layer_weights = dict(layer_weights or {"conv5_4": 1.0})
  crit = _criterion(criterion)
  names = {vgg_lib.resolve_layer(n, before_activation=before_activation): float(w)
           for n, w in layer_weights.items()}
  fx, fy = _features_pair(vgg, x, y, tuple(names), normalize, compute_dtype)
  return sum(w * crit(fx[n], fy[n]) for n, w in names.items())


def _features_pair(vgg, x, y, names, normalize, compute_dtype=None):
  # One VGG pass over [x; y] (half the dispatches), target features without gradient.
  both = vgg_features(vgg, jnp.concatenate([x, y], axis=0), layers=names, normalize=normalize,
                      compute_dtype=compute_dtype)
  n = x.shape[0]
  fx = {k: v[:n] for k, v in both.items()}
  fy = {k: jax.lax.stop_gradient(v[n:]) for k, v in both.items()}
  return fx, fy


def gram_matrix(features: Array) -> Array:
  """Gram matrices ``G[n, c, d] = sum_{h,w} F[n,h,w,c] F[n,h,w,d] / (C * H * W)``.

  ``features`` ``[N, H, W, C]`` -> ``[N, C, C]`` (Gatys et al.; normalised as BasicSR).
  """
  n, h, w, c = features.shape
  f = features.reshape(n, h * w, c)
  g = jnp.einsum("npc,npd->ncd", f, f, precision=jax.lax.Precision.HIGHEST)
  return g / (c * h * w)


def style_loss(vgg: Mapping[str, Any], x: Array, y: Array, *,
               layer_weights: Mapping[str, float] = None, before_activation: bool = True,
               criterion: str = "l1", normalize: bool = True,
               compute_dtype: Any = None) -> Array:
  """Gram-matrix style loss ``sum_l w_l * crit(gram(phi_l(x)), gram(phi_l(y)))``.

  Same arguments as :func:`perceptual_loss`; ``gram`` is :func:`gram_matrix` and ``crit`` the
  mean absolute ('l1') or squared ('l2') difference over all ``N * C * C`` entries.
  """
  layer_weights = dict(layer_weights or {"conv5_4": 1.0})
  crit = _criterion(criterion)
  names = {vgg_lib.resolve_layer(n, before_activation=before_activation): float(w)
           for n, w in layer_weights.items()}
  fx, fy = _features_pair(vgg, x, y, tuple(names), normalize, compute_dtype)
  return sum(w * crit(gram_matrix(fx[n]), gram_matrix(fy[n])) for n, w in names.items())


# ----------------------------------------------------------------------------- GAN losses

GAN_KINDS = ("vanilla", "lsgan", "hinge", "ragan")


def _check_kind(kind: str) -> None:
  if kind not in GAN_KINDS:
    raise ValueError(f"unknown GAN loss {kind!r}; expected one of {GAN_KINDS}")


def _bce_true(z: Array) -> Array:
  """``mean(-log sigmoid(z))`` = BCE of logits ``z`` against label 1 (stable)."""
  return jnp.mean(jax.nn.softplus(-z))


def _bce_false(z: Array) -> Array:
  """``mean(-log(1 - sigmoid(z)))`` = BCE of logits ``z`` against label 0 (stable)."""
  return jnp.mean(jax.nn.softplus(z))


def gan_d_loss(kind: str, real_logits: Array, fake_logits: Array) -> Array:
  """Discriminator loss (to minimise) from logits ``C(x_r)`` (real) and ``C(x_f)`` (fake).

  With ``s = sigmoid``:

  * 'vanilla' (SRGAN, min-max GAN as BCE): ``-E[log s(C(x_r))] - E[log(1 - s(C(x_f)))]``.
  * 'lsgan': ``E[(C(x_r) - 1)^2] + E[C(x_f)^2]``.
  * 'hinge': ``E[relu(1 - C(x_r))] + E[relu(1 + C(x_f))]``.
  * 'ragan' (ESRGAN eq. 8, relativistic average): with
    ``D_ra(a, b) = s(C(a) - E[C(b)])``:
    ``-E_r[log D_ra(x_r, x_f)] - E_f[log(1 - D_ra(x_f, x_r))]``. (The official ESRGAN and
    BasicSR code halve this sum; a constant factor, immaterial with Adam.)
  """
  _check_kind(kind)
  real = real_logits.astype(jnp.float32)
  fake = fake_logits.astype(jnp.float32)
  if kind == "vanilla":
    return _bce_true(real) + _bce_false(fake)
  if kind == "lsgan":
    return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
  return _bce_true(real - jnp.mean(fake)) + _bce_false(fake - jnp.mean(real))


def gan_g_loss(kind: str, real_logits: Array, fake_logits: Array) -> Array:
  """Generator adversarial loss (to minimise), the partner of :func:`gan_d_loss`.

  * 'vanilla' (SRGAN's non-saturating ``-log D(G(x))``): ``-E[log s(C(x_f))]``.
  * 'lsgan': ``E[(C(x_f) - 1)^2]``.
  * 'hinge': ``-E[C(x_f)]``.
  * 'ragan' (ESRGAN eq. 9, symmetric): ``-E_r[log(1 - D_ra(x_r, x_f))] - E_f[log D_ra(x_f, x_r)]``;
    gradients flow through both terms (the real logits come from the current discriminator
    on HR images; pass them with ``stop_gradient`` or not, they hold no generator parameters).
    The official ESRGAN/BasicSR code uses half this sum with weight 5e-3.

  ``real_logits`` is unused except by 'ragan'.
  """
  _check_kind(kind)
  real = real_logits.astype(jnp.float32)
  fake = fake_logits.astype(jnp.float32)
  if kind == "vanilla":
    return _bce_true(fake)
  if kind == "lsgan":
    return jnp.mean(jnp.square(fake - 1.0))
  if kind == "hinge":
    return -jnp.mean(fake)
  return _bce_false(real - jnp.mean(fake)) + _bce_true(fake - jnp.mean(real))
