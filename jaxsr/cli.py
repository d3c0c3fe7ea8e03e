"""The ``jaxsr`` command: upscale images, import published weights, train and evaluate.

  jaxsr upscale INPUT... (--model PRETRAINED | --checkpoint DIR | --model NAME --weights FILE)
                --output DIR [--scale N [--force-scale]] [--outscale F] [--ext png|jpg|...|auto]
                [--tile N] [--tile-overlap N] [--self-ensemble] [--batch-size N]
                [--dtype float32|bfloat16|float16] [--alpha bicubic|model] [--model-cache DIR]
  jaxsr models
  jaxsr convert FILE --output DIR [--overwrite] [--model NAME] [--scale N [--force-scale]]
  jaxsr export (--checkpoint DIR | --model NAME [--weights FILE]) --output PATH
               --format stablehlo|savedmodel|tflite|onnx [--dtype float32|bfloat16|float16]
               [--overwrite]
  jaxsr train --config (FILE | recipe:NAME) --workdir DIR [--config.FIELD=VALUE ...]
  jaxsr eval [--model NAME] [--weights FILE | --checkpoint DIR] [--datasets ...] [--scales ...]

``upscale`` reads RGB or greyscale images, 8 or 16 bits, with or without alpha (PNG, JPEG,
BMP, ...; INPUT may also be a folder: a progress bar on a terminal, one ``[i/n]`` line per
image), super-resolves them with ``jaxsr.inference.upscale_image`` (size buckets: few
compilations; ``--tile`` for large images; ``--self-ensemble`` averages the 8 flips/rotations;
``--dtype`` computes in bfloat16/float16) and writes ``OUTPUT/<name>_x<scale>.<ext>`` (through
a temporary name and a rename: never half-written; the folder is created and checked for
writing before any work). ``--ext`` picks the format (default png; ``auto``: the input's);
16-bit images stay 16-bit (written as 16-bit PNG), an alpha channel is kept and upscaled on
its own (``--alpha bicubic``, the default, or ``model``: the model on the replicated alpha, as
Real-ESRGAN's script does), a format that cannot hold it (JPEG, BMP) becomes PNG with a note.
``--outscale F`` resizes the model's output (MATLAB bicubic, ``jaxsr.imresize``) to F times
the input size and names the file ``_x<F>``.

The model: ``--model NAME`` alone is a named pretrained model (``jaxsr models`` lists them;
``jaxsr.zoo``: the weights come from an installed package, are converted once into
``--model-cache`` / ``$JAXSR_CACHE/pretrained`` / ``~/.cache/jaxsr/pretrained`` and reused);
pretrained names contain hyphens (``realesrgan-x4plus``), registry architectures underscores
(``edsr_baseline``), so ``--model NAME --weights FILE`` (NAME the file's architecture) works
as before. ``--checkpoint DIR`` and ``--weights`` come from ``jaxsr.loading.load_model``:
``--scale`` other than the one the weights were trained for is an error unless
``--force-scale`` (and never possible where the architecture fixes it).

Tiling: tiles overlapping by ``--tile-overlap`` reproduce the whole-image output when the
overlap covers twice the model's receptive radius; otherwise (usual: RRDBNet's radius is ~350
LR px) they are an approximation, their overlaps are blended with feathered weights so no seam
shows, and a ``jaxsr: note:`` gives the overlap that would be exact.

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

``export`` writes the model as a StableHLO, TensorFlow SavedModel, TFLite or ONNX artifact that
takes images of any batch size, height and width (``jaxsr.export``; the input/output convention
is written into the artifact and printed; an existing artifact is refused unless
``--overwrite``).

``train`` and ``eval`` are the absl programs of ``jaxsr.commands`` (also ``python train.py`` /
``python eval.py`` in a source checkout); ``jaxsr train --help`` and ``jaxsr eval --help`` list
their flags. ``--config recipe:NAME`` trains a recipe packaged with jaxsr (``jaxsr.recipes``).

Mistakes (missing or corrupt files, unknown models, shapes that do not fit) end with a one-line
``jaxsr: error: ...`` (``jaxsr train: error: ...`` and so on) and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import pathlib
import shutil
import sys
import tempfile
import warnings
from typing import NoReturn, Sequence

import numpy as np

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
                    "scale": "--scale", "tile": "--tile", "format": "--format",
                    "dtype": "--dtype", "output": "--output", "alpha": "--alpha"}


def _inputs(paths: Sequence[str]) -> list[pathlib.Path]:
  from jaxsr.data.images import list_images  # pylint: disable=g-import-not-at-top

  found: list[pathlib.Path] = []
  for p in map(files.to_path, paths):
    files.check_reachable(p)  # gs://...: one line, not a hang, when it does not answer
    if p.is_dir():
      found += list_images(p)
    elif p.is_file():
      found.append(p)
    else:
      raise InputError(f"{p}: no such file or folder")
  return found


def _image_source(path):
  """What PIL opens: a local path, or a remote file's bytes (read through ``etils.epath``)."""
  return path if files.is_local(path) else io.BytesIO(path.read_bytes())


def _prepare_output(out_dir: pathlib.Path) -> bool:
  """Creates ``out_dir`` and checks that files can be written there; returns whether it was
  created (so that a failure before any output can remove it again)."""
  if out_dir.exists() and not out_dir.is_dir():
    raise InputError(f"--output {out_dir}: exists and is not a folder")
  created = not out_dir.exists()
  if not files.is_local(out_dir):  # an object store: no permission bits, try a write
    try:
      out_dir.mkdir(parents=True, exist_ok=True)
      probe = out_dir / f".jaxsr-write-test-{os.getpid()}"
      probe.write_bytes(b"")
      probe.unlink()
    except files.io_errors() as e:
      raise InputError(f"--output {out_dir}: cannot write to this folder "
                       f"({(str(e).strip().splitlines() or [''])[0][:200]})") from None
    return created
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


# Output extensions -> PIL format, and what each can hold.
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
            ".tif": "TIFF", ".tiff": "TIFF"}
_NO_ALPHA = ("JPEG", "BMP")


def _write_image(array, target: pathlib.Path) -> None:
  """Writes uint8/uint16 ``[H, W, 1|2|3|4]`` pixels as ``target``'s format (from its extension),
  whole or not at all. 16-bit pixels are written as 16-bit PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  fmt = _FORMATS[target.suffix.lower()]
  if array.dtype == np.uint16:
    if array.shape[-1] == 1:
      pil = Image.fromarray(array[..., 0])  # mode I;16
      write = lambda f: pil.save(f, format="PNG")  # noqa: E731
    else:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top

      data = tf.io.encode_png(array).numpy()  # Pillow cannot write 16-bit colour
      write = lambda f: f.write(data)  # noqa: E731
  else:
    pil = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    write = lambda f: pil.save(f, format=fmt, **options)  # noqa: E731
  try:
    files.write_atomic(target, write)
  except files.io_errors() as e:
    reason = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [""])[0][:200]
    raise InputError(f"{target}: cannot write ({reason})") from None


def _probe(path: pathlib.Path) -> None:
  """Checks that ``path`` opens as an image (header only), before any work."""
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(_image_source(path)) as img:
      img.size  # pylint: disable=pointless-statement
  except (files.io_errors() + (UnidentifiedImageError, SyntaxError, ValueError)) as e:
    raise InputError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


def _read_pixels(path: pathlib.Path):
  """An image file's pixels, keeping 16 bits and alpha: uint8 or uint16 ``[H, W, 1|2|3|4]``.

  16-bit PNGs (grey, grey + alpha, RGB, RGBA) are decoded with TensorFlow (Pillow truncates
  16-bit colour); other 16-bit grey files (mode ``I;16``) with Pillow; images with alpha (RGBA,
  LA, palette with transparency) keep it; everything else is ``jaxsr.data.images.read_image``.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from jaxsr.data.images import read_image  # pylint: disable=g-import-not-at-top

  source = _image_source(path)
  if files.is_local(path):
    with open(path, "rb") as f:
      header = f.read(26)
  else:
    header = source.getvalue()[:26]
  if header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 26 and header[24] == 16:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    try:
      array = tf.io.decode_png(path.read_bytes(), channels=0, dtype=tf.uint16).numpy()
    except tf.errors.OpError as e:
      raise InputError(f"{path}: cannot read image ({e.message.splitlines()[0]})") from None
    return np.ascontiguousarray(array)
  try:
    with Image.open(source) as img:
      mode = img.mode
      if mode in ("I;16", "I;16B", "I;16L", "I;16N") and int(getattr(img, "n_frames", 1)) == 1:
        img.load()
        return np.ascontiguousarray(np.asarray(img).astype(np.uint16))[..., None]
      if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img.load()
        conv = img.convert("LA" if mode == "LA" else "RGBA")
        array = np.asarray(conv)
        return np.ascontiguousarray(array if array.ndim == 3 else array[..., None])
  except (OSError, SyntaxError, ValueError) as e:
    raise InputError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
  return read_image(path)


def _load_network(args):
  """The model of ``jaxsr upscale``: ``--checkpoint DIR``; ``--model NAME --weights FILE``
  (NAME a registry architecture); or ``--model NAME`` alone, NAME a named pretrained model
  (``jaxsr models``; converted once into the cache)."""
  from jaxsr import loading  # pylint: disable=g-import-not-at-top

  if args.model and args.checkpoint is None and args.weights is None:
    from jaxsr import models  # pylint: disable=g-import-not-at-top
    from jaxsr import zoo  # pylint: disable=g-import-not-at-top

    if args.model not in zoo.PRETRAINED and args.model in models.list_models("all"):
      raise InputError(f"{args.model} is an architecture: give its --weights FILE (or a "
                       f"--checkpoint), or a pretrained model name (jaxsr models)", field="model")
    net = zoo.load(args.model, cache_dir=args.model_cache)
    if args.scale is not None and args.scale != net.scale:
      raise InputError(f"{args.model} is a x{net.scale} model, not x{args.scale} (use "
                       f"--outscale {args.scale} to resize its output)", field="scale")
    return net
  return loading.load_model(checkpoint=args.checkpoint, weights=args.weights,
                            model=args.model, scale=args.scale, force_scale=args.force_scale)


def _progress(items, total: int):
  """``items`` with a progress bar on stderr (tqdm, when installed and stderr is a terminal)."""
  if total > 1 and sys.stderr.isatty():
    try:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    except ImportError:
      return items
    return tqdm(items, total=total, unit="image", file=sys.stderr, leave=False)
  return items


def _tiling_note(net, tile: int, overlap: int) -> str | None:
  """The note printed when tiles are approximate, with the overlap that would be exact."""
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  if inference.tiling_is_exact(net.module, overlap, channels=net.channels):
    return None
  exact = inference.exact_overlap(net.module, channels=net.channels)
  if exact is None:
    how = "no finite overlap is exact for this model (global operations)"
  else:
    how = (f"exact with --tile-overlap {exact} and --tile larger than that "
           f"(e.g. --tile {exact + 64})")
  return (f"tiles of {net.name} are approximate (--tile {tile} --tile-overlap {overlap}): the "
          f"overlaps are blended; {how}")


def _cmd_upscale(args) -> int:
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  if args.tile is not None and not 0 <= args.tile_overlap < args.tile:
    raise InputError(f"--tile {args.tile} must exceed --tile-overlap {args.tile_overlap}")
  if args.batch_size < 1:
    raise InputError("--batch-size must be >= 1")
  if args.outscale is not None and not 0 < args.outscale <= 64:
    raise InputError(f"--outscale must be in (0, 64], got {args.outscale:g}")
  ext = None if args.ext == "auto" else "." + args.ext.lower().lstrip(".")
  if ext is not None and ext not in _FORMATS:
    raise InputError(f"--ext {args.ext}: one of auto, {', '.join(e[1:] for e in _FORMATS)}")
  inference._compute_dtype(args.dtype)  # pylint: disable=protected-access
  files_in = _inputs(args.inputs)
  out_dir = files.to_path(args.output, field="output")
  if not files.is_local(out_dir):
    files.check_reachable(out_dir, field="output")
  if out_dir.exists() and not out_dir.is_dir():
    raise InputError(f"--output {out_dir}: exists and is not a folder")
  net = _load_network(args)
  scale = net.scale
  factor = args.outscale if args.outscale is not None else scale
  label = f"x{factor:g}"
  targets = []
  for f in files_in:
    suffix = ext or (f.suffix.lower() if f.suffix.lower() in _FORMATS else ".png")
    targets.append(out_dir / f"{f.stem}_{label}{suffix}")
  seen: dict[pathlib.Path, pathlib.Path] = {}
  for f, t in zip(files_in, targets):
    if t in seen:
      raise InputError(f"{f} and {seen[t]} would both be written to {t}")
    seen[t] = f
  for f in files_in:  # every input is checked before any work
    _probe(f)
  created = _prepare_output(out_dir)
  written = 0
  noted: set[tuple[int, int]] = set()
  try:
    for k, (f, t) in enumerate(_progress(list(zip(files_in, targets)), len(files_in))):
      image = _read_pixels(f)
      fmt = _FORMATS[t.suffix.lower()]
      if image.dtype == np.uint16 and fmt != "PNG":
        t = t.with_suffix(".png")
        print(f"jaxsr: note: {f}: 16-bit pixels are written as 16-bit PNG: {t}", file=sys.stderr)
      elif image.shape[-1] in (2, 4) and fmt in _NO_ALPHA:
        t = t.with_suffix(".png")
        print(f"jaxsr: note: {f}: {fmt} cannot hold the alpha channel; writing {t}",
              file=sys.stderr)
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
      if tile is not None and min(image.shape[:2]) > 0 and (tile, args.tile_overlap) not in noted:
        if max(image.shape[:2]) > tile:
          note = _tiling_note(net, tile, args.tile_overlap)
          if note:
            print(f"jaxsr: note: {note}", file=sys.stderr)
          noted.add((tile, args.tile_overlap))
      sr = inference.upscale_image(image, net.module, net.variables, scale=scale,
                                   luma=net.luma, tile=tile, tile_overlap=args.tile_overlap,
                                   self_ensemble=args.self_ensemble,
                                   batch_size=args.batch_size, dtype=args.dtype,
                                   alpha=args.alpha)
      if args.outscale is not None and args.outscale != scale:
        h, w = image.shape[:2]
        sr = inference.resize_image(sr, (max(1, round(h * args.outscale)),
                                         max(1, round(w * args.outscale))))
      _write_image(sr, t)
      written += 1
      bits = " 16-bit" if sr.dtype == np.uint16 else ""
      alpha = " +alpha" if sr.shape[-1] in (2, 4) else ""
      print(f"[{k + 1}/{len(files_in)}] {f} -> {t} ({image.shape[1]}x{image.shape[0]} -> "
            f"{sr.shape[1]}x{sr.shape[0]}{bits}{alpha}, {net.name} x{scale}"
            + (f", outscale {factor:g}" if args.outscale is not None else "") + ")")
  except BaseException:
    if created and not written:
      _remove_empty(out_dir)
    raise
  return 0


def _cmd_models(args) -> int:
  del args
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  print(zoo.format_table())
  print(f"\nconverted models are cached in {zoo.cache_root()} (${zoo.CACHE_ENV}/pretrained)")
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


def _cmd_export(args) -> int:
  from jaxsr import export as export_lib  # pylint: disable=g-import-not-at-top
  from jaxsr import loading  # pylint: disable=g-import-not-at-top

  if args.format not in export_lib.FORMATS:
    raise InputError(f"unknown format {args.format!r}; one of {', '.join(export_lib.FORMATS)}",
                     field="format")
  if args.dtype not in export_lib.DTYPES:
    raise InputError(f"unknown dtype {args.dtype!r}; one of {', '.join(export_lib.DTYPES)}",
                     field="dtype")
  if args.checkpoint is None and args.weights is None and args.model:
    try:
      from jaxsr import zoo  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise InputError(f"{args.model}: named pretrained models need jaxsr.zoo; give "
                       f"--checkpoint DIR or --model NAME --weights FILE", field="model") from None
    net = zoo.load(args.model)
  else:
    net = loading.load_model(checkpoint=args.checkpoint, weights=args.weights, model=args.model,
                             scale=args.scale, force_scale=args.force_scale)
  art = export_lib.export(net, args.output, format=args.format, dtype=args.dtype,
                          overwrite=args.overwrite)
  print(f"{net.source}: {net.name} x{net.scale} -> {art.path} ({art.format}, {args.dtype}, "
        f"{art.size_bytes / 2**20:.1f} MiB)")
  print(export_lib.describe(art.metadata))
  return 0


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxsr", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  up = sub.add_parser("upscale", help="super-resolve image files")
  up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
  up.add_argument("--checkpoint", help="a jaxsr checkpoint directory")
  up.add_argument("--model", help="a named pretrained model (jaxsr models), or with --weights "
                                  "the registry name of the file's architecture")
  up.add_argument("--weights", help="a published weights file, converted on the fly")
  up.add_argument("--model-cache", metavar="DIR",
                  help="where named models are converted to (default $JAXSR_CACHE/pretrained "
                       "or ~/.cache/jaxsr/pretrained)")
  up.add_argument("--scale", type=int, help="scale (default: the model's / file's)")
  up.add_argument("--outscale", type=float,
                  help="final scale: the model's output is resized (bicubic) to it")
  up.add_argument("--output", required=True, help="output folder (created)")
  up.add_argument("--ext", default="png",
                  help="output format: png (default), jpg, webp, bmp, tif, or auto (the input's)")
  up.add_argument("--tile", type=int, help="LR tile size (default: whole images)")
  up.add_argument("--tile-overlap", type=int, default=16, help="tile overlap in LR pixels")
  up.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations")
  up.add_argument("--batch-size", type=int, default=1, help="images/tiles per forward pass")
  up.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                  help="compute dtype of the model (output is float32 all the same)")
  up.add_argument("--alpha", default="bicubic", choices=("bicubic", "model"),
                  help="how an alpha channel is upscaled")
  up.add_argument("--force-scale", action="store_true",
                  help="use weights at a --scale other than the one they were trained for")
  up.set_defaults(fn=_cmd_upscale)
  md = sub.add_parser("models", help="list the named pretrained models")
  md.set_defaults(fn=_cmd_models)
  cv = sub.add_parser("convert", help="import published weights as a jaxsr checkpoint")
  cv.add_argument("weights", metavar="FILE",
                  help="SRCNN .mat, OpenCV .pb, PyTorch .pth / .safetensors or ncnn .param; "
                       "architecture, configuration and scale are read from the file")
  cv.add_argument("--output", required=True, help="checkpoint directory to write")
  cv.add_argument("--model", help="registry name, checked against the file (default: "
                                  "recognised from it)")
  cv.add_argument("--scale", type=int, help="scale (default: from the file or its name)")
  cv.add_argument("--force-scale", action="store_true",
                  help="save weights at a --scale other than the one they were trained for")
  cv.add_argument("--overwrite", action="store_true",
                  help="replace the checkpoint already in --output")
  cv.set_defaults(fn=_cmd_convert)
  ex = sub.add_parser("export", help="export a model (StableHLO, SavedModel, TFLite, ONNX)")
  ex.add_argument("--checkpoint", help="a jaxsr checkpoint directory")
  ex.add_argument("--model", help="a named pretrained model, or the --weights file's model")
  ex.add_argument("--weights", help="a published weights file, converted on the fly")
  ex.add_argument("--scale", type=int, help="scale (default: the model's / file's)")
  ex.add_argument("--force-scale", action="store_true",
                  help="use weights at a --scale other than the one they were trained for")
  ex.add_argument("--output", required=True,
                  help="artifact to write (a folder for savedmodel)")
  ex.add_argument("--format", required=True, metavar="FORMAT",
                  help="stablehlo, savedmodel, tflite or onnx")
  ex.add_argument("--dtype", default="float32", metavar="DTYPE",
                  help="compute dtype inside: float32 (default), bfloat16 or float16")
  ex.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
  ex.set_defaults(fn=_cmd_export)
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
