"""Full-image evaluation with the two protocols of the published super-resolution tables.

Shared by ``eval.py`` (scripted evaluation) and training (periodic evaluation).

The (LR, reference) pairs come from ``jaxsr.degradations``, which defines both protocols;
here the model's output is clipped and rounded to uint8 and scored:

``y`` protocol (SRCNN/FSRCNN/VDSR era, Y-channel models, the published bicubic rows):
  the model sees the 1-channel float LR of the rounded MATLAB Y plane; shave ``scale`` pixels
  per side; PSNR/SSIM on the uint8 Y planes (L = 255).

``rgb`` protocol (EDSR/RCAN/ESRGAN era, RGB models, BasicSR's test code):
  SR = model(LR / 255) with LR the uint8 bicubic LR of the RGB image; Y of HR and SR, not
  rounded; shave ``scale``; PSNR/SSIM (L = 255).

A *model* here is any callable ``upscale(lr) -> sr`` on one image batch ``[1, h, w, C]`` float32
in [0, 1] returning ``[1, scale*h, scale*w, C]``; ``bicubic`` gives MATLAB bicubic upscaling.
Metrics are computed in JAX on images zero-padded to size buckets (multiples of
``BUCKET``) with masks, so evaluating a set compiles the metric once per bucket, not per image.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import color
from jaxsr import degradations
from jaxsr import imresize as imresize_lib
from jaxsr import metrics
from jaxsr.data.eval_sets import EvalImage, load_eval_set
from jaxsr.degradations import PROTOCOLS, Degraded, Protocol
from jaxsr.errors import InputError

__all__ = [
    "PROTOCOLS", "BUCKET", "Degraded", "bicubic", "comparison_panel", "degrade", "evaluate",
    "evaluate_model", "format_table", "model_upscaler", "write_results",
]

Upscaler = Callable[[np.ndarray], np.ndarray]
BUCKET = 64


def degrade(image: EvalImage, *, scale: int, protocol: Protocol) -> Degraded:
  """The protocol's (LR, reference) pair of an evaluation image (``degradations.degrade``).

  Raises:
    InputError: an unknown protocol, or the image is too small for this scale.
  """
  return degradations.degrade(image.hr, scale=scale, protocol=protocol, name=image.name)


def bicubic(scale: int) -> Upscaler:
  """MATLAB bicubic upscaling as an ``Upscaler`` (numpy float64; exact, no compilation)."""

  def upscale(lr: np.ndarray) -> np.ndarray:
    return imresize_lib.imresize_np(np.asarray(lr, np.float64), scale)

  return upscale


def model_upscaler(module, variables, *, scale: int) -> tuple[Upscaler, Protocol]:
  """An ``Upscaler`` running a Flax SR model through ``jaxsr.inference.upscale``.

  Bucketed: one compilation per size bucket, not per image. Returns it with the model's default
  protocol (1-channel models: ``y``; RGB models: ``rgb``).
  """
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  channels = int(getattr(module, "channels", 3))

  def upscale(lr: np.ndarray) -> np.ndarray:
    if lr.shape[-1] != channels:
      raise InputError(
          f"the model takes {channels}-channel input but the protocol gives {lr.shape[-1]} "
          f"(a Y-channel model needs protocol='y', an RGB model protocol='rgb')", field="protocol")
    return inference.upscale(module, variables, np.asarray(lr), scale=scale)

  return upscale, ("y" if channels == 1 else "rgb")


def _bucket(n: int) -> int:
  return int(math.ceil(n / BUCKET) * BUCKET)


@functools.lru_cache(maxsize=None)
def _metric_fn():
  def fn(x, y, height, width):
    return (metrics.psnr_masked(x, y, height, width, max_value=255.0),
            metrics.ssim_masked(x, y, height, width, max_value=255.0))
  return jax.jit(fn)


def score(sr_y: np.ndarray, hr_y: np.ndarray, *, crop: int) -> tuple[float, float]:
  """PSNR/SSIM of two ``[H, W, 1]`` 0..255 planes after shaving ``crop`` pixels per side.

  Images are zero-padded to a ``BUCKET`` multiple and scored with masks, so the metric
  compiles once per bucket shape.
  """
  x = sr_y[crop: sr_y.shape[0] - crop, crop: sr_y.shape[1] - crop]
  y = hr_y[crop: hr_y.shape[0] - crop, crop: hr_y.shape[1] - crop]
  h, w = x.shape[:2]
  pad = ((0, _bucket(h) - h), (0, _bucket(w) - w), (0, 0))
  xp = jnp.asarray(np.pad(x, pad), jnp.float32)
  yp = jnp.asarray(np.pad(y, pad), jnp.float32)
  p, s = _metric_fn()(xp, yp, jnp.int32(h), jnp.int32(w))
  return float(p), float(s)


def evaluate(upscale: Upscaler, images: Sequence[EvalImage], *, scale: int, protocol: Protocol,
             dataset: str) -> dict:
  """Evaluates one model on one set at one scale with one protocol.

  Args:
    upscale: ``[1, h, w, C]`` float32 [0, 1] -> ``[1, scale*h, scale*w, C]``.
    images: the set's HR images.
    scale: integer upscaling factor.
    protocol: ``'y'`` or ``'rgb'`` (see the module docstring).
    dataset: the set's display name.

  Returns:
    ``{"dataset", "scale", "protocol", "psnr", "ssim", "images": [{"name", "psnr", "ssim"}]}``
    with set means of the per-image values.
  """
  rows = []
  for image in images:
    pair = degrade(image, scale=scale, protocol=protocol)
    sr = np.asarray(upscale(pair.lr[None]))[0]
    if sr.shape != pair.hr.shape:
      raise InputError(f"{image.name}: model output shape {sr.shape} differs from the HR "
                       f"shape {pair.hr.shape} at x{scale}")
    sr_u8 = np.floor(np.clip(np.asarray(sr, np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    sr_y = sr_u8.astype(np.float64) if protocol == "y" else color.y_float(sr_u8)
    p, s = score(sr_y, pair.hr_y, crop=scale)
    rows.append({"name": image.name, "psnr": p, "ssim": s})
  return {
      "dataset": dataset,
      "scale": scale,
      "protocol": protocol,
      "psnr": float(np.mean([r["psnr"] for r in rows])),
      "ssim": float(np.mean([r["ssim"] for r in rows])),
      "images": rows,
  }


def format_table(results: Sequence[dict], *, model: str) -> str:
  """The paper-style table: one row per (protocol, scale), one PSNR/SSIM column per set."""
  datasets = list(dict.fromkeys(r["dataset"] for r in results))
  keys = list(dict.fromkeys((r["protocol"], r["scale"]) for r in results))
  cell = {(r["protocol"], r["scale"], r["dataset"]): r for r in results}
  width = max([16] + [len(d) + 2 for d in datasets])
  lines = [f"{'Model':<12}{'Protocol':<10}{'Scale':<7}" + "".join(f"{d:<{width}}" for d in datasets)]
  for protocol, scale in keys:
    row = f"{model:<12}{protocol:<10}{'x' + str(scale):<7}"
    for d in datasets:
      r = cell.get((protocol, scale, d))
      row += f"{r['psnr']:.2f}/{r['ssim']:.4f}".ljust(width) if r else "-".ljust(width)
    lines.append(row)
  return "\n".join(lines)


def write_results(path: str | os.PathLike, results: Sequence[dict], *, model: str,
                  **extra: Any) -> pathlib.Path:
  """Writes evaluation results as JSON, atomically; returns the path written.

  The file is ``{"model": model, **extra, "results": results}`` (keys in this order,
  ``indent=1``) with ``results`` the entries of :func:`evaluate`; ``extra`` holds
  JSON-serialisable provenance such as ``weights=...`` and ``checkpoint=...``. The parent
  folder is created; the JSON goes to ``<path>.tmp`` first and then replaces ``path``, so
  readers never see a partial file.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps({"model": model, **extra, "results": list(results)}, indent=1))
  tmp.replace(path)
  return path


def evaluate_model(module, variables, *, datasets: Sequence[str], scale: int,
                   protocol: Protocol | None = None, data_dir: str | None = None) -> list[dict]:
  """Evaluates a Flax SR model on several sets (``jaxsr.data.load_eval_set`` names or folders).

  Args:
    module, variables: the model and its variables (``model_upscaler``).
    datasets: set names or folders, evaluated in this order.
    scale: the upscaling factor.
    protocol: ``'y'`` or ``'rgb'``; None: the model's default (``model_upscaler``).
    data_dir: where named sets are found (None: ``$JAXSR_DATA_DIR``).

  Returns:
    One :func:`evaluate` entry per set.
  """
  upscale, default_protocol = model_upscaler(module, variables, scale=scale)
  results = []
  for spec in datasets:
    name, images = load_eval_set(spec, data_dir=data_dir)
    results.append(evaluate(upscale, images, scale=scale, protocol=protocol or default_protocol,
                            dataset=name))
  return results


def comparison_panel(module, variables, *, dataset: str, scale: int,
                     data_dir: str | None = None) -> np.ndarray:
  """LR (nearest-neighbour enlarged) | bicubic | model | HR of the first image of ``dataset``.

  The image is degraded with the protocol that suits the model (``y`` for 1-channel models,
  ``rgb`` otherwise). Returns float32 ``[H, 4 * W, 3]`` in [0, 1] (a 1-channel panel is
  repeated to 3 channels), ``H, W`` the modcropped HR size.
  """
  _, images = load_eval_set(dataset, data_dir=data_dir)
  channels = getattr(module, "channels", 3)
  pair = degrade(images[0], scale=scale, protocol="y" if channels == 1 else "rgb")
  sr = np.clip(model_upscaler(module, variables, scale=scale)[0](pair.lr[None])[0], 0, 1)
  smooth = np.clip(bicubic(scale)(pair.lr[None])[0], 0, 1)
  lr_big = np.repeat(np.repeat(pair.lr, scale, 0), scale, 1)
  panel = np.concatenate([lr_big, smooth, sr, pair.hr.astype(np.float32) / 255.0], axis=1)
  if panel.shape[-1] == 1:
    panel = np.repeat(panel, 3, -1)
  return panel.astype(np.float32)
