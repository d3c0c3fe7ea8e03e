"""imresize and PSNR+SSIM speed on Set14, jaxsr beside BasicSR's functions, in one run.

  python benchmarks/metrics_imresize.py [--data-dir DIR] [--repeats N] [--json FILE]

Uses Set14 from DIR (<DIR>/Set14 or <DIR>/benchmarks/Set14), or the embedded test images when
it is absent (said in the output). BasicSR comes from tools/install_oracle.sh; without it only
jaxsr's figures are printed. Each figure is the median over repeats of one pass over the whole
set; warm-up (and JAX compilation, reported separately) excluded. Both sides use all cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from common import machine, median_time, write_json
from jaxsr import color
from jaxsr import degradations
from jaxsr import eval_lib
from jaxsr import imresize as ir
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError
from oracle import load_basicsr


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", default=os.environ.get("JAXSR_DATA_DIR"))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  try:
    name, images = load_eval_set("set14", data_dir=args.data_dir)
  except InputError as e:
    print(f"Set14 not found ({e}); using the embedded test images")
    name, images = load_eval_set("embedded")
  scale = args.scale
  rgb = [degradations.modcrop(np.repeat(i.hr, 3, -1) if i.hr.shape[-1] == 1 else i.hr, scale)
         for i in images]
  oracle = load_basicsr()
  if oracle is not None:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(os.cpu_count())
  rows = {}

  # --- downscaling by 1/scale (uint8 -> rounded uint8, as the rgb protocol builds LR) ---
  rows["imresize_numpy"] = median_time(lambda: [ir.imresize_np(x, 1 / scale) for x in rgb],
                                       repeats=args.repeats)
  fns = {}
  def jax_resize():
    out = []
    for x in rgb:
      fn = fns.setdefault(x.shape, jax.jit(lambda v: ir.imresize(v, 1 / scale)))
      out.append(fn(x))
    jax.block_until_ready(out)
  t = time.perf_counter()
  jax_resize()
  compile_resize = time.perf_counter() - t
  rows["imresize_jax"] = median_time(jax_resize, repeats=args.repeats)
  if oracle is not None:
    f01 = [x.astype(np.float64) / 255.0 for x in rgb]
    rows["imresize_basicsr"] = median_time(
        lambda: [np.floor(np.clip(oracle.imresize(x, 1 / scale) * 255, 0, 255) + 0.5) for x in f01],
        repeats=args.repeats)

  # --- PSNR + SSIM on the Y channel, crop = scale, of bicubic x{scale} outputs ---
  hr_y = [color.y_float(x) for x in rgb]
  sr = [ir.imresize_np(ir.imresize_np(x, 1 / scale), scale) for x in rgb]
  sr_y = [color.y_float(x) for x in sr]
  def jax_metrics():
    return [eval_lib.score(a, b, crop=scale) for a, b in zip(sr_y, hr_y)]
  t = time.perf_counter()
  jax_metrics()
  compile_metrics = time.perf_counter() - t
  rows["metrics_jax"] = median_time(jax_metrics, repeats=args.repeats)
  if oracle is not None:
    bgr_hr = [x[..., ::-1].astype(np.float64) for x in rgb]
    bgr_sr = [x[..., ::-1].astype(np.float64) for x in sr]
    def basicsr_metrics():
      return [(oracle.calculate_psnr(a, b, crop_border=scale, test_y_channel=True),
               oracle.calculate_ssim(a, b, crop_border=scale, test_y_channel=True))
              for a, b in zip(bgr_sr, bgr_hr)]
    rows["metrics_basicsr"] = median_time(basicsr_metrics, repeats=args.repeats)
    ours = np.mean(jax_metrics(), axis=0)
    theirs = np.mean(basicsr_metrics(), axis=0)
    print(f"agreement on {name}: jaxsr PSNR/SSIM {ours[0]:.4f}/{ours[1]:.5f}, "
          f"BasicSR {theirs[0]:.4f}/{theirs[1]:.5f}")

  print(f"{name} ({len(rgb)} images), x{scale}, median of {args.repeats}; machine: {machine()}")
  print(f"{'task':<34}{'seconds/set':>12}{'vs BasicSR':>12}")
  for task, base in (("imresize", "imresize_basicsr"), ("metrics", "metrics_basicsr")):
    for key, value in rows.items():
      if key.startswith(task):
        ratio = f"{rows[base] / value:.1f}x" if base in rows else "-"
        print(f"{key:<34}{value:>12.4f}{ratio:>12}")
  print(f"compilation (first pass, excluded): imresize_jax {compile_resize:.2f} s "
        f"({len(fns)} shapes), metrics_jax {compile_metrics:.2f} s")
  write_json(args.json, {"dataset": name, "scale": scale, "seconds": rows, "machine": machine(),
                         "compile_seconds": {"imresize_jax": compile_resize,
                                             "metrics_jax": compile_metrics}})


if __name__ == "__main__":
  main()
