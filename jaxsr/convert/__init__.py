"""Importers for published super-resolution weights.

``load_weights(path, *, model=None, scale=None)`` recognises the file by its content/suffix and
returns an :class:`Imported` (registry name, scale, config overrides, ``{'params': ...}``);
``Imported.save(directory)`` writes a jaxsr checkpoint that ``jaxsr.checkpoint.load_model``,
``eval.py --checkpoint``, ``jaxsr upscale --checkpoint`` and train.py fine-tuning read.

Supported files:

* ``.mat``: the official SRCNN MATLAB models (:mod:`jaxsr.convert.srcnn_mat`).
* ``.pb``: OpenCV dnn_superres FSRCNN / FSRCNN-small / ESPCN frozen graphs
  (:mod:`jaxsr.convert.opencv_pb`; needs tensorflow, a jaxsr dependency).
* ``.pth``/``.pt``: PyTorch state dicts in BasicSR's layouts (EDSR, RCAN, MSRResNet, RRDBNet
  incl. ESRGAN / Real-ESRGAN x4plus) and FSRCNN-pytorch's (:mod:`jaxsr.convert.pytorch`). They
  are read by a restricted unpickler (:mod:`jaxsr.convert.torch_io`): nothing in the file is
  executed, and torch need not be installed.
* ``.safetensors``: the same state dicts as ``.pth`` (any layout above, and SwinIR), read by
  :mod:`jaxsr.convert.safetensors_io` (its own header parser: no safetensors package, no
  torch); the same weights as ``.pth`` or ``.safetensors`` give identical variables.
* ``.param`` + ``.bin``: ncnn models (Real-ESRGAN RRDBNet / SRVGGNetCompact, Real-CUGAN,
  waifu2x; :mod:`jaxsr.convert.ncnn`); either file may be given, the other is found beside it.

Every importer checks every array's shape against the model and raises ``InputError`` naming
the first key that does not fit.

Example::

  from jaxsr import convert, inference
  imp = convert.load_weights('srcnn_9-5-5_imagenet_x3.mat')
  sr_y = inference.upscale(imp.module, imp.variables, lr_y)   # [h, w, 1] -> [3h, 3w, 1]
  imp.save('/tmp/srcnn_x3')
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from jaxsr.convert import safetensors_io
from jaxsr.convert import torch_io
from jaxsr.convert._common import Imported
from jaxsr.convert._common import scale_from_filename
from jaxsr.convert.lpips import load_lpips_params
from jaxsr.convert.ncnn import import_ncnn
from jaxsr.convert.opencv_pb import import_opencv_pb
from jaxsr.convert.pytorch import import_state_dict
from jaxsr.convert.pytorch import import_torch
from jaxsr.convert.srcnn_mat import import_srcnn_mat
from jaxsr.convert.torch_io import read_state_dict
from jaxsr.convert.vgg import convert_vgg19, load_vgg19, save_vgg19
from jaxsr.errors import InputError

__all__ = [
    "Imported", "convert_vgg19", "detect_format",
    "import_ncnn", "import_opencv_pb", "load_vgg19", "save_vgg19",
    "import_srcnn_mat", "import_state_dict", "import_torch", "load_lpips_params", "load_weights",
    "read_state_dict",
    "scale_from_filename",
]

FORMATS = ("mat", "pb", "pth", "ncnn", "safetensors")


def detect_format(path: str | os.PathLike) -> str:
  """``'mat'``, ``'pb'``, ``'pth'``, ``'safetensors'`` or ``'ncnn'`` from the file's first bytes
  (then its suffix).

  ncnn: a ``.param`` text graph (first line ``7767517``), or a ``.bin`` with a ``.param`` of the
  same name beside it.
  """
  path = pathlib.Path(path)
  head = torch_io.file_head(path, 128)
  if head.startswith(b"7767517"):
    return "ncnn"
  if path.suffix.lower() == ".bin" and path.with_suffix(".param").is_file():
    return "ncnn"
  if head.startswith(b"MATLAB") or head[:4] == b"\x00\x00\x00\x00" and path.suffix == ".mat":
    return "mat"
  if head[:2] == b"PK" or head[:2] == b"\x80\x02" or head[:1] == b"\x80":
    return "pth"
  if safetensors_io.is_safetensors(head):  # an 8-byte header length, then the JSON header
    return "safetensors"
  suffix = path.suffix.lower()
  if suffix == ".mat":
    return "mat"
  if suffix in (".pth", ".pt", ".ckpt", ".bin"):
    return "pth"
  if suffix == ".safetensors":
    return "safetensors"
  if suffix == ".pb":
    return "pb"
  raise InputError(f"{path}: unknown weights format (expected an SRCNN .mat, an OpenCV .pb, "
                   f"a PyTorch .pth or .safetensors, or an ncnn .param/.bin)")


def load_weights(path: str | os.PathLike, *, model: str | None = None, scale: int | None = None,
                 **overrides: Any) -> Imported:
  """Imports a published weights file (see the module docstring).

  Args:
    path: the file.
    model: a registry name of the file's model family (e.g. ``'srcnn'``, ``'fsrcnn'``,
      ``'edsr'``); default: recognised from the file. Sizes (blocks, features, f2, ...) always
      come from the file.
    scale: the scale; must match files whose architecture fixes it; for scale-free files
      (SRCNN, FSRCNN-pytorch) defaults to the file name's ``xN``.
    **overrides: further model configuration fields.

  Raises:
    InputError: unreadable or unsupported file, a family other than ``model``, a key whose
      shape does not fit.
  """
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  if model is not None:
    try:
      models.model_spec(model)
    except ValueError as e:
      raise InputError(str(e), field="model") from None
  fmt = detect_format(path)
  if fmt == "ncnn":
    return _load_ncnn(path, model=model, scale=scale, **overrides)
  if fmt == "mat":
    return import_srcnn_mat(path, scale=scale, model=model, **overrides)
  if fmt == "pb":
    return import_opencv_pb(path, scale=scale, model=model, **overrides)
  return import_torch(path, scale=scale, model=model, **overrides)


def _load_ncnn(path: str | os.PathLike, *, model: str | None, scale: int | None,
               **overrides: Any) -> Imported:
  """An ncnn model from its ``.param`` or ``.bin``; ``model``/``scale`` must agree with it."""
  path = pathlib.Path(path)
  param = path if path.suffix.lower() != ".bin" else path.with_suffix(".param")
  if overrides:
    raise InputError(f"{path}: ncnn graphs fix their configuration; unexpected override "
                     f"{next(iter(overrides))!r}", field="overrides")
  imp = import_ncnn(param)
  if model is not None and model.lower() != imp.name:
    raise InputError(f"{path}: this ncnn graph is a {imp.name}, not {model!r}", field="model")
  if scale is not None and int(scale) != imp.scale:
    raise InputError(f"{path}: this ncnn graph is x{imp.scale}, not x{scale}", field="scale")
  return imp
