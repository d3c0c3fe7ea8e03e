"""Model speed, jaxsr beside the same networks in PyTorch (BasicSR's arch classes), in one run.

  python benchmarks/models.py [--quick] [--json FILE] [--repeats N] [--only NAME,...]

Inference: output megapixels/s of one forward pass on a fixed LR batch (jit-compiled
``model.apply`` on the jaxsr side, ``torch.inference_mode`` + ``eval()`` on the PyTorch side),
plus jaxsr's user-facing ``jaxsr.inference.upscale`` on the same input. Training: steps/s of
jaxsr's real train step (``optim.make_optimizer`` / ``tasks.base.create_train_state`` /
``tasks.psnr.make_train_step``, jitted with the state donated as ``train.py`` does: Adam, L1) against a
PyTorch loop (``Adam``, ``l1_loss``, ``backward``, ``step``) on BasicSR's ``EDSR``, ``RCAN``
and ``RRDBNet``; FSRCNN is not in BasicSR, so a faithful PyTorch FSRCNN (ConvTranspose2d
head) is defined here. Both sides: float32, the same shapes and parameter counts (checked),
the same thread count (PyTorch ``set_num_threads(cores)``; XLA's CPU client has one thread
per core; the CPU time / wall time of each side is recorded as a check), the same float mode
(denormals flushed to zero, as XLA:CPU does). Unless ``--xla-default``, XLA runs with
``--xla_cpu_experimental_ynn_fusion_type=`` (see below: convolutions on every core). Warm-up
and JAX compilation are excluded from the figures (compile time is reported separately); the
two frameworks are timed alternately, repeat by repeat, and each figure is the median.
``--quick`` (about a minute) reduces depths, batches and repeats; every reduction is printed
and stored in the JSON.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# XLA:CPU in jax 0.10.2 hands convolutions to its YNNPACK fusions by default, and they ran on
# one core here (CPU time / wall time 1.00 on 2 cores); with YNN fusions off, convolutions go
# to XLA's Eigen kernels, which use every core (1.97): 1.2-1.7x faster inference, up to 1.15x
# faster training (BENCHMARKS.md). This must be set before jax initialises its CPU backend.
# --xla-default measures XLA's defaults instead.
CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type="
if "--xla-default" not in sys.argv and "ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + CPU_FLAG).strip()

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from common import machine, write_json
import oracle  # tests/oracle.py (benchmarks/common.py puts tests/ on the path)
from jaxsr import inference
from jaxsr import models
from jaxsr import optim
from jaxsr.recipes import common as recipes_common
from jaxsr.tasks import base as tasks_base
from jaxsr.tasks import psnr


# ----------------------------------------------------------------------------- PyTorch side


def load_basicsr_archs():
  """BasicSR's arch modules (``tests/oracle.py``). Returns ``(torch, {name: module})`` or None."""
  try:
    return oracle.load_basicsr_archs()
  except Exception as e:  # pylint: disable=broad-except
    print(f"cannot load BasicSR archs: {e!r}")
    return None


def torch_fsrcnn(torch, *, scale, channels=1, d=56, s=12, m=4):
  """FSRCNN(d, s, m) as in the paper and jaxsr: conv5x5 -> 1x1 shrink -> m conv3x3 -> 1x1
  expand, each with a per-channel PReLU, then ConvTranspose2d(9, stride s, padding 4,
  output_padding s-1)."""
  nn = torch.nn
  layers = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
  for _ in range(m):
    layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
  layers += [nn.Conv2d(s, d, 1), nn.PReLU(d),
             nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4,
                                output_padding=scale - 1)]
  return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- cases


def torch_swinir(torch, **kw):
  """spandrel's PyTorch SwinIR (the suite's oracle, ``tests/oracle.py``), loaded by path:
  ``import spandrel`` needs a working torchvision."""
  del torch
  module = oracle.load_spandrel_swinir()
  if module is None:
    raise ImportError("spandrel is not installed")
  return module.SwinIR(**kw)


def cases(quick: bool):
  """(key, jaxsr registry name, scale, jaxsr overrides, torch builder, channels, note)."""
  rcan = dict(num_group=10, num_block=20) if not quick else dict(num_group=2, num_block=5)
  rrdb = dict(num_block=23) if not quick else dict(num_block=3)
  rrdb_train = dict(num_block=6) if not quick else dict(num_block=2)
  return {
      "fsrcnn_x3": dict(
          name="fsrcnn", scale=3, over={}, channels=1,
          torch=lambda t, a: torch_fsrcnn(t, scale=3), depth="full (56,12,4), Y channel"),
      "edsr_baseline_x2": dict(
          name="edsr_baseline", scale=2, over={}, channels=3,
          torch=lambda t, a: a["edsr"].EDSR(3, 3, num_feat=64, num_block=16, upscale=2,
                                            res_scale=1.),
          depth="full (16 blocks x 64)"),
      "rcan_x4": dict(
          name="rcan", scale=4, over=rcan, channels=3,
          torch=lambda t, a: a["rcan"].RCAN(3, 3, num_feat=64, squeeze_factor=16, upscale=4,
                                            **rcan),
          depth=("full (10 groups x 20 RCAB)" if not quick else
                 f"reduced: {rcan['num_group']} groups x {rcan['num_block']} RCAB (full: 10 x 20)")),
      "rrdbnet_x4": dict(
          name="rrdbnet", scale=4, over=rrdb, channels=3,
          torch=lambda t, a: a["rrdbnet"].RRDBNet(3, 3, num_feat=64, num_grow_ch=32, scale=4,
                                                  **rrdb),
          depth=("full (23 RRDB)" if not quick else
                 f"reduced: {rrdb['num_block']} RRDB (full: 23)")),
      # SwinIR refuses size buckets (window padding): upscale() runs it with bucket=None.
      "swinir_light_x4": dict(
          name="swinir_light", scale=4, over={}, channels=3, bucket=None, random_init=True,
          torch=lambda t, a: torch_swinir(t, img_size=64, embed_dim=60, depths=[6] * 4,
                                          num_heads=[6] * 4, window_size=8, mlp_ratio=2.,
                                          upscale=4, upsampler="pixelshuffledirect",
                                          resi_connection="1conv"),
          depth="full (4 RSTB x 6 blocks, embed 60, window 8)"),
      "rrdbnet_x4_train": dict(
          name="rrdbnet", scale=4, over=rrdb_train, channels=3,
          torch=lambda t, a: a["rrdbnet"].RRDBNet(3, 3, num_feat=64, num_grow_ch=32, scale=4,
                                                  **rrdb_train),
          depth=f"reduced: {rrdb_train['num_block']} RRDB (full: 23)"),
  }


# ----------------------------------------------------------------------------- timing


def cpu_seconds() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def interleaved(fns: dict, *, repeats: int, warmup: int = 1, min_s: float = 0.2) -> dict:
  """Times every ``fns[k]()`` alternately, ``repeats`` rounds after ``warmup`` rounds.

  When every side's call is shorter than ``min_s`` (judged from the warm-up), calls are timed
  ``n`` at a time, the same ``n`` for every side. Returns ``{k: {'median_s', 'min_s', 'times_s', 'calls_per_time',
  'cpu_per_wall'}}`` (seconds per call); the order inside a round alternates, so neither side
  always runs right after the other."""
  calls = {}
  for _ in range(warmup):
    for k, fn in fns.items():
      t = time.perf_counter()
      fn()
      # Short calls (FSRCNN: a few ms) are repeated inside one timing, to about min_s.
      calls[k] = max(1, int(min_s / max(time.perf_counter() - t, 1e-6)))
  n = min(calls.values()) if calls else 1  # the same count for every side (the slowest's)
  fns = {k: (fn if n == 1 else (lambda fn=fn: [fn() for _ in range(n)])) for k, fn in fns.items()}
  times = {k: [] for k in fns}
  cpu = {k: 0.0 for k in fns}
  keys = list(fns)
  for r in range(repeats):
    for k in (keys if r % 2 == 0 else keys[::-1]):
      c, t = cpu_seconds(), time.perf_counter()
      fns[k]()
      times[k].append(time.perf_counter() - t)
      cpu[k] += cpu_seconds() - c
  return {k: {"median_s": statistics.median(v) / n, "min_s": min(v) / n, "times_s": v,
              "calls_per_time": n, "cpu_per_wall": cpu[k] / sum(v)} for k, v in times.items()}


def count_params(tree) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


# ----------------------------------------------------------------------------- benchmarks


def bench_inference(key, case, torch, archs, *, n, size, repeats):
  model = models.get_model(case["name"], scale=case["scale"], **case["over"])
  c, s = case["channels"], case["scale"]
  x = np.random.default_rng(0).random((n, size, size, c), dtype=np.float32)
  # Eager init on a small input: the parameters do not depend on the spatial size, and a
  # jitted init of full-depth RCAN takes minutes to compile on this CPU.
  x16 = jnp.zeros((1, 16, 16, c), jnp.float32)
  if case.get("random_init"):  # SwinIR: compiling model.init takes minutes; speed does not
    rng = np.random.default_rng(0)  # depend on the values, so random ones of the right shapes
    variables = jax.tree.map(lambda a: jnp.asarray(rng.normal(0, 0.02, a.shape), a.dtype),
                             jax.eval_shape(model.init, jax.random.key(0), x16))
  else:
    variables = model.init(jax.random.key(0), x16)
  xj = jnp.asarray(x)
  fwd = jax.jit(model.apply)
  t = time.perf_counter()
  fwd(variables, xj).block_until_ready()
  compile_s = time.perf_counter() - t
  fns = {"jaxsr": lambda: fwd(variables, xj).block_until_ready()}
  upscale_compile = None
  bucket = case.get("bucket", size)
  if size % 16 == 0:  # bucket=size: no padding; the forward pass plus upscale()'s masking
    t = time.perf_counter()
    inference.upscale(model, variables, x, scale=s, batch_size=n, bucket=bucket)
    upscale_compile = time.perf_counter() - t
    fns["jaxsr_upscale"] = lambda: inference.upscale(model, variables, x, scale=s,
                                                     batch_size=n, bucket=bucket)
  row = {"model": key, "task": "inference", "depth": case["depth"],
         "shape": f"LR {n}x{size}x{size}x{c} -> x{s}", "jax_params": count_params(variables),
         "jax_compile_s": compile_s, "jax_upscale_compile_s": upscale_compile}
  try:
    net = case["torch"](torch, archs).eval() if torch is not None else None
  except ImportError as e:  # spandrel (SwinIR's reference) absent: jaxsr's figures only
    print(f"{key}: no PyTorch reference ({e})")
    net = None
  if net is not None:
    row["torch_params"] = sum(p.numel() for p in net.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    xt_cl = xt.to(memory_format=torch.channels_last)

    def torch_fwd(module, inp):
      def fn():
        with torch.inference_mode():
          return module(inp)
      return fn
    fns["pytorch"] = torch_fwd(net, xt)
    fns["pytorch_cl"] = torch_fwd(net_cl, xt_cl)
  res = interleaved(fns, repeats=repeats)
  mpix = n * (size * s) ** 2 / 1e6
  for k, v in res.items():
    row[k] = dict(v, figure=mpix / v["median_s"])
  row["unit"] = "output Mpixel/s"
  return row


def bench_train(key, case, torch, archs, *, batch, patch, steps_per_rep, repeats, b2):
  model = models.get_model(case["name"], scale=case["scale"], **case["over"])
  c, s = case["channels"], case["scale"]
  rng = np.random.default_rng(1)
  lr = rng.random((batch, patch, patch, c), dtype=np.float32)
  hr = rng.random((batch, patch * s, patch * s, c), dtype=np.float32)
  config = recipes_common.base_config()
  config.update(learning_rate=1e-4, schedule="constant", num_train_steps=1000, optimizer="adam",
                adam_b2=b2)
  tx, schedule = optim.make_optimizer(config)
  state = tasks_base.create_train_state(model, tx, key=jax.random.key(0), lr_shape=lr.shape,
                                        ema=False)
  step = jax.jit(psnr.make_train_step(model, tx, schedule, loss="l1"), donate_argnums=0)
  batch_j = {"lr": jnp.asarray(lr), "hr": jnp.asarray(hr)}
  holder = {"state": state}

  def jax_steps():
    st = holder["state"]
    for _ in range(steps_per_rep):
      st, metrics = step(st, batch_j)
    jax.block_until_ready((st, metrics))
    holder["state"] = st

  t = time.perf_counter()
  jax_steps()
  compile_s = time.perf_counter() - t
  fns = {"jaxsr": jax_steps}
  row = {"model": key, "task": "train", "depth": case["depth"],
         "shape": f"batch {batch}, LR patch {patch} -> HR {patch * s} (x{s})",
         "optimizer": f"Adam(1e-4, b2={b2}), L1", "jax_params": count_params(state.params),
         "jax_compile_s": compile_s, "steps_per_repeat": steps_per_rep}
  if torch is not None:
    net = case["torch"](torch, archs).train()
    row["torch_params"] = sum(p.numel() for p in net.parameters())
    lr_t = torch.from_numpy(np.ascontiguousarray(lr.transpose(0, 3, 1, 2)))
    hr_t = torch.from_numpy(np.ascontiguousarray(hr.transpose(0, 3, 1, 2)))

    def torch_loop(module, fmt):
      opt = torch.optim.Adam(module.parameters(), lr=1e-4, betas=(0.9, b2))
      x, y = lr_t.to(memory_format=fmt), hr_t.to(memory_format=fmt)

      def fn():
        for _ in range(steps_per_rep):
          opt.zero_grad(set_to_none=True)
          loss = torch.nn.functional.l1_loss(module(x), y)
          loss.backward()
          opt.step()
        loss.item()
      return fn
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    fns["pytorch"] = torch_loop(net, torch.contiguous_format)
    fns["pytorch_cl"] = torch_loop(net_cl, torch.channels_last)
  res = interleaved(fns, repeats=repeats)
  for k, v in res.items():
    row[k] = dict(v, figure=steps_per_rep / v["median_s"])
  row["unit"] = "steps/s"
  return row


def best_torch(r):
  """The faster PyTorch variant (NCHW, BasicSR's layout, or channels_last) and its figure."""
  got = [(r[k]["figure"], k) for k in ("pytorch", "pytorch_cl") if k in r]
  return max(got) if got else (None, None)


def ratio_table(rows) -> str:
  lines = ["| model | task | setting | jaxsr | PyTorch (best of NCHW / channels_last) | unit "
           "| jaxsr / PyTorch |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    for side in ("jaxsr", "jaxsr_upscale"):
      if side not in r:
        continue
      j = r[side]["figure"]
      p, which = best_torch(r)
      name = r["model"] + (" (upscale())" if side == "jaxsr_upscale" else "")
      lines.append(f"| {name} | {r['task']} | {r['shape']}; {r['depth']} | {j:.4g} | "
                   f"{p:.4g} ({'NCHW' if which == 'pytorch' else 'channels_last'}) | {r['unit']} | "
                   f"**{j / p:.2f}x** |" if p else
                   f"| {name} | {r['task']} | {r['shape']}; {r['depth']} | {j:.4g} | - | "
                   f"{r['unit']} | - |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="about a minute: reduced depths")
  parser.add_argument("--json", default=None)
  parser.add_argument("--repeats", type=int, default=None)
  parser.add_argument("--xla-default", action="store_true",
                      help=f"keep XLA's default CPU flags (without {CPU_FLAG})")
  parser.add_argument("--only", default="", help="comma-separated row keys, e.g. rcan_x4")
  parser.add_argument("--size", type=int, default=None,
                      help="inference LR side (default 64; --quick: 48)")
  args = parser.parse_args()
  quick = args.quick
  repeats = args.repeats or (3 if quick else 5)
  size = args.size or (48 if quick else 64)
  loaded = load_basicsr_archs()
  torch, archs = loaded if loaded else (None, None)
  threads = os.cpu_count()
  if torch is not None:
    torch.set_num_threads(threads)
    # XLA's CPU runtime flushes denormals to zero (checked below); PyTorch does not by default,
    # and BasicSR's initialisation (default_init_weights, scale 0.1) drives the activations of
    # randomly initialised nets into denormals, which made PyTorch 2-3x slower for a reason
    # that trained weights would not have. Same float mode on both sides:
    torch.set_flush_denormal(True)
  else:
    print("BasicSR/PyTorch not available: only jaxsr's figures")
  only = set(filter(None, args.only.split(",")))
  all_cases = cases(quick)
  rows = []
  t0 = time.perf_counter()
  print(f"load average at start: {os.getloadavg()} (other jobs on the machine skew both sides)")

  def want(k):
    return not only or k in only

  infer = [("fsrcnn_x3", 4), ("edsr_baseline_x2", 1), ("rcan_x4", 1), ("rrdbnet_x4", 1),
           ("swinir_light_x4", 1)]
  for key, n in infer:
    if want(key):
      t = time.perf_counter()
      row = bench_inference(key, all_cases[key], torch, archs, n=n, size=size,
                            repeats=repeats)
      row["bench_seconds"] = time.perf_counter() - t
      rows.append(row)
      print("\n".join(ratio_table([row]).splitlines()[2:]), flush=True)
  train = [("edsr_baseline_x2", all_cases["edsr_baseline_x2"], 0.999,
            dict(batch=16, patch=48) if not quick else dict(batch=2, patch=24)),
           ("rrdbnet_x4_train", all_cases["rrdbnet_x4_train"], 0.99,
            dict(batch=16, patch=32) if not quick else dict(batch=2, patch=16))]
  for key, case, b2, shape in train:
    if want(key + "_train" if not key.endswith("_train") else key):
      t = time.perf_counter()
      row = bench_train(key.replace("_train", ""), case, torch, archs, b2=b2,
                        steps_per_rep=1, repeats=max(3, repeats - 2), **shape)
      row["bench_seconds"] = time.perf_counter() - t
      rows.append(row)
      print("\n".join(ratio_table([row]).splitlines()[2:]), flush=True)
  info = machine()
  info["torch_threads"] = torch.get_num_threads() if torch is not None else None
  info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
  info["load_average_at_end"] = os.getloadavg()
  info["jax_devices"] = [str(d) for d in jax.devices()]
  info["xla_flushes_denormals"] = bool(jax.jit(lambda a: a * 0.5)(jnp.float32(2e-38)) == 0)
  info["torch_flush_denormal"] = torch is not None
  print()
  print(ratio_table(rows))
  for r in rows:
    if r.get("torch_params") not in (None, r["jax_params"]):
      print(f"WARNING {r['model']}: parameter counts differ: jaxsr {r['jax_params']}, "
            f"PyTorch {r['torch_params']}")
  print("JAX compile (s): " + ", ".join(f"{r['model']} {r['task']} {r['jax_compile_s']:.1f}"
                                         for r in rows))
  print("PyTorch NCHW / channels_last: " + ", ".join(
      f"{r['model']} {r['task']} {r['pytorch']['figure']:.4g} / {r['pytorch_cl']['figure']:.4g}"
      for r in rows if "pytorch" in r))
  print("CPU time / wall time (jaxsr, PyTorch NCHW): " + ", ".join(
      f"{r['model']} {r['task']} {r['jaxsr']['cpu_per_wall']:.2f}, "
      f"{r.get('pytorch', {}).get('cpu_per_wall', float('nan')):.2f}" for r in rows))
  print("seconds per row: " + ", ".join(f"{r['model']} {r['task']} {r['bench_seconds']:.0f}"
                                         for r in rows))
  print(f"machine: {info}; total {time.perf_counter() - t0:.0f} s")
  write_json(args.json, {"benchmark": "models", "quick": quick, "repeats": repeats,
                         "command": "python benchmarks/models.py" + (" --quick" if quick else "")
                         + (" --xla-default" if args.xla_default else ""),
                         "machine": info, "rows": rows})


if __name__ == "__main__":
  main()
