"""Peak memory and wall time of ``jaxsr upscale`` on one large photo, this tree beside another.

  python benchmarks/upscale_memory.py [--size 2000x1500] [--model espcn] [--scale 3]
      [--tiles none,128] [--before DIR] [--json FILE]

Each case is one ``python -m jaxsr upscale`` run in its own process (a random-weight model of
the registry saved as a checkpoint; a synthetic smooth colour image, so a Y model also runs the
chroma path), and its peak resident memory is that process's ``ru_maxrss``
(``resource.getrusage(RUSAGE_CHILDREN)`` of a fresh wrapper process per case). ``--before DIR``
runs the same cases with another copy of the source tree first on ``PYTHONPATH``, e.g. the last
commit exported with ``git archive HEAD | tar -x -C /tmp/jaxsr_head``, and prints the figures
side by side. ``JAXSR_MEMORY_LIMIT`` is left unset: the whole-image case runs whole when the
machine has the memory (else this tree tiles automatically and says so).

  python benchmarks/upscale_memory.py --first-tiles K [--sizes 4000x3000,1000x750]
      [--model rrdbnet --scale 4 | --pretrained realesrgan-x4plus] [--tile 128]

Large photos through heavy models (RRDBNet x4 on 4000x3000 is ~400 TFLOP: hours on a small
CPU) are measured without running every tile: each size runs in a fresh process that calls
``jaxsr.inference.upscale_image`` (uint8 in, uint8 out, ``--tile``, default overlap 16) with
the tile list cut to its first K tiles (``inference._iter_padded`` is wrapped); everything
else is as in a full run: the full-size float32 output (``np.full``: its pages are touched,
as a full run touches them) and the full uint8 result (converted in strips) are allocated and
written. The process's ``ru_maxrss`` is printed with the size of those two output buffers;
the peak minus the buffers (model, compiled code, one batch of tiles, strips) should not grow
with the image.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

_WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(proc.returncode, peak, wall)
sys.stderr.write(proc.stderr[-2000:])
"""


def _make_inputs(root: pathlib.Path, size: tuple[int, int], model: str, scale: int):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from jaxsr import checkpoint  # pylint: disable=g-import-not-at-top
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  w, h = size
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / 37.0
  rgb = np.stack([127 + 100 * np.sin(xx + 2 * c) * np.cos(yy - c) for c in range(3)], -1)
  image = root / "photo.png"
  Image.fromarray(np.round(rgb).astype(np.uint8)).save(image)
  module = models.get_model(model, scale=scale)
  c = int(getattr(module, "channels", 3))
  variables = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, c)))
  ckpt = root / "ckpt"
  checkpoint.save_model(ckpt, dict(variables), model=model, scale=scale)
  return image, ckpt


def _run(tree: pathlib.Path, image, ckpt, out, tile) -> dict:
  env = dict(os.environ, PYTHONPATH=str(tree))
  env.pop("JAXSR_MEMORY_LIMIT", None)
  cmd = [sys.executable, "-m", "jaxsr", "upscale", str(image), "--checkpoint", str(ckpt),
         "--output", str(out)] + (["--tile", str(tile)] if tile else [])
  proc = subprocess.run([sys.executable, "-c", _WRAPPER] + cmd, capture_output=True, text=True,
                        env=env, cwd=tempfile.gettempdir())
  rc, peak_kib, wall = proc.stdout.split()
  notes = [l for l in proc.stderr.splitlines() if "jaxsr:" in l]
  return {"rc": int(rc), "peak_rss_gib": int(peak_kib) / 2**20, "wall_s": float(wall),
          "notes": notes[-2:]}


def _first_tiles_child(args) -> None:
  """One size, in this process: the first K tiles, all buffers full size; prints JSON."""
  import resource  # pylint: disable=g-import-not-at-top

  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  sys.path.insert(0, str(REPO))
  from jaxsr import inference  # pylint: disable=g-import-not-at-top
  from jaxsr import models  # pylint: disable=g-import-not-at-top
  from jaxsr import runtime  # pylint: disable=g-import-not-at-top

  runtime.configure_xla_cpu()
  if args.pretrained:
    from jaxsr import zoo  # pylint: disable=g-import-not-at-top
    module, variables = zoo.load_pretrained(args.pretrained)
  else:
    module = models.get_model(args.model, scale=args.scale)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))
    rng = np.random.default_rng(0)
    variables = jax.tree.map(lambda a: (0.01 * rng.standard_normal(a.shape)).astype(a.dtype),
                             shapes)
  w, h = (int(v) for v in args.size.lower().split("x"))
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / 37.0
  image = np.stack([127 + 100 * np.sin(xx + 2 * c) * np.cos(yy - c) for c in range(3)], -1)
  image = np.round(image).astype(np.uint8)
  del yy, xx
  done = []
  original = inference._iter_padded  # pylint: disable=protected-access

  def first_tiles(fn, variables, items, *a, **kw):
    kept = items[:args.first_tiles]
    done.append(len(kept))
    return original(fn, variables, kept, *a, **kw)

  inference._iter_padded = first_tiles  # pylint: disable=protected-access
  t = time.perf_counter()
  out = inference.upscale_image(image, module, variables, scale=module.scale, tile=args.tile,
                                tile_overlap=16)
  wall = time.perf_counter() - t
  s = module.scale
  starts = [len(inference._tile_starts(n, args.tile, 16)) for n in (h, w)]  # pylint: disable=protected-access
  print(json.dumps({
      "size": args.size, "tiles_run": sum(done), "tiles_total": starts[0] * starts[1],
      "tile": args.tile, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      "float32_output_gib": h * w * s * s * 3 * 4 / 2**30,
      "uint8_output_gib": out.nbytes / 2**30, "input_gib": image.nbytes / 2**30,
      "wall_s": wall}))


def _first_tiles(args) -> None:
  rows = []
  for size in args.sizes.split(","):
    cmd = [sys.executable, __file__, "--first-tiles", str(args.first_tiles), "--size", size,
           "--tile", str(args.tile), "--model", args.model, "--scale", str(args.scale),
           "--_child"] + (["--pretrained", args.pretrained] if args.pretrained else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
      print(proc.stderr[-3000:])
      raise SystemExit(f"{size}: failed")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["peak_minus_buffers_gib"] = (row["peak_rss_gib"] - row["float32_output_gib"]
                                     - row["uint8_output_gib"] - row["input_gib"])
    rows.append(row)
    print(json.dumps(row), flush=True)
  what = args.pretrained or f"{args.model} x{args.scale} (random weights)"
  print(f"\n{what}, --tile {args.tile} --tile-overlap 16, first {args.first_tiles} tiles, "
        f"every output buffer full size")
  print("| LR image | tiles run / all | peak RSS | float32 + uint8 output + input | "
        "peak minus buffers |")
  print("|---|---|---|---|---|")
  for r in rows:
    buffers = r["float32_output_gib"] + r["uint8_output_gib"] + r["input_gib"]
    print(f"| {r['size']} | {r['tiles_run']} / {r['tiles_total']} | "
          f"{r['peak_rss_gib']:.2f} GiB | {buffers:.2f} GiB | "
          f"{r['peak_minus_buffers_gib']:.2f} GiB |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", default="2000x1500", help="WIDTHxHEIGHT of the LR photo")
  parser.add_argument("--model", default="espcn")
  parser.add_argument("--scale", type=int, default=3)
  parser.add_argument("--tiles", default="none,128", help="comma-separated; none = whole")
  parser.add_argument("--before", help="another source tree to compare with (run first)")
  parser.add_argument("--json", help="write the figures here")
  parser.add_argument("--first-tiles", type=int,
                      help="run only the first K tiles of each image (see above)")
  parser.add_argument("--sizes", default="4000x3000,1000x750", help="with --first-tiles")
  parser.add_argument("--tile", type=int, default=128, help="with --first-tiles")
  parser.add_argument("--pretrained", help="with --first-tiles: a jaxsr.zoo name")
  parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.first_tiles:
    if args._child:  # pylint: disable=protected-access
      _first_tiles_child(args)
    else:
      _first_tiles(args)
    return
  size = tuple(int(v) for v in args.size.lower().split("x"))
  tiles = [None if t == "none" else int(t) for t in args.tiles.split(",")]
  trees = ([("before", pathlib.Path(args.before))] if args.before else []) + [("after", REPO)]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    image, ckpt = _make_inputs(root, size, args.model, args.scale)
    for tile in tiles:
      for label, tree in trees:
        t = time.perf_counter()
        result = _run(tree, image, ckpt, root / f"out_{label}_{tile}", tile)
        rows.append({"tree": label, "tile": tile, **result})
        print(f"  {label:6s} tile={tile}: rc {result['rc']}, peak RSS "
              f"{result['peak_rss_gib']:.2f} GiB, {result['wall_s']:.1f} s "
              f"({time.perf_counter() - t:.0f} s) {' '.join(result['notes'])}", flush=True)
  w, h = size
  print(f"\njaxsr upscale, {args.model} x{args.scale} (random weights), {w}x{h} RGB -> "
        f"{w * args.scale}x{h * args.scale} (uint8 result "
        f"{w * h * args.scale ** 2 * 3 / 2**30:.2f} GiB)")
  print(f"{'tile':>6s} " + " ".join(f"{label + ' RSS':>12s} {label + ' s':>9s}"
                                     for label, _ in trees))
  for tile in tiles:
    cells = []
    for label, _ in trees:
      r = next(r for r in rows if r["tree"] == label and r["tile"] == tile)
      rss = f"{r['peak_rss_gib']:.2f} GiB" if r["rc"] == 0 else f"rc {r['rc']}"
      cells.append(f"{rss:>12s} {r['wall_s']:9.1f}")
    print(f"{str(tile or 'whole'):>6s} " + " ".join(cells))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps({"size": size, "model": args.model,
                                                   "scale": args.scale, "rows": rows},
                                                  indent=1))


if __name__ == "__main__":
  main()
