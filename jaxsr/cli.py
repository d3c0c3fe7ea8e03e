"""The ``jaxsr`` command: upscale image files with a model, and import published weights.

  jaxsr upscale INPUT... (--checkpoint DIR | --model NAME --weights FILE) --output DIR
                [--scale N] [--tile N] [--tile-overlap N] [--self-ensemble] [--batch-size N]
  jaxsr convert FILE --output DIR [--model NAME] [--scale N]

``upscale`` reads uint8 RGB or greyscale images (PNG, JPEG, BMP, ...; INPUT may also be a
folder), super-resolves them with ``jaxsr.inference.upscale`` (size buckets: few compilations;
``--tile`` for large images; ``--self-ensemble`` averages the 8 flips/rotations) and writes
``OUTPUT/<name>_x<scale>.png``.

RGB models get the RGB image (a grey image is replicated to 3 channels, and the output's mean
channel is written as grey). Y-channel models (SRCNN, FSRCNN, ESPCN, VDSR) upscale only the
luma: the image is converted to YCbCr, the model upscales Y / 255, Cb and Cr are upscaled with
MATLAB bicubic, and the result is converted back to RGB. The YCbCr used is the one the weights
were trained on (recorded by ``jaxsr convert`` in the checkpoint): MATLAB ``rgb2ycbcr``
(16..235, the default and the ``y`` evaluation protocol's) or, for OpenCV dnn_superres models,
OpenCV's full-range ``COLOR_RGB2YCrCb``. A grey image is its own Y.

``convert`` imports a published file (``jaxsr.convert``: SRCNN .mat, OpenCV .pb, BasicSR /
FSRCNN-pytorch .pth) and saves it as a jaxsr checkpoint for ``--checkpoint`` (here, in eval.py,
and for fine-tuning with train.py).

Mistakes (missing or corrupt files, unknown models, shapes that do not fit) end with a one-line
``jaxsr: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from jaxsr import runtime  # pylint: disable=g-import-not-at-top
from jaxsr.errors import InputError  # pylint: disable=g-import-not-at-top

__all__ = ["main", "rgb_to_ycbcr", "ycbcr_to_rgb", "upscale_image"]

# MATLAB rgb2ycbcr (R, G, B in [0, 1] -> Y 16..235, Cb/Cr 16..240).
_MATLAB = (np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                     [112.0, -93.786, -18.214]]), np.array([16.0, 128.0, 128.0]), 1.0 / 255.0)
# OpenCV COLOR_RGB2YCrCb on uint8, reordered to (Y, Cb, Cr): full range, delta 128.
_OPENCV = (np.array([[0.299, 0.587, 0.114], [-0.299 * 0.564, -0.587 * 0.564, 0.886 * 0.564],
                     [0.701 * 0.713, -0.587 * 0.713, -0.114 * 0.713]]),
           np.array([0.0, 128.0, 128.0]), 1.0)


def _luma_tables(luma: str | None):
  return _OPENCV if luma == "opencv" else _MATLAB


def rgb_to_ycbcr(rgb: np.ndarray, *, luma: str | None = "matlab") -> np.ndarray:
  """uint8 (or 0..255 float) RGB ``[H, W, 3]`` -> float64 YCbCr ``[H, W, 3]`` in 0..255."""
  m, offset, unit = _luma_tables(luma)
  return np.asarray(rgb, np.float64) * unit @ m.T + offset


def ycbcr_to_rgb(ycbcr: np.ndarray, *, luma: str | None = "matlab") -> np.ndarray:
  """Inverse of :func:`rgb_to_ycbcr`: float64 RGB in 0..255 (not clipped)."""
  m, offset, unit = _luma_tables(luma)
  return (np.asarray(ycbcr, np.float64) - offset) @ np.linalg.inv(m).T / unit


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def upscale_image(image: np.ndarray, module, variables, *, scale: int, luma: str | None = None,
                  **inference_kw: Any) -> np.ndarray:
  """Super-resolves one uint8 ``[H, W, 1|3]`` image; returns uint8 ``[sH, sW, same C]``.

  See the module docstring for how 1-channel (Y) models treat colour images.
  """
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  channels = int(getattr(module, "channels", 3))

  def run(x: np.ndarray) -> np.ndarray:
    return inference.upscale(module, variables, x.astype(np.float32), scale=scale,
                             **inference_kw).astype(np.float64)

  if channels == 3:
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    sr = run(rgb / 255.0) * 255.0
    return _to_uint8(sr.mean(-1, keepdims=True) if image.shape[-1] == 1 else sr)
  if channels != 1:
    raise InputError(f"models with {channels} channels are not supported by upscale")
  if image.shape[-1] == 1:
    return _to_uint8(run(image / 255.0) * 255.0)
  ycbcr = rgb_to_ycbcr(image, luma=luma)
  y = run(ycbcr[..., :1] / 255.0) * 255.0
  chroma = imresize.imresize_np(ycbcr[..., 1:], scale)
  return _to_uint8(ycbcr_to_rgb(np.concatenate([y, chroma], -1), luma=luma))


def _inputs(paths: Sequence[str]) -> list[pathlib.Path]:
  from jaxsr.data.images import list_images  # pylint: disable=g-import-not-at-top

  files: list[pathlib.Path] = []
  for p in map(pathlib.Path, paths):
    if p.is_dir():
      files += list_images(p)
    elif p.is_file():
      files.append(p)
    else:
      raise InputError(f"{p}: no such file or folder")
  return files


def _load(args) -> tuple[Any, Any, int, str | None, str]:
  """(module, variables, scale, luma, description) from --checkpoint or --model/--weights."""
  if args.checkpoint and args.weights:
    raise InputError("give either --checkpoint or --weights, not both")
  if args.checkpoint:
    from jaxsr import checkpoint  # pylint: disable=g-import-not-at-top

    try:
      module, variables, meta = checkpoint.load_model(args.checkpoint)
    except checkpoint.CheckpointError as e:
      raise InputError(f"--checkpoint: {e}") from None
    if args.scale is not None and args.scale != module.scale:
      raise InputError(f"--checkpoint {args.checkpoint} is a x{module.scale} model, not "
                       f"x{args.scale}")
    luma = (meta.get("imported") or {}).get("luma") or "matlab"
    return module, variables, int(module.scale), luma, meta["model"]["name"]
  if args.weights:
    from jaxsr import convert  # pylint: disable=g-import-not-at-top

    if not args.model:
      raise InputError("--weights needs --model (the registry name of the file's model, e.g. "
                       "srcnn, fsrcnn, espcn, edsr, rcan, msrresnet, rrdbnet)")
    imp = convert.load_weights(args.weights, model=args.model, scale=args.scale)
    return imp.module, imp.variables, imp.scale, imp.luma or "matlab", imp.name
  raise InputError("give a model: --checkpoint DIR, or --model NAME --weights FILE")


def _cmd_upscale(args) -> int:
  from jaxsr.data.images import read_image  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if args.tile is not None and not 0 <= args.tile_overlap < args.tile:
    raise InputError(f"--tile {args.tile} must exceed --tile-overlap {args.tile_overlap}")
  if args.batch_size < 1:
    raise InputError("--batch-size must be >= 1")
  files = _inputs(args.inputs)
  out_dir = pathlib.Path(args.output)
  if out_dir.exists() and not out_dir.is_dir():
    raise InputError(f"--output {out_dir}: exists and is not a folder")
  module, variables, scale, luma, name = _load(args)
  targets = [out_dir / f"{f.stem}_x{scale}.png" for f in files]
  seen: dict[pathlib.Path, pathlib.Path] = {}
  for f, t in zip(files, targets):
    if t in seen:
      raise InputError(f"{f} and {seen[t]} would both be written to {t}")
    seen[t] = f
  images = [read_image(f) for f in files]  # every input is checked before any work
  out_dir.mkdir(parents=True, exist_ok=True)
  kw = dict(tile=args.tile, tile_overlap=args.tile_overlap, self_ensemble=args.self_ensemble,
            batch_size=args.batch_size)
  for f, t, image in zip(files, targets, images):
    sr = upscale_image(image, module, variables, scale=scale, luma=luma, **kw)
    tmp = t.with_name(t.name + ".tmp.png")
    Image.fromarray(sr[..., 0] if sr.shape[-1] == 1 else sr).save(tmp)
    tmp.replace(t)
    print(f"{f} -> {t} ({image.shape[1]}x{image.shape[0]} -> {sr.shape[1]}x{sr.shape[0]}, "
          f"{name} x{scale})")
  return 0


def _cmd_convert(args) -> int:
  from jaxsr import convert  # pylint: disable=g-import-not-at-top

  imp = convert.load_weights(args.weights, model=args.model, scale=args.scale)
  out = imp.save(args.output)
  extra = f" {imp.overrides}" if imp.overrides else ""
  luma = f", expects {imp.luma} Y" if imp.luma else ""
  print(f"{args.weights}: {imp.format} -> {imp.name} x{imp.scale}{extra}{luma}; saved to {out}")
  for note in imp.notes:
    print(f"  note: {note}")
  return 0


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxsr", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  up = sub.add_parser("upscale", help="super-resolve image files")
  up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
  up.add_argument("--checkpoint", help="a jaxsr checkpoint directory")
  up.add_argument("--model", help="registry name of the --weights file's model")
  up.add_argument("--weights", help="a published weights file, converted on the fly")
  up.add_argument("--scale", type=int, help="scale (default: the model's / file's)")
  up.add_argument("--output", required=True, help="output folder (created)")
  up.add_argument("--tile", type=int, help="LR tile size (default: whole images)")
  up.add_argument("--tile-overlap", type=int, default=16, help="tile overlap in LR pixels")
  up.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations")
  up.add_argument("--batch-size", type=int, default=1, help="images/tiles per forward pass")
  up.set_defaults(fn=_cmd_upscale)
  cv = sub.add_parser("convert", help="import published weights as a jaxsr checkpoint")
  cv.add_argument("weights", metavar="FILE", help="SRCNN .mat, OpenCV .pb or PyTorch .pth")
  cv.add_argument("--output", required=True, help="checkpoint directory to write")
  cv.add_argument("--model", help="registry name (default: recognised from the file)")
  cv.add_argument("--scale", type=int, help="scale (default: from the file or its name)")
  cv.set_defaults(fn=_cmd_convert)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``jaxsr`` console script; returns the exit status."""
  args = _parser().parse_args(argv)
  runtime.configure_xla_cpu()  # before the first JAX computation
  try:
    return args.fn(args)
  except InputError as e:
    print(f"jaxsr: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
