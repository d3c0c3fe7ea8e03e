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


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", default="2000x1500", help="WIDTHxHEIGHT of the LR photo")
  parser.add_argument("--model", default="espcn")
  parser.add_argument("--scale", type=int, default=3)
  parser.add_argument("--tiles", default="none,128", help="comma-separated; none = whole")
  parser.add_argument("--before", help="another source tree to compare with (run first)")
  parser.add_argument("--json", help="write the figures here")
  args = parser.parse_args()
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
