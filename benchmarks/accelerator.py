"""Accelerator benchmark: train and inference throughput, FLOP rate, MFU, compile times, scaling.

  PYTHONPATH=. python benchmarks/accelerator.py [--output FILE.json] [--quick]

Runs from a source checkout with only jax (plus its CUDA/TPU plugin), flax, optax and numpy
installed: synthetic batches, no TensorFlow, tensorflow-datasets, clu or ml_collections on the
import path (tests/test_accelerator_bench.py enforces it), no pip install.

For each of EDSR-baseline x2, RCAN x4 and RRDBNet x4 at their recipes' batch and LR patch sizes
(``jaxsr/recipes/edsr_baseline_x4.py``, ``rcan_x4.py``, ``rrdbnet_x4.py``; the test checks the
table below against them):

  * train steps/s of the real PSNR step (``jaxsr.tasks.psnr.make_train_step``, Adam, L1) in
    float32 and in bfloat16 compute (parameters, optimizer state and loss float32), on one
    device, after one untimed warm-up step; the compile time of each;
  * the step's FLOPs from XLA's cost analysis (``compiled.cost_analysis()['flops']``), the
    achieved TFLOP/s, and the MFU: achieved / the device's peak for that dtype (``PEAK_TFLOPS``
    below, dense figures, with their sources; None where the device kind is not in the table);
  * inference megapixels/s (output pixels) through ``jaxsr.inference.upscale`` on a batch of
    LR images, float32 and bfloat16 (``dtype=``), and its compile time;
  * data-parallel scaling: steps/s of the bfloat16 step over 1, 2, 4, ... up to all local devices
    with the per-device batch fixed (weak scaling; ``jaxsr.parallel``'s mesh), and the
    efficiency: samples/s over n devices divided by n times one device's (= rate_n / rate_1).

The JSON written to ``--output`` (and printed) holds the device kind and count, the JAX version,
one entry per model, and the elapsed seconds. ``--quick`` swaps in tiny versions of the models
(EDSR-baseline only unless ``--models`` names more), tiny patches and one timed step: seconds on
an idle CPU (the test runs it), figures meaningless.
The full run is sized to finish within five minutes on one GPU, compilation included.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

if __package__ in (None, ""):  # PYTHONPATH=. python benchmarks/accelerator.py from the checkout
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np
import optax

from jaxsr import inference
from jaxsr import models
from jaxsr import parallel
from jaxsr.tasks import base
from jaxsr.tasks import psnr

# Dense peak TFLOP/s per device (no sparsity). 'float32' is the rate XLA's default matmul
# precision reaches for float32 on that device (TF32 tensor cores on NVIDIA Ampere/Hopper; TPUs
# run float32 matmuls as bf16 passes, so no separate figure), 'bfloat16' the bf16 tensor rate.
# Sources: NVIDIA H100 Tensor Core GPU datasheet (SXM5: TF32 494.7, BF16 989.4 dense; the
# datasheet's 989/1979 figures are with sparsity); NVIDIA H200 product page / datasheet (SXM:
# same tensor-core rates as H100 SXM); NVIDIA A100 datasheet (SXM 80GB: TF32 156, BF16 312);
# Google Cloud TPU documentation, "TPU v4" (275 bf16 TFLOP/s per chip) and "TPU v5e"
# (197 bf16 TFLOP/s per chip).
PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    "H100": {"float32": 494.7, "bfloat16": 989.4},
    "H200": {"float32": 494.7, "bfloat16": 989.4},
    "A100": {"float32": 156.0, "bfloat16": 312.0},
    "TPU v4": {"float32": None, "bfloat16": 275.0},
    "TPU v5 lite": {"float32": None, "bfloat16": 197.0},  # v5e's device_kind
    "TPU v5e": {"float32": None, "bfloat16": 197.0},
}

# name -> (registry model, overrides, scale, batch, LR patch): the recipes' values.
MODELS: dict[str, tuple[str, dict, int, int, int]] = {
    "edsr_baseline_x2": ("edsr_baseline", {}, 2, 16, 48),
    "rcan_x4": ("rcan", {}, 4, 16, 48),
    "rrdbnet_x4": ("rrdbnet", {}, 4, 16, 32),
}
QUICK_OVERRIDES = {
    "edsr_baseline": dict(num_feat=8, num_block=1),
    "rcan": dict(num_feat=8, num_block=1, num_group=1, reduction=4),
    "rrdbnet": dict(num_feat=8, num_block=1, num_grow_ch=4),
}
QUICK_DEFAULT = "edsr_baseline_x2"  # --quick's one model unless --models names more
DTYPES = ("float32", "bfloat16")
LEARNING_RATE = 1e-4


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  """The table's peak for a device kind (matched by prefix/substring, e.g. 'NVIDIA H100 80GB')."""
  for name, peaks in PEAK_TFLOPS.items():
    if name.lower() in device_kind.lower():
      return peaks.get(dtype)
  return None


def _block(tree: Any) -> None:
  jax.block_until_ready(tree)


def _time(fn, n: int) -> float:
  """Seconds per call of ``fn`` (blocking on its result) over ``n`` calls."""
  start = time.perf_counter()
  out = None
  for _ in range(n):
    out = fn()
  _block(out)
  return (time.perf_counter() - start) / n


def _flops(compiled) -> float | None:
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def _batch(key: jax.Array, *, batch: int, patch: int, scale: int) -> dict[str, np.ndarray]:
  k1, k2 = jax.random.split(key)
  return {"lr": np.asarray(jax.random.uniform(k1, (batch, patch, patch, 3))),
          "hr": np.asarray(jax.random.uniform(k2, (batch, patch * scale, patch * scale, 3)))}


def bench_train(model, *, scale: int, batch: int, patch: int, dtype: str, steps: int,
                devices: list[jax.Device]) -> dict:
  """Steps/s, compile seconds and FLOPs of the PSNR step on ``devices`` (batch per device)."""
  tx = optax.adam(LEARNING_RATE)
  step_fn = psnr.make_train_step(model, tx, optax.constant_schedule(LEARNING_RATE),
                                 compute_dtype=dtype)
  state = base.create_train_state(model, tx, key=jax.random.key(0),
                                  lr_shape=(1, patch, patch, 3), ema=False)
  mesh = parallel.make_mesh(devices)
  n = len(devices)
  state = parallel.replicate(state, mesh)
  data = parallel.shard_batch(_batch(jax.random.key(1), batch=batch * n, patch=patch,
                                     scale=scale), mesh)
  sharding = jax.tree.map(lambda _: parallel.replicated(mesh), state)
  jitted = jax.jit(step_fn, donate_argnums=0,
                   out_shardings=(sharding, parallel.replicated(mesh)))
  start = time.perf_counter()
  with jax.set_mesh(mesh):
    compiled = jitted.lower(state, data).compile()
  compile_s = time.perf_counter() - start
  flops = _flops(compiled)
  holder = [state]

  def one():
    holder[0], metrics = compiled(holder[0], data)
    return metrics

  _block(one())  # warm-up
  seconds = _time(one, steps)
  return {"steps_per_s": 1.0 / seconds, "compile_s": compile_s,
          "flops_per_step": flops, "devices": n, "global_batch": batch * n}


def bench_inference(model, variables, *, scale: int, patch: int, dtype: str,
                    repeats: int, batch: int) -> dict:
  """Output megapixels/s of ``inference.upscale`` on ``batch`` LR images of side 2*patch."""
  side = 2 * patch
  images = np.asarray(jax.random.uniform(jax.random.key(2), (batch, side, side, 3)))
  kw = dict(scale=scale, batch_size=batch, dtype=None if dtype == "float32" else dtype)
  start = time.perf_counter()
  _block(inference.upscale(model, variables, images, **kw))
  first_s = time.perf_counter() - start
  seconds = _time(lambda: inference.upscale(model, variables, images, **kw), repeats)
  return {"mpixel_per_s": batch * (side * scale) ** 2 / seconds / 1e6,
          "first_call_s": first_s, "image_side": side, "batch": batch}


def run(*, quick: bool = False, names: list[str] | None = None) -> dict:
  """The benchmark's JSON document (see the module docstring)."""
  started = time.perf_counter()
  local = jax.local_devices()
  kind = local[0].device_kind
  steps = 1 if quick else 20
  result: dict[str, Any] = {
      "device_kind": kind, "platform": local[0].platform, "local_devices": len(local),
      "jax": jax.__version__, "quick": quick, "peak_tflops": {
          d: peak_tflops(kind, d) for d in DTYPES}, "models": {}}
  for name in names or list(MODELS):
    registry, overrides, scale, batch, patch = MODELS[name]
    if quick:
      overrides, batch, patch = QUICK_OVERRIDES[registry], 2, 8
    model = models.get_model(registry, scale=scale, **overrides)
    entry: dict[str, Any] = {"model": registry, "scale": scale, "batch": batch,
                             "lr_patch": patch, "train": {}, "inference": {}}
    for dtype in DTYPES:
      train = bench_train(model, scale=scale, batch=batch, patch=patch, dtype=dtype,
                          steps=steps, devices=local[:1])
      flops = train["flops_per_step"]
      train["tflops_per_s"] = flops * train["steps_per_s"] / 1e12 if flops else None
      peak = peak_tflops(kind, dtype)
      train["mfu"] = train["tflops_per_s"] / peak if peak and train["tflops_per_s"] else None
      entry["train"][dtype] = train
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, patch, patch, 3)))
    for dtype in DTYPES:
      entry["inference"][dtype] = bench_inference(
          model, variables, scale=scale, patch=patch, dtype=dtype,
          repeats=1 if quick else 5, batch=1 if quick else 4)
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= len(local)]
    if len(local) not in counts:
      counts.append(len(local))
    scaling = []
    base_rate = entry["train"]["bfloat16"]["steps_per_s"]
    for n in counts:
      rate = base_rate if n == 1 else bench_train(
          model, scale=scale, batch=batch, patch=patch, dtype="bfloat16", steps=steps,
          devices=local[:n])["steps_per_s"]
      scaling.append({"devices": n, "steps_per_s": rate,
                      "samples_per_s": rate * batch * n, "efficiency": rate / base_rate})
    entry["scaling"] = scaling
    result["models"][name] = entry
    print(f"{name}: " + ", ".join(
        f"{d} {entry['train'][d]['steps_per_s']:.3g} steps/s" for d in DTYPES), file=sys.stderr)
  result["elapsed_s"] = time.perf_counter() - started
  return result


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="tiny models and shapes (seconds on a CPU; for tests)")
  parser.add_argument("--models", default=None,
                      help=f"comma-separated subset of {', '.join(MODELS)} (default: all; "
                           f"with --quick: {QUICK_DEFAULT})")
  parser.add_argument("--output", default=None, help="also write the JSON here")
  args = parser.parse_args(argv)
  chosen = args.models or (QUICK_DEFAULT if args.quick else ",".join(MODELS))
  names = [n.strip() for n in chosen.split(",") if n.strip()]
  unknown = [n for n in names if n not in MODELS]
  if unknown:
    parser.error(f"--models: unknown {', '.join(unknown)}; expected some of {', '.join(MODELS)}")
  result = run(quick=args.quick, names=names)
  text = json.dumps(result, indent=1)
  print(text)
  if args.output:
    pathlib.Path(args.output).write_text(text + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
