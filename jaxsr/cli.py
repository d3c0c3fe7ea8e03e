"""The ``jaxsr`` command: upscale images, import published weights, train and evaluate.

  jaxsr upscale INPUT... (--checkpoint DIR | --model NAME --weights FILE) --output DIR
                [--scale N [--force-scale]] [--tile N] [--tile-overlap N] [--self-ensemble]
                [--batch-size N]
  jaxsr convert FILE --output DIR [--overwrite] [--model NAME] [--scale N [--force-scale]]
  jaxsr train --config (FILE | recipe:NAME) --workdir DIR [--config.FIELD=VALUE ...]
  jaxsr eval [--model NAME] [--weights FILE | --checkpoint DIR] [--datasets ...] [--scales ...]

``upscale`` reads uint8 RGB or greyscale images (PNG, JPEG, BMP, ...; INPUT may also be a
folder), super-resolves them with ``jaxsr.inference.upscale_image`` (size buckets: few
compilations; ``--tile`` for large images; ``--self-ensemble`` averages the 8 flips/rotations)
and writes ``OUTPUT/<name>_x<scale>.png`` (through a temporary name and a rename: never
half-written; the folder is created and checked for writing before any work). The model comes
from ``jaxsr.loading.load_model``: ``--scale`` other than the one the weights were trained for
is an error unless ``--force-scale`` (and never possible where the architecture fixes it).

Memory: without ``--tile``, each image's whole-image pass is estimated first
(``jaxsr.inference.plan_memory``: XLA's memory analysis of the forward pass, scaled by pixel
count, against free memory, or ``$JAXSR_MEMORY_LIMIT``); an image that does not fit is tiled
with the largest tile that does, and a ``jaxsr: note:`` line says so; one that fits no tile is
refused. A ``--tile`` that does not fit is refused with the tile size to use.

RGB models get the RGB image (a grey image is replicated to 3 channels, and the output's mean
channel is written as grey). Y-channel models (SRCNN, FSRCNN, ESPCN, VDSR) upscale only the
luma: the image is converted to YCbCr, the model upscales Y / 255, Cb and Cr are upscaled with
MATLAB bicubic, and the result is converted back to RGB. The YCbCr used is the one the weights
were trained on (recorded by ``jaxsr convert`` in the checkpoint): MATLAB ``rgb2ycbcr``
(16..235, the default and the ``y`` evaluation protocol's) or, for OpenCV dnn_superres models,
OpenCV's full-range ``COLOR_RGB2YCrCb``. A grey image is its own Y.

``convert`` imports a published file (``jaxsr.convert``: SRCNN .mat, OpenCV .pb, BasicSR /
FSRCNN-pytorch .pth; the scale rule of ``jaxsr.loading.import_weights``) and saves it as a
jaxsr checkpoint (written to a temporary sibling folder and renamed into place; an existing
checkpoint in ``--output`` is refused unless ``--overwrite``, which swaps it only once the new
one is complete) for ``--checkpoint`` (here, in
``jaxsr eval``, and for fine-tuning with ``jaxsr train --config.init_from=DIR``).

``train`` and ``eval`` are the absl programs of ``jaxsr.commands`` (also ``python train.py`` /
``python eval.py`` in a source checkout); ``jaxsr train --help`` and ``jaxsr eval --help`` list
their flags. ``--config recipe:NAME`` trains a recipe packaged with jaxsr (``jaxsr.recipes``).

Mistakes (missing or corrupt files, unknown models, shapes that do not fit) end with a one-line
``jaxsr: error: ...`` (``jaxsr train: error: ...`` and so on) and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import shutil
import sys
import tempfile
import warnings
from typing import NoReturn, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxsr import files  # pylint: disable=g-import-not-at-top
from jaxsr import runtime  # pylint: disable=g-import-not-at-top
from jaxsr.errors import InputError  # pylint: disable=g-import-not-at-top

__all__ = ["main"]

# The absl programs run by ``jaxsr NAME ...``: name -> (module in jaxsr.commands, help).
_PROGRAMS = {
    "train": ("train", "train a model (flags: jaxsr train --help)"),
    "eval": ("evaluate", "evaluate models on benchmark sets (flags: jaxsr eval --help)"),
}
# Library error fields (InputError.field) -> the option that sets them.
_OPTION_OF_FIELD = {"checkpoint": "--checkpoint", "weights": "--weights", "model": "--model",
                    "scale": "--scale", "tile": "--tile"}


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


def _prepare_output(out_dir: pathlib.Path) -> bool:
  """Creates ``out_dir`` and checks that files can be written there; returns whether it was
  created (so that a failure before any output can remove it again)."""
  if out_dir.exists() and not out_dir.is_dir():
    raise InputError(f"--output {out_dir}: exists and is not a folder")
  created = not out_dir.exists()
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise InputError(f"--output {out_dir}: cannot create the folder ({e.strerror})") from None
  problem = None
  if not os.access(out_dir, os.W_OK | os.X_OK):
    problem = "permission denied"
  else:
    try:
      with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".jaxsr-write-test-"):
        pass
    except OSError as e:
      problem = e.strerror or type(e).__name__
  if problem:
    if created:
      _remove_empty(out_dir)
    raise InputError(f"--output {out_dir}: cannot write to this folder ({problem})")
  return created


def _remove_empty(folder: pathlib.Path) -> None:
  try:
    folder.rmdir()
  except OSError:
    pass


def _write_png(array, target: pathlib.Path) -> None:
  """Writes ``target`` through a temporary sibling and a rename: never half-written."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    files.save_png(target, array)
  except OSError as e:
    raise InputError(f"{target}: cannot write ({e.strerror or e})") from None


def _cmd_upscale(args) -> int:
  from jaxsr import inference  # pylint: disable=g-import-not-at-top
  from jaxsr import loading  # pylint: disable=g-import-not-at-top
  from jaxsr.data.images import read_image  # pylint: disable=g-import-not-at-top

  if args.tile is not None and not 0 <= args.tile_overlap < args.tile:
    raise InputError(f"--tile {args.tile} must exceed --tile-overlap {args.tile_overlap}")
  if args.batch_size < 1:
    raise InputError("--batch-size must be >= 1")
  files = _inputs(args.inputs)
  out_dir = pathlib.Path(args.output)
  if out_dir.exists() and not out_dir.is_dir():
    raise InputError(f"--output {out_dir}: exists and is not a folder")
  net = loading.load_model(checkpoint=args.checkpoint, weights=args.weights,
                           model=args.model, scale=args.scale, force_scale=args.force_scale)
  scale = net.scale
  targets = [out_dir / f"{f.stem}_x{scale}.png" for f in files]
  seen: dict[pathlib.Path, pathlib.Path] = {}
  for f, t in zip(files, targets):
    if t in seen:
      raise InputError(f"{f} and {seen[t]} would both be written to {t}")
    seen[t] = f
  images = [read_image(f) for f in files]  # every input is checked before any work
  created = _prepare_output(out_dir)
  written = 0
  try:
    for f, t, image in zip(files, targets, images):
      channels = net.channels if net.channels == 1 else 3
      plan = inference.plan_memory(
          net.module, net.variables, (*image.shape[:2], channels), scale=scale,
          tile=args.tile, tile_overlap=args.tile_overlap, batch_size=args.batch_size)
      tile = args.tile
      if tile is None and plan is not None and plan.tile is not None:
        tile = plan.tile
        print(f"jaxsr: note: {f}: a whole-image pass needs ~{plan.need / 2**30:.1f} GiB, "
              f"{plan.available / 2**30:.1f} GiB available: tiling with --tile {tile}",
              file=sys.stderr)
      sr = inference.upscale_image(image, net.module, net.variables, scale=scale,
                                   luma=net.luma, tile=tile, tile_overlap=args.tile_overlap,
                                   self_ensemble=args.self_ensemble,
                                   batch_size=args.batch_size)
      _write_png(sr, t)
      written += 1
      print(f"{f} -> {t} ({image.shape[1]}x{image.shape[0]} -> {sr.shape[1]}x{sr.shape[0]}, "
            f"{net.name} x{scale})")
  except BaseException:
    if created and not written:
      _remove_empty(out_dir)
    raise
  return 0


def _is_checkpoint(folder: pathlib.Path) -> bool:
  """Whether ``folder`` holds a jaxsr (Orbax) checkpoint: a step folder named by digits."""
  return any(p.is_dir() and p.name.isdigit() for p in folder.iterdir())


def _cmd_convert(args) -> int:
  from jaxsr import loading  # pylint: disable=g-import-not-at-top

  out = pathlib.Path(args.output).absolute()
  if out.exists():
    if not out.is_dir():
      raise InputError(f"--output {out}: exists and is not a folder")
    if any(out.iterdir()):
      if not _is_checkpoint(out):
        raise InputError(f"--output {out}: not empty and not a jaxsr checkpoint; choose "
                         f"another folder")
      if not args.overwrite:
        raise InputError(f"--output {out}: already holds a checkpoint; pass --overwrite to "
                         f"replace it")
  imp = loading.import_weights(args.weights, model=args.model, scale=args.scale,
                               force_scale=args.force_scale)
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
  except OSError as e:
    raise InputError(f"--output {out}: cannot write here ({e.strerror or e})") from None
  old = None
  try:
    imp.save(staging)
    if out.exists():
      # Swap: the old checkpoint moves aside before the new one takes its name, and is
      # deleted only once the new one is in place.
      old = out.with_name(f".{out.name}.old-{os.getpid()}")
      out.rename(old)
    staging.rename(out)
  except (OSError, InputError) as e:
    if old is not None and not out.exists():
      old.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    raise InputError(f"--output {out}: cannot write the checkpoint ({e}); nothing changed "
                     f"there") from None
  except BaseException:
    if old is not None and not out.exists():
      old.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)
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
  up.add_argument("--force-scale", action="store_true",
                  help="use weights at a --scale other than the one they were trained for")
  up.set_defaults(fn=_cmd_upscale)
  cv = sub.add_parser("convert", help="import published weights as a jaxsr checkpoint")
  cv.add_argument("weights", metavar="FILE", help="SRCNN .mat, OpenCV .pb or PyTorch .pth")
  cv.add_argument("--output", required=True, help="checkpoint directory to write")
  cv.add_argument("--model", help="registry name (default: recognised from the file)")
  cv.add_argument("--scale", type=int, help="scale (default: from the file or its name)")
  cv.add_argument("--force-scale", action="store_true",
                  help="save weights at a --scale other than the one they were trained for")
  cv.add_argument("--overwrite", action="store_true",
                  help="replace the checkpoint already in --output")
  cv.set_defaults(fn=_cmd_convert)
  for name, (_, help_text) in _PROGRAMS.items():
    # Listed for --help only: main() hands these arguments to the absl program unparsed.
    sub.add_parser(name, help=help_text, add_help=False)
  return parser


def _start_program(name: str, args: Sequence[str]) -> NoReturn:
  """Runs ``jaxsr NAME ARGS...`` (train, eval): imports only that program (absl flags are
  process-global) and exits with its status."""
  module = importlib.import_module(f"jaxsr.commands.{_PROGRAMS[name][0]}")
  module.start(args, prog=f"jaxsr {name}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
  """Warnings as one line each: ``jaxsr: warning: ...``."""
  del category, filename, lineno, line
  print(f"jaxsr: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``jaxsr`` console script; returns the exit status.

  ``train`` and ``eval`` do not return: their absl programs exit the process.
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv and argv[0] in _PROGRAMS:
    _start_program(argv[0], argv[1:])
  args = _parser().parse_args(argv)
  runtime.configure_xla_cpu()  # before the first JAX computation
  try:
    with warnings.catch_warnings():
      warnings.showwarning = _show_warning
      return args.fn(args)
  except InputError as e:
    print(f"jaxsr: error: {e.describe(_OPTION_OF_FIELD)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
