"""LPIPS weights for ``jaxsr.metrics.lpips``: found on disk, read without torch, never downloaded.

``load_lpips_params(net='alex', *, backbone=None, linear=None)`` returns the pytree
``{'backbone': [{'kernel': [kh, kw, in, out], 'bias': [out]}, ...], 'linear': [[C], x5]}``:

* ``backbone``: torchvision's ImageNet state dict, ``alexnet-owt-7be5be79.pth`` (net
  ``'alex'``) or ``vgg16-397923af.pth`` (``'vgg'``), keys ``features.{i}.weight [out, in, kh,
  kw]`` / ``features.{i}.bias`` (classifier keys ignored). Default: where torch's hub keeps it,
  ``$TORCH_HOME/hub/checkpoints/`` (``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` or
  ``~/.cache/torch``).
* ``linear``: the ``lpips`` package's ``weights/v0.1/{alex,vgg}.pth`` (keys
  ``lin{k}.model.1.weight [1, C, 1, 1]``). Default: the copy in the installed ``lpips``
  package, found without importing it.

Files are read by ``jaxsr.convert.torch_io`` (a restricted unpickler: nothing in them runs).
A missing file or a key of the wrong shape raises one ``InputError`` line naming the file.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
from typing import Any

import numpy as np

from jaxsr.convert.torch_io import read_state_dict
from jaxsr.errors import InputError
from jaxsr.metrics import LPIPS_CHANNELS

__all__ = ["load_lpips_params", "BACKBONE_FILES", "backbone_path", "linear_path"]

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
# torchvision ``features`` indices of the convolutions, and their (in, out, k).
_CONV_INDEX = {"alex": (0, 3, 6, 8, 10),
               "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)}
_CONV_SHAPES = {
    "alex": ((3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)),
    "vgg": ((3, 64, 3), (64, 64, 3), (64, 128, 3), (128, 128, 3), (128, 256, 3), (256, 256, 3),
            (256, 256, 3), (256, 512, 3), (512, 512, 3), (512, 512, 3), (512, 512, 3),
            (512, 512, 3), (512, 512, 3)),
}


def _torch_hub_checkpoints() -> pathlib.Path:
  home = os.environ.get("TORCH_HOME")
  if not home:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = os.path.join(cache, "torch")
  return pathlib.Path(home) / "hub" / "checkpoints"


def backbone_path(net: str) -> pathlib.Path:
  """Where the torchvision file of ``net`` is looked for by default."""
  return _torch_hub_checkpoints() / BACKBONE_FILES[net]


def linear_path(net: str) -> pathlib.Path | None:
  """The installed ``lpips`` package's ``weights/v0.1/{net}.pth``, or None."""
  try:
    spec = importlib.util.find_spec("lpips")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  for root in spec.submodule_search_locations:
    candidate = pathlib.Path(root) / "weights" / "v0.1" / f"{net}.pth"
    if candidate.is_file():
      return candidate
  return None


def _read(path: pathlib.Path, field: str) -> dict[str, Any]:
  state = read_state_dict(path)
  if not isinstance(state, dict):
    raise InputError(f"{path}: not a state dict", field=field)
  return state


def load_lpips_params(net: str = "alex", *, backbone: str | os.PathLike | None = None,
                      linear: str | os.PathLike | None = None) -> dict[str, Any]:
  """The LPIPS-``net`` params pytree (see the module docstring); float32 numpy arrays.

  Raises:
    InputError: unknown ``net`` (field ``net``); a missing/unreadable file or a key missing or
      misshapen (field ``lpips_backbone`` / ``lpips_linear``), naming the file and where to put it.
  """
  if net not in BACKBONE_FILES:
    raise InputError(f"expected one of {sorted(BACKBONE_FILES)}, got {net!r}", field="net")
  if backbone is None:
    backbone = backbone_path(net)
    if not backbone.is_file():
      raise InputError(f"LPIPS-{net} needs torchvision's ImageNet weights {BACKBONE_FILES[net]}: "
                       f"put it in {backbone.parent} or pass its path (nothing is downloaded)",
                       field="lpips_backbone")
  backbone = pathlib.Path(backbone)
  if not backbone.is_file():
    raise InputError(f"{backbone}: no such file (torchvision's {BACKBONE_FILES[net]})",
                     field="lpips_backbone")
  if linear is None:
    linear = linear_path(net)
    if linear is None:
      raise InputError(f"LPIPS-{net} needs the lpips package's weights/v0.1/{net}.pth: "
                       f"'pip install --no-deps lpips' or pass its path", field="lpips_linear")
  linear = pathlib.Path(linear)
  if not linear.is_file():
    raise InputError(f"{linear}: no such file (the lpips package's weights/v0.1/{net}.pth)",
                     field="lpips_linear")

  state = _read(backbone, "lpips_backbone")
  layers = []
  for index, (cin, cout, k) in zip(_CONV_INDEX[net], _CONV_SHAPES[net]):
    w_key, b_key = f"features.{index}.weight", f"features.{index}.bias"
    weight, bias = state.get(w_key), state.get(b_key)
    if weight is None or bias is None:
      raise InputError(f"{backbone}: missing {w_key if weight is None else b_key} (not "
                       f"torchvision's {net} layout)", field="lpips_backbone")
    if tuple(weight.shape) != (cout, cin, k, k) or tuple(bias.shape) != (cout,):
      raise InputError(f"{backbone}: {w_key} has shape {tuple(weight.shape)}, expected "
                       f"{(cout, cin, k, k)}", field="lpips_backbone")
    layers.append({"kernel": np.ascontiguousarray(np.asarray(weight, np.float32)
                                                  .transpose(2, 3, 1, 0)),
                   "bias": np.asarray(bias, np.float32)})
  heads = _read(linear, "lpips_linear")
  lins = []
  for k, channels in enumerate(LPIPS_CHANNELS[net]):
    key = f"lin{k}.model.1.weight"
    value = heads.get(key)
    if value is None or value.size != channels:
      raise InputError(f"{linear}: {key} is missing or not of {channels} channels (not LPIPS-"
                       f"{net} v0.1 heads)", field="lpips_linear")
    lins.append(np.asarray(value, np.float32).reshape(channels))
  return {"backbone": layers, "linear": lins}
