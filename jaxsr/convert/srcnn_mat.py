"""The official SRCNN MATLAB models (``.mat``, Dong et al.) -> ``jaxsr.models.SRCNN``.

File layout (MAT v5, float64): ``weights_conv1 (f1*f1, n1)``, ``biases_conv1 (n1, 1)``,
``weights_conv2 (n1, f2*f2, n2)``, ``biases_conv2 (n2, 1)``, ``weights_conv3 (n2, f3*f3)``,
``biases_conv3 (1, 1)``. Kernels are stored column-major (MATLAB): filter ``o`` of layer 1 is
``weights_conv1[:, o].reshape(f1, f1, order='F')`` indexed ``[row, column]``, which is our
``kernel[kh, kw, 0, o]``; layer 2 ``weights_conv2[i, :, o]``; layer 3 ``weights_conv3[i, :]``.

The official test code (``SRCNN.m``) filters the bicubic-upscaled Y (MATLAB ``rgb2ycbcr`` / 255)
with ``imfilter(..., 'same', 'replicate')``: correlation, 'same' size, replicate borders. The
imported model is ``SRCNN(padding='edge', upsample=True)``: it does that MATLAB bicubic upscale
itself, so it maps LR Y to SR Y like every jaxsr model. The weights do not depend on the scale;
the scale is the one the model was trained for (the file name's ``xN``) unless given.
"""

from __future__ import annotations

import math
import os
import pathlib
import zlib
from typing import Any

import numpy as np

from jaxsr import color
from jaxsr import models
from jaxsr.convert import _common
from jaxsr.errors import InputError

_KEYS = ("weights_conv1", "biases_conv1", "weights_conv2", "biases_conv2", "weights_conv3",
         "biases_conv3")
_NAMES = {1: "srcnn_915", 3: "srcnn_935", 5: "srcnn"}


def read_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The arrays of a MAT file (no code is run: MAT files hold data only)."""
  import scipy.io  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: no such weights file")
  try:
    mat = scipy.io.loadmat(str(path))
  except (PermissionError, FileNotFoundError) as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
  except (ValueError, TypeError, OSError, NotImplementedError, IndexError, KeyError,
          EOFError, OverflowError, zlib.error, scipy.io.matlab.MatReadError) as e:
    # scipy reports a file cut short as OSError('could not read bytes'), MatReadError or
    # ValueError, and damaged compressed data as zlib.error.
    detail = str(e).splitlines()[0][:120] if str(e) else ""
    kind = type(e).__name__ if type(e).__name__ != "error" else f"{type(e).__module__}.error"
    raise InputError(f"{path}: truncated or corrupt MATLAB file ({kind}"
                     f"{': ' + detail if detail else ''})") from None
  return {k: np.asarray(v) for k, v in mat.items() if not k.startswith("__")}


def _side(n: int, path, key: str) -> int:
  f = int(round(math.sqrt(n)))
  if f * f != n:
    raise InputError(f"{path}: key {key!r}: {n} taps is not a square kernel")
  return f


def import_srcnn_mat(path: str | os.PathLike, *, scale: int | None = None,
                     model: str | None = None, **overrides: Any) -> _common.Imported:
  """Imports an official SRCNN ``.mat`` model.

  Args:
    path: the ``.mat`` file.
    scale: the scale to build the model for (default: the file name's ``xN``).
    model: a registry name of the SRCNN family (default: from the file's f2).
    **overrides: further SRCNN fields (e.g. ``padding='zero'``; the official results need the
      default ``'edge'``).

  Raises:
    InputError: unreadable file, a missing key or one whose shape does not fit.
  """
  mat = read_mat(path)
  missing = [k for k in _KEYS if k not in mat]
  if missing:
    raise InputError(f"{path}: missing key {missing[0]!r} (not an SRCNN model file?)")
  w1, w2, w3 = mat["weights_conv1"], mat["weights_conv2"], mat["weights_conv3"]
  if w1.ndim != 2 or w3.ndim != 2 or w2.ndim not in (2, 3):
    raise InputError(f"{path}: key 'weights_conv1/2/3' have unexpected ranks "
                     f"{w1.ndim}/{w2.ndim}/{w3.ndim}")
  if w2.ndim == 2:  # MATLAB drops a trailing singleton dimension
    mat["weights_conv2"] = w2 = w2[:, :, None]
  f1, n1 = _side(w1.shape[0], path, "weights_conv1"), w1.shape[1]
  f2, n2 = _side(w2.shape[1], path, "weights_conv2"), w2.shape[2]
  f3 = _side(w3.shape[1], path, "weights_conv3")
  if model is None:
    model = _NAMES.get(f2, "srcnn")
  if not model.startswith("srcnn"):
    raise InputError(f"{path}: an SRCNN .mat file cannot be imported as {model!r}")
  scale = _common.resolve_scale(path, requested=scale, structural=None, what="SRCNN")
  inferred = dict(f1=f1, f2=f2, f3=f3, n1=n1, n2=n2, channels=1)
  over = _common.registry_overrides(model, inferred, overrides)
  module = models.get_model(model, scale=scale, **over)
  if getattr(module, "channels", 1) != 1:
    raise InputError(f"{path}: SRCNN .mat models are 1-channel (Y); got channels="
                     f"{module.channels}")
  expected = _common.expected_shapes(module, 1)
  desc = _common.describe(model, scale, over)

  def conv1(a):  # (f1*f1, n1) -> (f1, f1, 1, n1)
    k = a.shape[0]
    f = int(round(math.sqrt(k)))
    return a.reshape(f, f, a.shape[1], order="F")[:, :, None, :]

  def conv2(a):  # (n1, f2*f2, n2) -> (f2, f2, n1, n2)
    f = int(round(math.sqrt(a.shape[1])))
    return a.reshape(a.shape[0], f, f, a.shape[2], order="F").transpose(1, 2, 0, 3)

  def conv3(a):  # (n2, f3*f3) -> (f3, f3, n2, 1)
    f = int(round(math.sqrt(a.shape[1])))
    return a.reshape(a.shape[0], f, f, order="F").transpose(1, 2, 0)[..., None]

  rules = {
      "weights_conv1": _common.Rule("conv1/kernel", conv1, lambda s: (s[0] * s[1], s[3])),
      "biases_conv1": _common.Rule("conv1/bias", lambda a: a[:, 0], lambda s: (s[0], 1)),
      "weights_conv2": _common.Rule("conv2/kernel", conv2, lambda s: (s[2], s[0] * s[1], s[3])),
      "biases_conv2": _common.Rule("conv2/bias", lambda a: a[:, 0], lambda s: (s[0], 1)),
      "weights_conv3": _common.Rule("conv3/kernel", conv3, lambda s: (s[2], s[0] * s[1])),
      "biases_conv3": _common.Rule("conv3/bias", lambda a: a[:, 0], lambda s: (s[0], 1)),
  }
  source = {k: mat[k] for k in _KEYS}
  params = _common.build_params(path, source, rules, expected, desc)
  return _common.Imported(model, scale, over, {"params": params}, str(path), "srcnn-mat",
                          luma=color.MATLAB,
                          notes=["input: MATLAB Y / 255; bicubic upscale and replicate padding "
                                 "inside the model (official SRCNN test code)"])
