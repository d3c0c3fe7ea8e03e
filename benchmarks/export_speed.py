"""Exported artifacts side by side: size on disk and CPU inference speed of each runtime.

For each model family (random weights at the reference configuration, or ``--tiny`` for
reduced widths) exports every format (``jaxsr.export``), checks each artifact's output
against jaxsr's own (``jaxsr.inference.upscale(..., bucket=None)``) on two image sizes, and
times, in one process and one run, jaxsr's jitted forward pass and each runtime
(``jax.export`` deserialised, TensorFlow SavedModel, TFLite interpreter, onnxruntime) on one
``--size`` x ``--size`` LR image (median of ``--repeats`` after one warm-up call). Prints a
Markdown table and the machine's load average before and after (the figures depend on it).

  python benchmarks/export_speed.py [--models espcn,fsrcnn,...] [--size 64] [--repeats 5]
                                    [--tiny] [--out /tmp/export_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from jaxsr import export  # pylint: disable=g-import-not-at-top
from jaxsr import inference  # pylint: disable=g-import-not-at-top

SCALES = {"srcnn": 3, "fsrcnn": 3, "espcn": 3, "vdsr": 2, "edsr_baseline": 4, "rcan": 4,
          "msrresnet": 4, "rrdbnet": 4, "srvgg_compact": 4, "realcugan": 2,
          "waifu2x_cunet": 2, "waifu2x_upconv7": 2, "swinir_light": 2, "swinir": 2,
          "swinir_real": 4}
TINY = {"edsr_baseline": dict(num_feat=16, num_block=2),
        "rcan": dict(num_feat=16, num_block=2, num_group=2, reduction=4),
        "msrresnet": dict(num_feat=16, num_block=2),
        "rrdbnet": dict(num_feat=16, num_block=1, num_grow_ch=8),
        "realcugan": dict(num_feat=16), "waifu2x_cunet": dict(num_feat=16),
        "waifu2x_upconv7": dict(features=(8, 8, 8, 8, 8, 8)),
        "swinir_light": dict(embed_dim=12, depths=(2,), num_heads=(2,), window_size=4),
        "swinir": dict(embed_dim=12, depths=(2,), num_heads=(2,), window_size=4, num_feat=16),
        "swinir_real": dict(embed_dim=12, depths=(2,), num_heads=(2,), window_size=4,
                            num_feat=16)}


def _time(fn, x, repeats: int) -> float:
  fn(x)  # warm-up (compilation, allocation)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn(x)
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default=",".join(SCALES))
  parser.add_argument("--formats", default=",".join(export.FORMATS))
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--out")
  args = parser.parse_args(argv)
  rows = []
  print(f"load average at start: {os.getloadavg()}, cpus: {os.cpu_count()}", flush=True)
  rng = np.random.default_rng(0)
  with tempfile.TemporaryDirectory() as tmp:
    for name in args.models.split(","):
      from jaxsr import models  # pylint: disable=g-import-not-at-top
      if name not in models.list_models():
        print(f"{name}: not in the registry, skipped", flush=True)
        continue
      net = export.random_model(name, scale=SCALES.get(name, 4),
                                **(TINY.get(name, {}) if args.tiny else {}))
      x = rng.random((1, args.size, args.size, net.channels), dtype=np.float32)
      jitted = lambda a: np.asarray(inference.upscale(net.module, net.variables, a,  # noqa: E731
                                                      bucket=None))
      row = {"model": name, "scale": net.scale, "jaxsr_s": _time(jitted, x, args.repeats)}
      for fmt in args.formats.split(","):
        try:
          art = export.export(net, os.path.join(tmp, f"{name}{export.SUFFIX[fmt]}"), format=fmt)
          run = export.load(art.path)
          err = 0.0
          for shape in [(1, 7, 9), (2, 12, 5)]:
            probe = rng.random((*shape, net.channels), dtype=np.float32)
            err = max(err, float(np.abs(run(probe) - jitted(probe)).max()))
          row[fmt] = {"bytes": art.size_bytes, "max_err": err,
                      "s": _time(run, x, args.repeats)}
        except Exception as e:  # pylint: disable=broad-except
          row[fmt] = {"error": " ".join(str(e).split())[:200]}
        print(name, fmt, row[fmt], flush=True)
      rows.append(row)
  print(f"load average at end: {os.getloadavg()}")
  fmts = args.formats.split(",")
  print(f"\n| model | jaxsr (jit) | " + " | ".join(fmts) + " |")
  print("|---|---|" + "---|" * len(fmts))
  for r in rows:
    cells = []
    for f in fmts:
      c = r[f]
      cells.append(f"error: {c['error'][:60]}" if "error" in c else
                   f"{c['s'] * 1e3:.1f} ms, {c['bytes'] / 2**20:.2f} MiB, err {c['max_err']:.1e}")
    print(f"| {r['model']} x{r['scale']} | {r['jaxsr_s'] * 1e3:.1f} ms | " + " | ".join(cells)
          + " |")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
