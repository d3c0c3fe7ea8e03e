"""Draws docs/pretrained_samples.png: one LR crop upscaled by bicubic and by pretrained models.

The crop is cut from an HR image, reduced by MATLAB bicubic to LR, then shown upscaled x4 (x2
models are followed by MATLAB bicubic x2, as `jaxsr upscale --outscale 4` does) beside the HR.

  python tools/pretrained_samples.py IMAGE.png [--box Y,X,SIZE] [--output docs/pretrained_samples.png]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxsr import imresize, inference, runtime, zoo  # pylint: disable=g-import-not-at-top

MODELS = ("realesrgan-x4plus", "realesr-animevideov3-x4", "realcugan-se-x2", "waifu2x-cunet-x2")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("image")
  parser.add_argument("--box", default="0,0,192", help="Y,X,SIZE of the HR crop (SIZE % 4 == 0)")
  parser.add_argument("--output", default="docs/pretrained_samples.png")
  args = parser.parse_args()
  runtime.configure_xla_cpu()
  y, x, size = (int(v) for v in args.box.split(","))
  hr = np.asarray(Image.open(args.image).convert("RGB"))[y:y + size, x:x + size]
  lr = imresize.imresize_np(hr, 0.25)
  panels = [("LR (x4 nearest)", np.repeat(np.repeat(lr, 4, 0), 4, 1)),
            ("bicubic", imresize.imresize_np(lr, 4.0))]
  for name in MODELS:
    module, variables = zoo.load_pretrained(name)
    sr = inference.upscale(module, variables, lr.astype(np.float32) / 255.0)
    sr = np.floor(np.clip(sr, 0, 1) * 255 + 0.5).astype(np.uint8)
    resized = sr.shape[0] != size
    if resized:
      sr = imresize.imresize_np(sr, size / sr.shape[0])
    panels.append((f"{name} +bicubic" if resized else name, sr))
    print(name, "done", flush=True)
  panels.append(("HR", hr))
  label = 14
  canvas = Image.new("RGB", (len(panels) * (size + 4), size + label), "white")
  draw = ImageDraw.Draw(canvas)
  for i, (title, img) in enumerate(panels):
    canvas.paste(Image.fromarray(img), (i * (size + 4), label))
    draw.text((i * (size + 4) + 2, 1), title[:30], fill="black")
  canvas.save(args.output)
  print("wrote", args.output)


if __name__ == "__main__":
  main()
