"""NIQE (Mittal et al. 2013, "Making a 'completely blind' image quality analyzer") in JAX.

Contract (the conventions of BasicSR's ``calculate_niqe``, which reproduces the MATLAB release):
  * ``niqe(images, *, params)`` takes ``[..., H, W, C]`` float images in [0, ``max_value``]
    (``max_value=1.0``, the library convention, or 255.0), RGB for C = 3 or an already
    converted plane for C = 1, and returns one score per image, ``[...]`` (lower is better).
  * Per image: the plane in grey levels is made from RGB with MATLAB's luma
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1]; ``convert_to='y'``,
    the default, as BasicSR's ``bgr2ycbcr``) or OpenCV's ``0.299 R + 0.587 G + 0.114 B``
    (``convert_to='gray'``), both on 0..255; ``crop_border`` pixels are removed from every
    side; the plane is rounded to integers (half to even, as numpy); it is cut to whole
    96 x 96 blocks at the top left. Then, at two scales (the plane, and MATLAB's bicubic
    ``imresize`` by 1/2 of it, ``jaxsr.imresize``): local mean/contrast normalisation with the
    model's 7 x 7 window ('nearest' borders), and per 96 x 96 (then 48 x 48) block the 18
    AGGD features (shape chosen on the grid 0.2:0.001:10, as the MATLAB code). The 36-feature
    Gaussian fitted to the blocks (NaN rows left out, as ``nancov``) is compared with the
    pristine model: ``sqrt((mu_p - mu)^T ((S_p + S) / 2)^-1 (mu_p - mu))``.
  * ``params`` is the pristine-image model, data not code: ``load_niqe_params()`` reads
    ``niqe_pris_params.npz`` (``mu_pris_param [1, 36]``, ``cov_pris_param [36, 36]``,
    ``gaussian_window [7, 7]``) from a named file, ``$JAXSR_NIQE_PARAMS``, or the installed
    ``basicsr`` package (found without importing it).
  * Needs at least one 96 x 96 block after cropping (two for a covariance; with one the
    result is NaN, as in BasicSR). Computes in float32 (float64 when ``jax_enable_x64`` is on
    and float64 images are passed) and agrees with BasicSR's implementation within 0.005 on
    Set5/Set14 HR and bicubic x4 (ppt3, a slide with large flat areas, included). Two choices
    make that hold: the local mean/deviation are formed from differences to the centre pixel
    (``_local_stats``), so flat regions normalise to exactly 0 as in BasicSR's float64
    convolution whatever XLA fuses (``conv(x^2) - mu^2`` in float32 under ``jit`` is turned
    into FMAs that leave rounding noise there: ppt3 was off by 0.05 / 0.14); and the AGGD shape
    is picked against float64 decision points (``_aggd_thresholds``), the reference's float64
    argmin. What is left is BasicSR's own float32 rounding, chiefly its torch float32
    ``imresize`` for the second scale (its BLAS accumulation differs from jaxsr's halving by
    up to 6e-5 grey levels on most pixels; on ppt3's near-flat areas that flips a few signs:
    0.005 of its bicubic score, while jaxsr's features on BasicSR's own half plane agree within
    0.0002), then its float32 ``conv(x^2) - mu^2`` (up to 0.08 of noise in sigma where jaxsr's
    sigma is exact; 0.0002 on ppt3).
  * Static shapes: the work after the crop depends only on the number of blocks, so the inner
    computation is compiled once per block grid (images of 480 x 500 and 500 x 520 share one);
    ``jax.jit`` of ``niqe`` itself compiles per input shape. Not bucketed/masked: differently
    sized images are scored one shape at a time (see README "Perceptual quality measures").
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import pathlib
import sys
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.errors import InputError
from jaxsr.imresize import weights_and_indices

__all__ = ["niqe", "load_niqe_params", "NIQE_ENV_VAR", "NIQE_BLOCK"]

NIQE_ENV_VAR = "JAXSR_NIQE_PARAMS"
NIQE_BLOCK = 96
_FILE = "niqe_pris_params.npz"
_KEYS = {"mu_pris_param": (36,), "cov_pris_param": (36, 36), "gaussian_window": (7, 7)}
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _basicsr_file() -> pathlib.Path | None:
  """BasicSR's copy of the model, located without importing basicsr (it imports torchvision)."""
  loaded = sys.modules.get("basicsr")
  if loaded is not None and getattr(loaded, "__path__", None):
    roots = list(loaded.__path__)  # imported already (or a stand-in without a spec)
  else:
    try:
      spec = importlib.util.find_spec("basicsr")
    except (ImportError, ValueError):
      return None
    if spec is None or not spec.submodule_search_locations:
      return None
    roots = list(spec.submodule_search_locations)
  for root in roots:
    candidate = pathlib.Path(root) / "metrics" / _FILE
    if candidate.is_file():
      return candidate
  return None


def missing_params_message() -> str:
  return (f"NIQE needs its pristine-image model {_FILE}: pass its path, set ${NIQE_ENV_VAR}, or "
          f"'pip install basicsr' (it ships basicsr/metrics/{_FILE})")


def load_niqe_params(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
  """Reads NIQE's pristine-image model.

  Args:
    path: an ``.npz`` with ``mu_pris_param``, ``cov_pris_param``, ``gaussian_window`` (BasicSR's
      ``niqe_pris_params.npz``, the MATLAB release's ``modelparameters.mat`` values). Default:
      ``$JAXSR_NIQE_PARAMS``, else the copy in the installed ``basicsr`` package.

  Returns:
    ``{'mu_pris_param': [36], 'cov_pris_param': [36, 36], 'gaussian_window': [7, 7]}`` float64.

  Raises:
    InputError (field ``niqe_params``): no file found, unreadable, or a key missing/misshapen.
  """
  if path is None and os.environ.get(NIQE_ENV_VAR):
    path = os.environ[NIQE_ENV_VAR]
  if path is None:
    found = _basicsr_file()
    if found is None:
      raise InputError(missing_params_message(), field="niqe_params")
    path = found
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: no such file ({missing_params_message()})", field="niqe_params")
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: np.asarray(data[k], np.float64) for k in data.files if k in _KEYS}
  except Exception as e:  # noqa: BLE001  (zip/npz/pickle errors of a damaged file)
    raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e})",
                     field="niqe_params") from None
  out = {}
  for key, shape in _KEYS.items():
    if key not in arrays:
      raise InputError(f"{path}: missing array {key!r}", field="niqe_params")
    value = arrays[key]
    if value.size != math.prod(shape):
      raise InputError(f"{path}: {key} has shape {value.shape}, expected {shape}",
                       field="niqe_params")
    out[key] = value.reshape(shape)
  window = out["gaussian_window"]
  factor = window[:, 3] / math.sqrt(window[3, 3]) if window[3, 3] > 0 else np.zeros(7)
  if not np.allclose(np.outer(factor, factor), window, rtol=0, atol=1e-9 * np.abs(window).max()):
    raise InputError(f"{path}: gaussian_window is not separable (an outer product u u^T)",
                     field="niqe_params")
  try:
    out["whitening"] = whitening(out)
  except InputError as e:
    raise InputError(f"{path}: {e.message}", field="niqe_params") from None
  return out


def whitening(params: Mapping[str, Any]) -> np.ndarray:
  """``W [36, 36]`` float64 with ``W cov_pris_param W^T = I`` (``Lambda^-1/2 V^T`` of its
  eigendecomposition), computed on the host; ``params['whitening']`` is used when present.

  Raises:
    InputError: ``cov_pris_param`` is a traced value (pass ``params['whitening']`` under
      ``jit``) or not positive definite.
  """
  if "whitening" in params:
    return params["whitening"]
  cov = params["cov_pris_param"]
  if isinstance(cov, jax.core.Tracer):
    raise InputError("under jit, pass params with 'whitening' (load_niqe_params adds it)",
                     field="params")
  cov = np.asarray(cov, np.float64)
  values, vectors = np.linalg.eigh((cov + cov.T) / 2)
  if values.min() <= 0:
    raise InputError("cov_pris_param is not positive definite", field="params")
  return vectors.T / np.sqrt(values)[:, None]


@functools.lru_cache(maxsize=None)
def _aggd_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """The shape grid and, per grid point, r(a), sqrt(G(1/a)/G(3/a)), G(2/a)/G(1/a) (float64;
  r(a) with ``scipy.special.gamma`` as the reference, so the grid search sees the same table)."""
  from scipy import special  # pylint: disable=import-outside-toplevel  (a jax dependency)
  gam = np.arange(0.2, 10.001, 0.001)
  inv = np.reciprocal(gam)
  r_gam = np.square(special.gamma(inv * 2)) / (special.gamma(inv) * special.gamma(inv * 3))
  lg = np.vectorize(math.lgamma)
  g1, g2, g3 = lg(1.0 / gam), lg(2.0 / gam), lg(3.0 / gam)
  beta_factor = np.exp(0.5 * (g1 - g3))
  mean_factor = np.exp(g2 - g1)
  return gam, r_gam, beta_factor, mean_factor


@functools.lru_cache(maxsize=None)
def _aggd_thresholds(dtype: str) -> np.ndarray:
  """Decision points of the grid search, as ``dtype`` values ``t`` with ``x > t`` exactly when
  the float64 midpoint ``(r_i + r_{i+1}) / 2 < x``.

  r(a) increases along the grid, so the float64 ``argmin_i (r_i - x)^2`` of the reference is the
  number of midpoints below ``x``. Comparing with midpoints rounded down to ``dtype`` makes
  that choice exactly the float64 one for any ``dtype`` value ``x``, where ``argmin`` of the
  squared distances computed in float32 flips between neighbouring shapes.
  """
  _, r_gam, _, _ = _aggd_tables()
  mid = (r_gam[:-1] + r_gam[1:]) / 2
  t = mid.astype(dtype)
  above = t.astype(np.float64) > mid
  t[above] = np.nextafter(t[above], np.array(-np.inf, dtype))
  return t


def _sum2(x: jax.Array) -> jax.Array:
  """Sum over the last two axes, rows first (keeps float32 rounding small)."""
  return jnp.sum(jnp.sum(x, axis=-1), axis=-1)


def _aggd(block: jax.Array):
  """(alpha, beta_left, beta_right) of a 2-D block; NaN where a side is empty (as numpy)."""
  gam, _, beta_factor, mean_factor = (jnp.asarray(t, block.dtype) for t in _aggd_tables())
  thresholds = jnp.asarray(_aggd_thresholds(np.dtype(block.dtype).name))
  sq = block * block
  neg, pos = block < 0, block > 0
  left = jnp.sqrt(_sum2(jnp.where(neg, sq, 0)) / _sum2(neg.astype(block.dtype)))
  right = jnp.sqrt(_sum2(jnp.where(pos, sq, 0)) / _sum2(pos.astype(block.dtype)))
  n = block.shape[-1] * block.shape[-2]
  mean_abs = _sum2(jnp.abs(block)) / n
  gammahat = left / right
  rhat = mean_abs * mean_abs / (_sum2(sq) / n)
  rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
  index = jnp.sum(thresholds < rhatnorm)  # = the float64 argmin of (r_gam - rhatnorm)^2
  index = jnp.where(jnp.isnan(rhatnorm), 0, index)  # numpy's argmin of all-NaN is 0
  return gam[index], left * beta_factor[index], right * beta_factor[index], mean_factor[index]


def _block_features(block: jax.Array) -> jax.Array:
  """The 18 features of one block ``[b, b]``."""
  # The block itself and its products with the four neighbours (circular shifts, as np.roll).
  fields = jnp.stack([block] + [block * jnp.roll(block, s, axis=(0, 1)) for s in _SHIFTS])
  alpha, bl, br, mean_factor = jax.vmap(_aggd)(fields)
  pairs = jnp.stack([alpha[1:], (br[1:] - bl[1:]) * mean_factor[1:], bl[1:], br[1:]], axis=1)
  return jnp.concatenate([jnp.stack([alpha[0], (bl[0] + br[0]) / 2]), pairs.reshape(-1)])


def _local_stats(plane: jax.Array, window: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Local mean and standard deviation of ``plane [H, W]`` under the separable ``window``
  (``u u^T``, ``load_niqe_params`` checks it) with edge replication: BasicSR's
  ``scipy.ndimage.convolve(..., mode='nearest')`` of the plane and of its square.

  Computed about the centre pixel ``x``: with ``d = x_k - x`` (exact where neighbours are
  equal), ``mu = x + sum w_k d_k`` and ``var = sum w_k d_k^2 - (sum w_k d_k)^2``, in two 1-D
  passes (``d = (x_k - x_col) + (x_col - x)`` through the pixel of the same column in the
  centre row). No difference of two products is ever formed, so the result does not depend on
  whether the compiler fuses a multiply into the following add (XLA contracts
  ``a * a - b * b`` into an FMA on CPU and GPU, leaving the rounding error of ``b * b`` where
  ``a == b``): a flat region gives exactly ``mu = x`` and ``var = 0``, as BasicSR's float64
  convolution does, so NIQE's flat blocks (normalised values exactly 0, on neither side of the
  AGGD) come out as in the reference. The textbook ``conv(x^2) - conv(x)^2`` in float32 hands
  those blocks rounding noise of either sign, which moved ppt3's score by up to 0.14.
  """
  c = window.shape[0] // 2
  u = window[:, c] / jnp.sqrt(window[c, c])  # symmetric: scipy's flip changes nothing
  k = u.shape[0]
  h, w = plane.shape
  padded = jnp.pad(plane, c, mode="edge")
  # Vertical pass, per pixel of the column-padded plane: sum u_i e and sum u_i e^2, e the
  # difference to the pixel of the same column in the centre row.
  mid = padded[c: c + h]
  a1 = a2 = None
  for i in range(k):
    e = padded[i: i + h] - mid
    ue = u[i] * e
    a1 = ue if a1 is None else a1 + ue
    a2 = ue * e if a2 is None else a2 + ue * e
  total = jnp.sum(u)
  first = second = None
  for j in range(k):
    e = mid[:, j: j + w] - plane  # column pixel in the centre row minus the centre pixel
    b1, b2 = a1[:, j: j + w], a2[:, j: j + w]
    t1 = u[j] * (b1 + total * e)
    t2 = u[j] * (b2 + e * (2 * b1 + total * e))
    first = t1 if first is None else first + t1
    second = t2 if second is None else second + t2
  mu = plane + first
  var = second - first * first
  return mu, jnp.sqrt(jnp.abs(var))


def _halve_axis(x: jax.Array, axis: int) -> jax.Array:
  """MATLAB ``imresize(x, 0.5)`` (bicubic, antialiased) along one axis of even length, in the
  centred form ``x_c + sum_p w_p (x_p - x_c)`` (``x_c`` the heaviest tap) that keeps a constant
  region exactly constant whatever XLA fuses (see ``_local_stats``)."""
  n = x.shape[axis]
  weights, indices = weights_and_indices(n, n // 2, 0.5, antialiasing=True)
  centre = indices[np.arange(n // 2), np.argmax(weights, axis=1)]
  x_c = jnp.take(x, jnp.asarray(centre), axis=axis)
  bshape = [1] * x.ndim
  bshape[axis] = n // 2
  acc = None
  for p in range(weights.shape[1]):
    w = jnp.asarray(weights[:, p], x.dtype).reshape(bshape)
    term = w * (jnp.take(x, jnp.asarray(indices[:, p]), axis=axis) - x_c)
    acc = term if acc is None else acc + term
  return x_c + acc


def _halve(plane: jax.Array) -> jax.Array:
  """``jaxsr.imresize(plane, 0.5)`` of an ``[H, W]`` plane with even sides (rows first)."""
  return _halve_axis(_halve_axis(plane, 0), 1)


def _scale_features(plane: jax.Array, window: jax.Array, block: int) -> jax.Array:
  """``[blocks, 18]`` features of a plane whose sides are multiples of ``block``."""
  mu, sigma = _local_stats(plane, window)
  normalised = (plane - mu) / (sigma + 1)
  h, w = plane.shape
  blocks = normalised.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
  return jax.vmap(_block_features)(blocks.reshape(-1, block, block))


def _niqe_plane(plane: jax.Array, mu_p: jax.Array, whiten: jax.Array,
                window: jax.Array) -> jax.Array:
  """NIQE of one rounded grey-level plane ``[H, W]`` with H, W multiples of 96."""
  f1 = _scale_features(plane, window, NIQE_BLOCK)
  # BasicSR resizes plane / 255 and multiplies back by 255; halving the grey levels directly is
  # the same to float32 rounding, and its last operation is an add: a trailing ``* 255`` would
  # be fused into the differences of ``_local_stats`` (FMA) and break its exact flat regions.
  half = _halve(plane)
  f2 = _scale_features(half, window, NIQE_BLOCK // 2)
  return _fit(jnp.concatenate([f1, f2], axis=1), mu_p, whiten)


def _fit(feats: jax.Array, mu_p: jax.Array, whiten: jax.Array) -> jax.Array:
  """NIQE from the ``[blocks, 36]`` features: the distance of their Gaussian to the model's."""
  mu_d = jnp.nanmean(feats, axis=0)
  ok = ~jnp.any(jnp.isnan(feats), axis=1)
  count = jnp.sum(ok).astype(feats.dtype)
  mean_ok = jnp.sum(jnp.where(ok[:, None], feats, 0), axis=0) / count
  centred = jnp.where(ok[:, None], feats - mean_ok, 0)
  # In the pristine model's whitened coordinates (``whiten @ cov_p @ whiten.T = I``, computed in
  # float64 by ``whitening``) the matrix to invert is ``(I + Z^T Z) / 2`` with ``Z`` the
  # whitened, centred features over sqrt(n - 1). With the SVD ``Z = U S V^T`` the form is
  # ``2 sum_i (v_i . d)^2 / (1 + s_i^2)``: positive terms, no matrix squared or inverted, so
  # float32 keeps it to about 1e-5 where a float32 solve with ``(cov_p + cov_d) / 2`` (its
  # condition number reaches 2e5) loses whole hundredths of NIQE.
  hi = jax.lax.Precision.HIGHEST
  z = jnp.matmul(centred, whiten.T, precision=hi) / jnp.sqrt(count - 1)
  _, s, vt = jnp.linalg.svd(z, full_matrices=True)
  s = jnp.zeros((vt.shape[0],), s.dtype).at[: s.shape[0]].set(s)
  proj = jnp.matmul(vt, jnp.matmul(whiten, mu_p - mu_d, precision=hi), precision=hi)
  q = 2 * jnp.sum(proj * proj / (1 + s * s))
  return jnp.sqrt(q)


@functools.partial(jax.jit, static_argnames=("max_value", "convert_to"))
def _niqe_core(images: jax.Array, mu_p: jax.Array, whiten: jax.Array, window: jax.Array, *,
               max_value: float, convert_to: str) -> jax.Array:
  """``[B, H, W, C]`` block-cropped images -> ``[B]``."""
  x = images / max_value if max_value != 1.0 else images
  if x.shape[-1] == 3:
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    if convert_to == "y":
      # BasicSR's order of operations (a dot over B, G, R, then +16, /255 stored in float32,
      # *255): the rounding below sees the same float32 value in all but rare ties.
      plane = ((24.966 * b + 128.553 * g + 65.481 * r) + 16.0) / 255.0 * 255.0
    else:
      plane = (0.299 * r + 0.587 * g + 0.114 * b) * 255.0
  else:
    plane = x[..., 0] * 255.0
  plane = jnp.round(plane)
  return jax.vmap(lambda p: _niqe_plane(p, mu_p, whiten, window))(plane)


def niqe(images: jax.Array, *, params: Mapping[str, Any], max_value: float = 1.0,
         crop_border: int = 0, convert_to: str = "y", input_order: str = "HWC") -> jax.Array:
  """NIQE per image (BasicSR ``calculate_niqe`` conventions; see the module docstring).

  Args:
    images: ``[..., H, W, C]`` (``input_order='HWC'``) or ``[..., C, H, W]`` (``'CHW'``), float
      in [0, max_value]; C = 3 (RGB) or 1 (a grey/Y plane used as it is).
    params: the pristine model from ``load_niqe_params`` (numpy or jax arrays).
    max_value: 1.0 for [0, 1] images, 255.0 for grey levels.
    crop_border: pixels removed from each side before scoring (BasicSR's ``crop_border``).
    convert_to: ``'y'`` (MATLAB luma, BasicSR's default) or ``'gray'`` (OpenCV grey).
    input_order: ``'HWC'`` or ``'CHW'``.

  Returns:
    ``[...]`` float scores (lower is more natural).

  Raises:
    InputError: a bad option, channel count, or an image smaller than 96 x 96 after cropping.
  """
  if convert_to not in ("y", "gray"):
    raise InputError(f"expected 'y' or 'gray', got {convert_to!r}", field="convert_to")
  if input_order not in ("HWC", "CHW"):
    raise InputError(f"expected 'HWC' or 'CHW', got {input_order!r}", field="input_order")
  if crop_border < 0:
    raise InputError(f"must be >= 0, got {crop_border}", field="crop_border")
  images = jnp.asarray(images)
  if images.ndim < 3:
    raise InputError(f"expected [..., H, W, C], got shape {images.shape}", field="images")
  if input_order == "CHW":
    images = jnp.moveaxis(images, -3, -1)
  if images.shape[-1] not in (1, 3):
    raise InputError(f"expected 1 or 3 channels, got shape {images.shape}", field="images")
  dtype = jnp.result_type(images.dtype, jnp.float32)
  images = images.astype(dtype)
  h, w = images.shape[-3] - 2 * crop_border, images.shape[-2] - 2 * crop_border
  nh, nw = h // NIQE_BLOCK, w // NIQE_BLOCK
  if nh < 1 or nw < 1:
    raise InputError(f"NIQE needs at least {NIQE_BLOCK}x{NIQE_BLOCK} pixels after cropping "
                     f"{crop_border} from each side; got {max(h, 0)}x{max(w, 0)}",
                     field="images")
  top = crop_border
  images = images[..., top: top + nh * NIQE_BLOCK, top: top + nw * NIQE_BLOCK, :]
  batch = images.shape[:-3]
  flat = images.reshape((-1,) + images.shape[-3:])
  mu_p = jnp.asarray(params["mu_pris_param"], dtype).reshape(-1)
  whiten = jnp.asarray(whitening(params), dtype)
  window = jnp.asarray(params["gaussian_window"], dtype)
  out = _niqe_core(flat, mu_p, whiten, window, max_value=float(max_value), convert_to=convert_to)
  return out.reshape(batch)
