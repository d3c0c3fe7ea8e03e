"""How far tiled output is from whole-image output, per model family.

  python benchmarks/tile_error.py [--image FILE] [--size 160] [--tile 64] [--overlap 16]
      [--families edsr_baseline,rrdbnet,srvgg_compact,realcugan] [--json FILE]

For each model family, one LR image (a ``--size`` x ``--size`` crop of ``--image``, default
Set14 baboon from ../shared, else a synthetic texture) is upscaled whole and with
``--tile``/``--tile-overlap`` tiles, twice: tiles cut mid-overlap (``blend=False``) and blended
(``blend=True``, what ``jaxsr upscale`` does when tiles are approximate). It prints the max and
mean absolute error against the whole-image output (in 0..255 units of the float output), the
receptive radius (``jaxsr.inference.receptive_radius``), the smallest exact overlap
(``2 x radius``; the tile must exceed it) and, where that tile fits the image, the measured
error of exact tiling.

Weights: the named pretrained models of ``jaxsr.zoo`` where installed (realesrgan-x4plus for
RRDBNet, realesr-animevideov3-x4 for SRVGGNetCompact, realcugan-se-x2 for Real-CUGAN); EDSR-
baseline x2 has no packaged weights and runs with its Flax initialisation (random weights:
its errors say how tiling behaves, not what a trained EDSR shows).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FAMILIES = {
    "edsr_baseline": ("random", "edsr_baseline", 2),
    "rrdbnet": ("zoo", "realesrgan-x4plus", 4),
    "srvgg_compact": ("zoo", "realesr-animevideov3-x4", 4),
    "realcugan": ("zoo", "realcugan-se-x2", 2),
    "waifu2x_cunet": ("zoo", "waifu2x-cunet-x2", 2),
}


def _image(path: str | None, size: int) -> np.ndarray:
  from jaxsr.data.images import read_image  # pylint: disable=g-import-not-at-top

  candidate = pathlib.Path(path) if path else REPO.parent / "shared/data/benchmarks/Set14/baboon.png"
  if candidate.is_file():
    im = read_image(candidate)
    h, w = im.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return im[y0:y0 + size, x0:x0 + size].astype(np.float32) / 255
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:size, 0:size] / 6.0
  base = 0.5 + 0.3 * np.sin(xx[..., None] + np.arange(3)) * np.cos(yy[..., None])
  return np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1).astype(np.float32)


def _model(kind: str, name: str, scale: int):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxsr import models  # pylint: disable=g-import-not-at-top
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top

  if kind == "zoo":
    module, variables = zoo.load_pretrained(name)
    return module, variables, f"{name} (pretrained)"
  module = models.get_model(name, scale=scale)
  variables = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  return module, variables, f"{name} x{scale} (Flax init, random)"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--image")
  parser.add_argument("--size", type=int, default=160)
  parser.add_argument("--tile", type=int, default=64)
  parser.add_argument("--overlap", type=int, default=16)
  parser.add_argument("--families", default="edsr_baseline,rrdbnet,srvgg_compact,realcugan")
  parser.add_argument("--json")
  args = parser.parse_args()

  from jaxsr import inference  # pylint: disable=g-import-not-at-top
  from jaxsr import runtime  # pylint: disable=g-import-not-at-top

  runtime.configure_xla_cpu()
  lr = _image(args.image, args.size)
  rows = []
  for family in args.families.split(","):
    kind, name, scale = FAMILIES[family]
    t = time.perf_counter()
    try:
      module, variables, label = _model(kind, name, scale)
    except Exception as e:  # pylint: disable=broad-except
      print(f"{family}: skipped ({type(e).__name__}: {str(e).splitlines()[0]})", flush=True)
      rows.append({"family": family, "skipped": str(e).splitlines()[0]})
      continue
    whole = inference.upscale(module, variables, lr)
    row = {"family": family, "model": label, "size": args.size, "tile": args.tile,
           "overlap": args.overlap}
    for blend in (False, True):
      tiled = inference.upscale(module, variables, lr, tile=args.tile,
                                tile_overlap=args.overlap, blend=blend)
      err = np.abs(tiled - whole) * 255
      key = "blend" if blend else "cut"
      row[f"{key}_max"], row[f"{key}_mean"] = float(err.max()), float(err.mean())
    radius = inference.receptive_radius(module)
    row["radius"] = radius
    exact = inference.exact_overlap(module)
    row["exact_overlap"] = exact
    if exact is not None and exact + 8 < args.size:
      tiled = inference.upscale(module, variables, lr, tile=exact + 8, tile_overlap=exact)
      row["exact_tile"] = exact + 8
      row["exact_max"] = float(np.abs(tiled - whole).max() * 255)
    row["seconds"] = time.perf_counter() - t
    rows.append(row)
    print(json.dumps(row), flush=True)
  print(f"\nTiled vs whole-image output, LR {args.size}x{args.size}, --tile {args.tile} "
        f"--tile-overlap {args.overlap}; abs error in 0..255 units (max / mean)")
  print("| model | cut mid-overlap | blended (default) | receptive radius (LR px) | "
        "exact with |")
  print("|---|---|---|---|---|")
  for r in rows:
    if "skipped" in r:
      print(f"| {r['family']} | skipped: {r['skipped']} | | | |")
      continue
    exact = (f"--tile-overlap {r['exact_overlap']} --tile > {r['exact_overlap']}"
             if r["exact_overlap"] is not None else "none (global operations)")
    if "exact_max" in r:
      exact += f" (measured max {r['exact_max']:.1e} with --tile {r['exact_tile']})"
    print(f"| {r['model']} | {r['cut_max']:.2f} / {r['cut_mean']:.3f} | "
          f"{r['blend_max']:.2f} / {r['blend_mean']:.3f} | {r['radius']:g} | {exact} |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
  main()
