"""VGG19 weights for the perceptual loss: convert a user-supplied file once, load it at training.

Nothing is downloaded. Two source layouts are read:

* torchvision's ``vgg19`` state dict (``vgg19-dcbb9e9d.pth``, the weights BasicSR/ESRGAN use):
  ``features.{N}.weight [out, in, 3, 3]`` and ``features.{N}.bias`` with the indices of
  ``jaxsr.models.vgg.TORCHVISION_INDEX``; classifier keys are ignored. Read by jaxsr's
  restricted unpickler (``jaxsr.convert.torch_io``; torch need not be installed). Input
  convention: RGB in [0, 1] normalised with the ImageNet mean/std.
* Keras' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (the Caffe-converted original
  weights; needs h5py; datasets under groups ``block{b}_conv{i}``) or a Keras 3
  ``VGG19(...).save_weights('*.weights.h5')`` file (``layers/conv2d[_k]/vars/{0,1}``, the 16
  convolutions in creation order); kernels ``[3, 3, in, out]``. Input convention (Keras'
  ``preprocess_input``, 'caffe' mode): BGR on 0..255 minus the BGR mean. The converter flips the
  first kernel's input channels to RGB and records ``input_mean = (123.68, 116.779, 103.939)/255``
  and ``input_std = 1/255``, so ``(x - mean) / std`` reproduces Keras' input exactly (also at the
  zero-padded borders).

The result is a ``.npz`` (``params/conv{b}_{i}/kernel|bias``, ``input_mean``, ``input_std``,
``source_format``) that :func:`load_vgg19` reads into the pytree ``jaxsr.losses.perceptual_loss``
takes: ``{'params': {...}, 'input_mean': [3], 'input_std': [3]}``. ``load_vgg19`` also accepts
the source files directly (converting in memory each time).

Command line::

  python -m jaxsr.convert.vgg vgg19-dcbb9e9d.pth ~/.jaxsr/vgg19.npz
  export JAXSR_VGG19=~/.jaxsr/vgg19.npz    # or config.vgg_weights=...
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Any

import numpy as np

from jaxsr import files
from jaxsr.errors import InputError
from jaxsr.models import vgg as vgg_lib

__all__ = [
    "ENV_VAR", "KERAS_MEAN_RGB", "convert_vgg19", "from_keras_h5", "from_torchvision",
    "load_vgg19", "missing_weights_message", "resolve_vgg_path", "save_vgg19",
]

ENV_VAR = "JAXSR_VGG19"
KERAS_MEAN_RGB = (123.68, 116.779, 103.939)  # Keras/Caffe VGG BGR mean, in RGB order, 0..255
CONV_NAMES: tuple[str, ...] = tuple(n for n in vgg_lib.LAYER_NAMES if n.startswith("conv"))


def _widths(name: str) -> tuple[int, int]:
  """(in, out) channels of VGG19 conv ``name``."""
  widths = (64, 128, 256, 512, 512)
  b, i = int(name[4]), int(name[6])
  out = widths[b - 1]
  cin = 3 if (b, i) == (1, 1) else (widths[b - 2] if i == 1 else out)
  return cin, out


def _check(params: dict[str, dict[str, np.ndarray]], source: str) -> None:
  if not params:
    raise InputError(f"{source}: no VGG19 convolution weights found")
  for k, name in enumerate(CONV_NAMES):
    if name not in params:
      if k == 0 or any(n in params for n in CONV_NAMES[k:]):
        raise InputError(f"{source}: VGG19 layer {name} is missing")
      break
    cin, out = _widths(name)
    got_k, got_b = params[name]["kernel"].shape, params[name]["bias"].shape
    if got_k != (3, 3, cin, out) or got_b != (out,):
      raise InputError(f"{source}: {name} has kernel {got_k} / bias {got_b}, expected "
                       f"{(3, 3, cin, out)} / {(out,)}; not VGG19")


def from_torchvision(state_dict: dict[str, Any], *, source: str = "<state dict>") -> dict:
  """VGG weights pytree from a torchvision ``vgg19`` state dict (numpy or torch tensors)."""
  params = {}
  for name in CONV_NAMES:
    idx = vgg_lib.TORCHVISION_INDEX[name]
    w, b = state_dict.get(f"features.{idx}.weight"), state_dict.get(f"features.{idx}.bias")
    if w is None or b is None:
      continue
    w, b = (np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a, np.float32)
            for a in (w, b))
    if w.ndim != 4:
      raise InputError(f"{source}: features.{idx}.weight has shape {w.shape}, expected 4-D")
    params[name] = {"kernel": np.ascontiguousarray(w.transpose(2, 3, 1, 0)), "bias": b}
  _check(params, source)
  return {"params": params, "input_mean": np.asarray(vgg_lib.IMAGENET_MEAN, np.float32),
          "input_std": np.asarray(vgg_lib.IMAGENET_STD, np.float32)}


def from_keras_h5(path: str | os.PathLike) -> dict:
  """VGG weights pytree from a Keras VGG19 ``.h5`` (Keras 2 notop file or Keras 3 weights)."""
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise InputError(f"{path}: reading Keras .h5 weights needs h5py (pip install h5py)") from None
  found: dict[str, dict[str, np.ndarray]] = {}

  keras3: dict[int, dict[str, np.ndarray]] = {}

  def visit(name: str, obj) -> None:
    if not isinstance(obj, h5py.Dataset):
      return
    parts = name.split("/")
    # Keras 3 ``save_weights``: layers/conv2d[_k]/vars/{0: kernel, 1: bias}, k in creation order.
    if len(parts) == 4 and parts[0] == "layers" and parts[2] == "vars":
      layer = parts[1]
      if layer == "conv2d" or (layer.startswith("conv2d_") and layer[7:].isdigit()):
        k = 0 if layer == "conv2d" else int(layer[7:])
        keras3.setdefault(k, {})[{"0": "kernel", "1": "bias"}.get(parts[3], "?")] = (
            np.asarray(obj[()], np.float32))
      return
    for part in parts:
      if part.startswith("block") and "_conv" in part:
        b, i = part[len("block"):].split("_conv", 1)
        if not (b.isdigit() and i.isdigit()):
          return
        layer = f"conv{b}_{i}"
        arr = np.asarray(obj[()], np.float32)
        kind = {4: "kernel", 1: "bias"}.get(arr.ndim)
        if kind:
          found.setdefault(layer, {})[kind] = arr
        return

  try:
    with h5py.File(path, "r") as f:
      f.visititems(visit)
  except OSError as e:
    raise InputError(f"{path}: cannot read HDF5 ({e})") from None
  if not found and keras3:
    found = {CONV_NAMES[i]: keras3[k] for i, k in enumerate(sorted(keras3)[:len(CONV_NAMES)])}
  params = {n: found[n] for n in CONV_NAMES if n in found and len(found[n]) == 2}
  if "conv1_1" in params:  # Keras/Caffe weights take BGR: make the first layer take RGB
    params["conv1_1"]["kernel"] = np.ascontiguousarray(params["conv1_1"]["kernel"][:, :, ::-1])
  _check(params, str(path))
  return {"params": params, "input_mean": np.asarray(KERAS_MEAN_RGB, np.float32) / 255.0,
          "input_std": np.full(3, 1.0 / 255.0, np.float32)}


def convert_vgg19(src: str | os.PathLike) -> dict:
  """Reads ``src`` (.pth/.pt torchvision layout, .h5 Keras layout, or a converted .npz)."""
  src = pathlib.Path(src).expanduser()
  if not src.is_file():
    raise InputError(f"{src}: no such VGG19 weights file")
  with open(src, "rb") as f:
    head = f.read(8)
  if head.startswith(b"\x89HDF"):
    return from_keras_h5(src)
  if src.suffix == ".npz":
    return _read_npz(src)
  from jaxsr.convert import torch_io  # pylint: disable=g-import-not-at-top
  obj = torch_io.read_state_dict(src)
  sd, _ = torch_io.select_state_dict(obj, src)
  out = from_torchvision(sd, source=str(src))
  return out


def save_vgg19(vgg: dict, dst: str | os.PathLike, *, source_format: str = "") -> pathlib.Path:
  """Writes a VGG weights pytree as the ``.npz`` :func:`load_vgg19` reads."""
  dst = pathlib.Path(dst).expanduser()
  if dst.suffix != ".npz":
    dst = dst.with_name(dst.name + ".npz")
  dst.parent.mkdir(parents=True, exist_ok=True)
  arrays = {f"params/{n}/{k}": np.asarray(v) for n, d in vgg["params"].items() for k, v in d.items()}
  arrays["input_mean"] = np.asarray(vgg["input_mean"], np.float32)
  arrays["input_std"] = np.asarray(vgg["input_std"], np.float32)
  arrays["source_format"] = np.asarray(source_format)
  return files.write_atomic(dst, lambda f: np.savez(f, **arrays))


def _read_npz(path: pathlib.Path) -> dict:
  try:
    with np.load(path, allow_pickle=False) as z:
      params: dict[str, dict[str, np.ndarray]] = {}
      for key in z.files:
        if key.startswith("params/"):
          _, layer, kind = key.split("/")
          params.setdefault(layer, {})[kind] = np.asarray(z[key], np.float32)
      out = {"params": params, "input_mean": np.asarray(z["input_mean"], np.float32),
             "input_std": np.asarray(z["input_std"], np.float32)}
  except (OSError, ValueError, KeyError) as e:
    raise InputError(f"{path}: not a jaxsr VGG19 .npz ({type(e).__name__}: {e})") from None
  _check(out["params"], str(path))
  return out


def missing_weights_message() -> str:
  """The one-line error shown when no VGG19 weights are configured."""
  return ("the perceptual loss needs VGG19 weights and none are configured: obtain torchvision's "
          "vgg19-dcbb9e9d.pth or Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, "
          "convert once with `python -m jaxsr.convert.vgg SRC ~/.jaxsr/vgg19.npz`, then set "
          f"config.vgg_weights or ${ENV_VAR} to that .npz")


def resolve_vgg_path(configured: str | None) -> str:
  """``configured`` (a path or 'random'), else ``$JAXSR_VGG19``; ``InputError`` if neither."""
  path = configured or os.environ.get(ENV_VAR)
  if not path:
    raise InputError(missing_weights_message())
  return str(path)


def load_vgg19(path: str | os.PathLike, *, up_to: str | None = None) -> dict:
  """Loads VGG weights (.npz from this module, or a .pth/.h5 source) as jnp-ready numpy.

  Args:
    path: the file.
    up_to: keep only the convolutions up to this layer (e.g. 'conv5_4' or 'relu2_2').

  Returns:
    ``{'params': {conv name: {'kernel', 'bias'}}, 'input_mean': [3], 'input_std': [3]}``.
  """
  vgg = convert_vgg19(path)
  if up_to is not None:
    last = vgg_lib.TORCHVISION_INDEX[up_to]
    vgg["params"] = {n: v for n, v in vgg["params"].items() if vgg_lib.TORCHVISION_INDEX[n] <= last}
    missing = [n for n in CONV_NAMES if vgg_lib.TORCHVISION_INDEX[n] <= last and n not in vgg["params"]]
    if missing:
      raise InputError(f"{path}: VGG19 layer {missing[0]} is missing (needed up to {up_to})")
  return vgg


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxsr.convert.vgg",
      description="Convert VGG19 weights (torchvision .pth or Keras .h5) for jaxsr's "
      "perceptual loss.")
  parser.add_argument("src", help="vgg19-dcbb9e9d.pth or vgg19_weights_tf_dim_ordering_tf_"
                      "kernels_notop.h5")
  parser.add_argument("dst", help="output .npz")
  args = parser.parse_args(argv)
  try:
    vgg = convert_vgg19(args.src)
    fmt = "keras-h5" if open(args.src, "rb").read(4) == b"\x89HDF" else "torchvision-pth"
    dst = save_vgg19(vgg, args.dst, source_format=fmt)
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {dst} ({len(vgg['params'])} conv layers, {fmt}); use it with "
        f"config.vgg_weights={dst} or {ENV_VAR}={dst}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
