"""Cost of Real-ESRGAN's on-device degradations beside the RRDBNet x4 train step.

  python benchmarks/realworld_cost.py [--batch 16] [--hr 128] [--blocks 6] [--repeats 5]
                                      [--json FILE]
  python benchmarks/realworld_cost.py --picture docs/realworld_stages.png [--seed 3]

Times (median wall seconds, compilation excluded, interleaved so machine load hits both alike):
  * ``jaxsr.realworld.degrade_batch`` (USM, draws, both stages, the final sinc/JPEG) on a batch of
    HR crops, and its parts (``usm_sharpen``, ``draw_params``, ``jpeg``);
  * the RRDBNet x4 train step at its recipe's batch and patch (16, LR 32 -> HR 128, Adam, L1),
    with ``--blocks`` RRDB (23 is the paper's depth; BENCHMARKS.md's train row uses 6).
and prints each cost as a fraction of one train step. ``--picture`` instead draws one sample's
parameters (``--seed``) and saves the same 128x128 crop of the embedded ``astronaut`` photograph
after every stage (each shown at the HR size, nearest-neighbour) as one labelled PNG strip.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxsr import runtime  # pylint: disable=g-import-not-at-top

runtime.configure_xla_cpu()  # as train.py does, before the first JAX computation

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from common import machine, median_time, write_json
from jaxsr import models, optim, realworld
from jaxsr.recipes import common as recipes_common
from jaxsr.tasks import base as tasks_base
from jaxsr.tasks import psnr


def picture(path: str, seed: int) -> None:
  """Saves the stage strip of one draw (see the module doc)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  from jaxsr.data.embedded import embedded_images  # pylint: disable=g-import-not-at-top
  from jaxsr.realworld import pipeline  # pylint: disable=g-import-not-at-top
  photo = dict(embedded_images("test"))["astronaut"]
  hr = jnp.asarray(photo[40:168, 180:308].astype(np.float32) / 255)
  options = realworld.RealESRGANOptions()
  draws = realworld.draw_params(jax.random.key(seed), options=options)
  stages = [("HR", hr, (128, 128))]
  pipeline.degrade(hr, draws, scale=4, options=options, stages=stages)
  tiles = []
  for name, img, (h, w) in stages:
    crop = np.asarray(img)[: int(h), : int(w)]
    tile = Image.fromarray(np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8))
    tile = tile.resize((128, 128), Image.NEAREST)
    canvas = Image.new("RGB", (128, 146), "white")
    canvas.paste(tile, (0, 18))
    ImageDraw.Draw(canvas).text((2, 3), f"{name} {int(h)}x{int(w)}", fill="black")
    tiles.append(canvas)
  strip = Image.new("RGB", (130 * len(tiles), 146), "white")
  for i, tile in enumerate(tiles):
    strip.paste(tile, (130 * i, 0))
  strip.save(path)
  d = jax.device_get(draws)
  print(f"wrote {path}: scale1 {float(d.scale1):.3f} mode1 {int(d.mode1)} "
        f"gaussian1 {bool(d.gaussian1)} q1 {float(d.quality1):.1f} scale2 {float(d.scale2):.3f} "
        f"gaussian2 {bool(d.gaussian2)} q2 {float(d.quality2):.1f} sinc_first {bool(d.sinc_first)}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--hr", type=int, default=128)
  parser.add_argument("--blocks", type=int, default=6)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default=None)
  parser.add_argument("--picture", default=None, help="save the stage strip PNG here and exit")
  parser.add_argument("--seed", type=int, default=3)
  args = parser.parse_args()
  if args.picture:
    picture(args.picture, args.seed)
    return
  scale, n, size = 4, args.batch, args.hr
  rng = np.random.default_rng(0)
  hr = jnp.asarray(rng.random((n, size, size, 3), dtype=np.float32))
  lr = jnp.asarray(rng.random((n, size // scale, size // scale, 3), dtype=np.float32))
  options = realworld.RealESRGANOptions()
  key = jax.random.key(0)

  degrade = jax.jit(realworld.degrade_batch, static_argnames=("scale", "options"))
  usm = jax.jit(realworld.usm_sharpen)
  draws = jax.jit(jax.vmap(lambda k: realworld.draw_params(k, options=options)))
  jpeg = jax.jit(jax.vmap(realworld.jpeg))
  keys = jax.random.split(key, n)
  quality = jnp.full((n,), 50.0)

  model = models.get_model("rrdbnet", scale=scale, num_block=args.blocks)
  config = recipes_common.base_config()
  config.update(learning_rate=1e-4, schedule="constant", num_train_steps=1000, optimizer="adam",
                adam_b2=0.99)
  tx, schedule = optim.make_optimizer(config)
  state = tasks_base.create_train_state(model, tx, key=jax.random.key(0), lr_shape=lr.shape,
                                        ema=False)
  step = jax.jit(psnr.make_train_step(model, tx, schedule, loss="l1"), donate_argnums=0)
  holder = {"state": state}

  def train_step():
    holder["state"], metrics = step(holder["state"], {"lr": lr, "hr": hr})
    jax.block_until_ready(metrics)

  fns = {
      "degrade_batch": lambda: jax.block_until_ready(degrade(key, hr, scale=scale,
                                                             options=options)),
      "usm_sharpen": lambda: jax.block_until_ready(usm(hr)),
      "draw_params": lambda: jax.block_until_ready(draws(keys)),
      "jpeg (HR size)": lambda: jax.block_until_ready(jpeg(hr, quality)),
      f"rrdbnet_x4 train step ({args.blocks} RRDB)": train_step,
  }
  times = {}
  for name, fn in fns.items():
    fn()  # compile
  for _ in range(args.repeats):  # interleaved rounds
    for name, fn in fns.items():
      times.setdefault(name, []).append(median_time(fn, repeats=1, warmup=0))
  med = {k: float(np.median(v)) for k, v in times.items()}
  step_s = med[f"rrdbnet_x4 train step ({args.blocks} RRDB)"]
  print(f"batch {n}, HR {size} -> LR {size // scale} (x{scale}); {machine()}")
  print("| operation | median s | x train step |")
  print("|---|---|---|")
  for name, s in med.items():
    print(f"| {name} | {s:.4f} | {s / step_s:.2f} |")
  write_json(args.json, {"machine": machine(), "batch": n, "hr": size, "blocks": args.blocks,
                         "median_s": med})


if __name__ == "__main__":
  main()
