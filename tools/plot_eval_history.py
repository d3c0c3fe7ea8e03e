"""Plots PSNR against wall time from runs' eval_history.jsonl files, as a PNG (Pillow only).

  python tools/plot_eval_history.py RUN_DIR [RUN_DIR ...] --key eval/Set5_x3_psnr \
      --output curve.png [--hline 32.75:target] [--hline 30.39:bicubic]

Each RUN_DIR holds the eval_history.jsonl that train.py appends to at every evaluation; the x
axis is its ``elapsed_s`` (wall time since the training process started, compilation and
evaluations included). Several runs are drawn in different colours.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def load(run: pathlib.Path, key: str) -> list[tuple[float, float]]:
  """``[(minutes since the run started, value)]`` from ``run/eval_history.jsonl``."""
  path = run / "eval_history.jsonl"
  if not path.is_file():
    raise SystemExit(f"{path}: no such file")
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  rows = [r for r in rows if key in r]
  if not rows:
    raise SystemExit(f"{path}: no {key!r} in it")
  return [(r["elapsed_s"] / 60.0, float(r[key])) for r in rows]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("runs", nargs="+", type=pathlib.Path)
  parser.add_argument("--key", required=True)
  parser.add_argument("--output", required=True)
  parser.add_argument("--hline", action="append", default=[], help="VALUE:LABEL")
  args = parser.parse_args()
  curves = [(run.name, load(run, args.key)) for run in args.runs]
  lines = [(float(v), label) for v, label in (h.split(":", 1) for h in args.hline)]
  xs = [x for _, c in curves for x, _ in c] + [0.0]
  ys = [y for _, c in curves for _, y in c] + [v for v, _ in lines]
  x0, x1 = 0.0, max(xs) * 1.05
  y0, y1 = min(ys) - 0.1, max(ys) + 0.1
  w, h, left, bottom, top, right = 900, 560, 80, 60, 40, 30
  img = Image.new("RGB", (w, h), "white")
  d = ImageDraw.Draw(img)
  px = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)
  py = lambda y: h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)
  d.rectangle([left, top, w - right, h - bottom], outline="black")
  for i in range(6):
    xv = x0 + (x1 - x0) * i / 5
    yv = y0 + (y1 - y0) * i / 5
    d.line([px(xv), h - bottom, px(xv), h - bottom + 5], fill="black")
    d.text((px(xv) - 12, h - bottom + 8), f"{xv:.0f}", fill="black")
    d.line([left - 5, py(yv), left, py(yv)], fill="black")
    d.text((8, py(yv) - 6), f"{yv:.2f}", fill="black")
  d.text((w // 2 - 60, h - 25), "wall time (minutes)", fill="black")
  d.text((left, 12), f"{args.key} (dB)", fill="black")
  for value, label in lines:
    d.line([left, py(value), w - right, py(value)], fill=(150, 150, 150), width=1)
    d.text((w - right - 160, py(value) - 14), f"{label} {value:.2f}", fill=(100, 100, 100))
  for i, (name, curve) in enumerate(curves):
    colour = COLOURS[i % len(COLOURS)]
    points = [(px(x), py(y)) for x, y in curve]
    if len(points) > 1:
      d.line(points, fill=colour, width=2)
    for p in points:
      d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
    d.text((left + 10, top + 10 + 16 * i), f"{name}: last {curve[-1][1]:.3f}", fill=colour)
  img.save(args.output)
  print(f"wrote {args.output}")


if __name__ == "__main__":
  main()
