"""Input-pipeline throughput next to the EDSR-baseline x2 train step's consumption.

Usage:
  python benchmarks/input_pipeline.py [--json FILE] [--quick]
  python benchmarks/input_pipeline.py --stream-only [--sizes 50,200] [--json FILE]
  python benchmarks/input_pipeline.py --no-lr [--images 8] [--lr-steps 100] [--json FILE]

Measures, on this machine:
  * T91 (../shared/data/train/T91 when present, else the embedded default): patches/s of
    ``TrainPipeline`` for the EDSR x2 recipe (batch 16, LR patch 48 -> HR 96, RGB) and the
    FSRCNN x3 recipe (batch 16, LR patch 17, Y channel, HR rescales 1.0..0.6).
  * 2K-size images (DIV2K from $JAXSR_DATA_DIR when present, else synthetic 2040x1356 PNGs
    written to a temporary folder): one-off tfds build time, cache fill (PNG decode) time and
    steady-state patches/s for the EDSR x2 recipe.
  * The EDSR-baseline x2 train step (64 features, 16 residual blocks, jit, Adam, L1, batch 16,
    HR patch 96) in steps/s and patches/s, alone and fed by the pipeline's iterator.
  * Streaming vs in-memory on sets of different sizes (``--sizes``, default 50 and 200
    synthetic 2040x1356 LR/HR pairs written to a temporary folder, read as paired folders):
    patches/s and the peak RSS of a fresh subprocess per configuration (``resource.getrusage``),
    for ``mode='stream'`` (bounded memory) and ``mode='memory'`` (the cache grows with the set).
  * ``--no-lr``: what the host-side bicubic LR costs the Real-ESRGAN recipes, whose step makes
    its LR from the HR crop on device (``Task.needs_lr`` False -> ``with_lr=False``): an HR
    folder of synthetic 2040x1356 PNGs (``--images``), x4, LR patch 64 (HR 256), batch 12, in
    ``mode='memory'`` and ``mode='stream'``, each with and without the LR: process CPU seconds
    (all threads) of the setup (cache fill / first block) and of ``--lr-steps`` steps, CPU ms per
    patch and wall patches/s, and a check that the HR batches are identical.
tfds autocache is off everywhere (``builders.examples`` reads with ``try_autocache=False``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxsr import runtime  # pylint: disable=wrong-import-position
from jaxsr.data import builders  # pylint: disable=wrong-import-position
from jaxsr.data import pipeline  # pylint: disable=wrong-import-position

import tensorflow_datasets as tfds  # pylint: disable=wrong-import-position,g-bad-import-order

tfds.disable_progress_bar()
runtime.hide_accelerators_from_tensorflow()  # the EDSR step below runs JAX on the accelerator

SHARED = pathlib.Path(os.environ.get('JAXSR_SHARED', pathlib.Path(__file__).resolve().parents[2] / 'shared'))


def cpu_model() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def time_pipeline(p: pipeline.TrainPipeline, steps: int, *, prefetch: int = 2,
                  workers: int = 1) -> float:
  """Steady-state patches/s of ``p.iterate`` (after one warm-up batch)."""
  it = p.iterate(start_step=0, num_steps=steps + 1, prefetch=prefetch, workers=workers)
  next(it)
  start = time.perf_counter()
  n = sum(1 for _ in it)
  return n * p.batch_size / (time.perf_counter() - start)


def synthetic_2k(folder: pathlib.Path, count: int) -> None:
  """Writes ``count`` 2040x1356 RGB PNGs with natural-ish content (smooth + texture)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder.mkdir(parents=True, exist_ok=True)
  h, w = 1356, 2040
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  for i in range(count):
    rng = np.random.default_rng(i)
    base = 128 + 70 * np.sin(xx / (40 + 5 * i) + i) * np.cos(yy / (55 + 3 * i))
    image = base[..., None] + np.asarray([0, 20, -20], np.float32) + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f'{i:04d}.png')


def edsr_step(quick: bool) -> tuple[dict, object]:
  """Times the EDSR-baseline x2 step; returns (figures, step runner for feeding)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  try:
    from jaxsr.models import get_model  # pylint: disable=g-import-not-at-top
    model = get_model('edsr_baseline', scale=2)
    source = "jaxsr.models.get_model('edsr_baseline', scale=2)"
  except ImportError:
    model = _fallback_edsr_baseline_x2()
    source = 'benchmark-local EDSR-baseline x2'
  lr = jnp.zeros((16, 48, 48, 3), jnp.float32)
  params = model.init(jax.random.key(0), lr)['params']
  tx = optax.adam(1e-4, b1=0.9, b2=0.999)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch):
    def loss_fn(p):
      return jnp.mean(jnp.abs(model.apply({'params': p}, batch['lr']) - batch['hr']))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(0)
  batch = {'lr': rng.random((16, 48, 48, 3), np.float32),
           'hr': rng.random((16, 96, 96, 3), np.float32)}
  state = [params, opt_state]

  def run(b):
    state[0], state[1], loss = step(state[0], state[1], b)
    return loss

  jax.block_until_ready(run(batch))  # compile
  jax.block_until_ready(run(batch))
  steps = 3 if quick else 8
  start = time.perf_counter()
  for _ in range(steps):
    loss = run(batch)
  jax.block_until_ready(loss)
  sps = steps / (time.perf_counter() - start)
  n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
  return {'model': source, 'params': int(n_params), 'steps': steps, 'steps_per_s': sps,
          'patches_per_s': 16 * sps, 'jax_devices': str(jax.devices())}, run


def _fallback_edsr_baseline_x2():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  class EDSRBaselineX2(nn.Module):
    @nn.compact
    def __call__(self, x):
      mean = jax.numpy.asarray([0.4488, 0.4371, 0.4040])
      x = (x - mean) * 255.0
      x = nn.Conv(64, (3, 3))(x)
      skip = x
      for _ in range(16):
        y = nn.Conv(64, (3, 3))(nn.relu(nn.Conv(64, (3, 3))(x)))
        x = x + y
      x = nn.Conv(64, (3, 3))(x) + skip
      x = nn.Conv(64 * 4, (3, 3))(x)
      n, h, w, c = x.shape
      x = x.reshape(n, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c // 4)
      return nn.Conv(3, (3, 3))(x) / 255.0 + mean

  return EDSRBaselineX2()


def synthetic_pairs(folder: pathlib.Path, count: int) -> None:
  """Writes ``count`` 2040x1356 HR PNGs and their x2 LR (2x2 means) as paired folders.

  Fast PNG compression (level 1); the content is a smooth field plus noise, shifted per image.
  The first 50 are distinct; further files are hard links to them (the pipelines decode every
  file anyway, so throughput and memory are those of distinct images).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  (folder / 'hr').mkdir(parents=True, exist_ok=True)
  (folder / 'lr').mkdir(parents=True, exist_ok=True)
  h, w = 1356, 2040
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  base = 128 + 70 * np.sin(xx / 47) * np.cos(yy / 61)
  noise = np.random.default_rng(0).normal(0, 12, (h, w, 3)).astype(np.float32)
  distinct = min(count, 50)
  for i in range(count):
    if (folder / 'lr' / f'{i:04d}.png').exists():
      continue
    if i >= distinct:  # beyond 50: links to the first 50 files (same decode cost, less writing)
      for sub in ('hr', 'lr'):
        os.link(folder / sub / f'{i % distinct:04d}.png', folder / sub / f'{i:04d}.png')
      continue
    image = np.roll(base, (7 * i, 13 * i), (0, 1))[..., None] + np.roll(noise, 5 * i, 1)
    hr = np.clip(image + np.asarray([i % 40, 20, -20], np.float32), 0, 255).astype(np.uint8)
    lr = hr.reshape(h // 2, 2, w // 2, 2, 3).mean((1, 3)).round().astype(np.uint8)
    Image.fromarray(hr).save(folder / 'hr' / f'{i:04d}.png', compress_level=1)
    Image.fromarray(lr).save(folder / 'lr' / f'{i:04d}.png', compress_level=1)


def stream_child(folder: str, mode: str, steps: int, buffer: int, crops: int) -> dict:
  """One configuration in this (fresh) process: patches/s and peak RSS of the pipeline."""
  import resource  # pylint: disable=g-import-not-at-top

  def status(key: str) -> float:  # MiB, from /proc/self/status
    for line in pathlib.Path('/proc/self/status').read_text().splitlines():
      if line.startswith(key + ':'):
        return int(line.split()[1]) / 1024
    return float('nan')

  try:  # reset the peak (VmHWM) after the imports, so the peak is the pipeline's run
    pathlib.Path('/proc/self/clear_refs').write_text('5')
  except OSError:
    pass
  before = status('VmRSS')
  start = time.perf_counter()
  p = pipeline.make_pipeline(scale=2, batch_size=16, lr_patch_size=48, mode=mode,
                             hr_folder=pathlib.Path(folder) / 'hr',
                             lr_folder=pathlib.Path(folder) / 'lr', process_index=0,
                             process_count=1, shuffle_buffer=buffer, crops_per_image=crops,
                             memory_limit_mb=4096)
  setup = time.perf_counter() - start
  it = p.iterate(start_step=0, num_steps=steps + 1, prefetch=4, workers=1)
  next(it)
  start = time.perf_counter()
  n = sum(1 for _ in it)
  rate = n * p.batch_size / (time.perf_counter() - start)
  peak = status('VmHWM')
  out = {'mode': mode, 'setup_s': setup, 'steps': steps, 'patches_per_s': rate,
         'rss_before_mb': before, 'peak_rss_mb': peak, 'peak_rss_growth_mb': peak - before,
         'process_peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
         'shards': p.shards}
  if mode == 'stream':
    out.update(shuffle_buffer=buffer, crops_per_image=crops, estimated_mb=p.estimated_mb)
  return out


def stream_section(tmp: pathlib.Path, sizes: list[int], steps: int, buffer: int,
                   crops: int) -> list[dict]:
  import subprocess  # pylint: disable=g-import-not-at-top
  rows = []
  folder = tmp / 'pairs'
  for size in sorted(sizes):
    start = time.perf_counter()
    synthetic_pairs(folder, size)
    write = time.perf_counter() - start
    for mode in ('stream', 'memory'):
      sub = folder.with_name(f'pairs{size}')  # the first `size` files of `folder`
      for part in ('hr', 'lr'):
        (sub / part).mkdir(parents=True, exist_ok=True)
        for i in range(size):
          if not (sub / part / f'{i:04d}.png').exists():
            os.link(folder / part / f'{i:04d}.png', sub / part / f'{i:04d}.png')
      cmd = [sys.executable, __file__, '--child', str(sub), '--child-mode', mode,
             '--child-steps', str(steps), '--buffer', str(buffer), '--crops', str(crops)]
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
      row = {'images': size, 'write_s': write, **json.loads(proc.stdout.strip().splitlines()[-1])}
      print(json.dumps(row), flush=True)
      rows.append(row)
  return rows


def lr_cost_section(tmp: pathlib.Path, images: int, steps: int, buffer: int,
                    crops: int) -> list[dict]:
  """``--no-lr``: the pipeline's CPU with and without the LR (module docstring)."""
  folder = tmp / 'hr2k'
  if not folder.is_dir():
    synthetic_2k(folder, images)
  rows = []
  for mode in ('memory', 'stream'):
    first = {}
    for with_lr in (True, False):
      cpu, wall = time.process_time(), time.perf_counter()
      p = pipeline.make_pipeline(scale=4, batch_size=12, lr_patch_size=64, mode=mode,
                                 hr_folder=folder, process_index=0, process_count=1,
                                 shuffle_buffer=buffer, crops_per_image=crops,
                                 memory_limit_mb=4096, with_lr=with_lr)
      batches = [p.batch(0)]  # stream mode: decodes the first blocks
      setup_cpu, setup_wall = time.process_time() - cpu, time.perf_counter() - wall
      cpu, wall = time.process_time(), time.perf_counter()
      it = p.iterate(start_step=1, num_steps=steps, prefetch=2, workers=1)
      batches += [b for k, b in enumerate(it) if k < 3]  # (the rest is consumed and dropped)
      run_cpu, run_wall = time.process_time() - cpu, time.perf_counter() - wall
      patches = steps * p.batch_size
      hr = [b['hr'] for b in batches[:4]]
      if with_lr:
        first = hr
      row = {'mode': mode, 'with_lr': with_lr, 'images': images, 'steps': steps,
             'setup_cpu_s': setup_cpu, 'setup_wall_s': setup_wall, 'run_cpu_s': run_cpu,
             'run_wall_s': run_wall, 'cpu_ms_per_patch': 1e3 * run_cpu / patches,
             'patches_per_s': patches / run_wall, 'batch_keys': sorted(batches[0])}
      if not with_lr:
        row['hr_identical_first_4_batches'] = all(np.array_equal(a, b) for a, b in zip(first, hr))
      if mode == 'stream':
        row.update(shuffle_buffer=buffer, crops_per_image=crops, estimated_mb=p.estimated_mb)
      print(json.dumps(row), flush=True)
      rows.append(row)
      del p, it, batches
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--json', help='write the figures to this file')
  parser.add_argument('--quick', action='store_true', help='fewer steps and images')
  parser.add_argument('--stream-only', action='store_true',
                      help='only the streaming vs in-memory section')
  parser.add_argument('--sizes', default='50,200', help='set sizes of the streaming section')
  parser.add_argument('--buffer', type=int, default=2, help='stream shuffle_buffer')
  parser.add_argument('--crops', type=int, default=64, help='stream crops_per_image')
  parser.add_argument('--stream-steps', type=int, default=150)
  parser.add_argument('--no-lr', action='store_true',
                      help='only the with/without host LR section (Real-ESRGAN recipes)')
  parser.add_argument('--images', type=int, default=8, help='2K images of the --no-lr section')
  parser.add_argument('--lr-steps', type=int, default=100, help='steps of the --no-lr section')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--child-mode', help=argparse.SUPPRESS)
  parser.add_argument('--child-steps', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(stream_child(args.child, args.child_mode, args.child_steps, args.buffer,
                                  args.crops)))
    return
  if args.no_lr:
    with tempfile.TemporaryDirectory() as tmp:
      rows = lr_cost_section(pathlib.Path(tmp), args.images, args.lr_steps, args.buffer,
                             args.crops)
    if args.json:
      pathlib.Path(args.json).write_text(json.dumps(
          {'machine': {'cpu': cpu_model(), 'cores': os.cpu_count()}, 'no_lr': rows}, indent=1)
          + '\n')
    return
  if args.stream_only:
    with tempfile.TemporaryDirectory() as tmp:
      rows = stream_section(pathlib.Path(tmp), [int(x) for x in args.sizes.split(',')],
                            args.stream_steps, args.buffer, args.crops)
    if args.json:
      pathlib.Path(args.json).write_text(json.dumps({'stream': rows}, indent=1) + '\n')
    return
  steps = 100 if args.quick else 400
  results = {'machine': {'cpu': cpu_model(), 'cores': os.cpu_count(),
                         'python': platform.python_version()},
             'command': 'python benchmarks/input_pipeline.py' + (' --quick' if args.quick else '')}

  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    # -- T91 (or embedded) --
    t91 = SHARED / 'data' / 'train' / 'T91'
    name, manual = ('t91', SHARED / 'data') if t91.is_dir() else ('embedded', None)
    start = time.perf_counter()
    examples = builders.examples(name, split='train', data_dir=tmp / 'tfds', manual_dir=manual)
    build = time.perf_counter() - start
    start = time.perf_counter()
    edsr_p = pipeline.TrainPipeline(examples, scale=2, batch_size=16, lr_patch_size=48)
    cache_edsr = time.perf_counter() - start
    start = time.perf_counter()
    fsrcnn_p = pipeline.TrainPipeline(examples, scale=3, batch_size=16, lr_patch_size=17,
                                      y_channel=True, hr_rescales=(1.0, 0.9, 0.8, 0.7, 0.6))
    cache_fsrcnn = time.perf_counter() - start
    results['t91'] = {
        'dataset': name, 'images': len(examples), 'build_and_decode_s': build,
        'edsr_x2_rgb_b16_p48': {'pool': len(edsr_p.items), 'skipped': len(edsr_p.skipped),
                                'cache_s': cache_edsr,
                                'patches_per_s': time_pipeline(edsr_p, steps)},
        'fsrcnn_x3_y_b16_p17_rescaled': {'pool': len(fsrcnn_p.items),
                                         'skipped': len(fsrcnn_p.skipped),
                                         'cache_s': cache_fsrcnn,
                                         'patches_per_s': time_pipeline(fsrcnn_p, steps)},
    }
    print(json.dumps(results['t91'], indent=1), flush=True)

    # -- 2K-size images --
    data_root = os.environ.get('JAXSR_DATA_DIR')
    div2k = None
    if data_root:
      try:
        builders.get_builder('div2k', data_dir=tmp / 'probe').find_sources(data_root)
        div2k = data_root
      except Exception:  # pylint: disable=broad-except
        div2k = None
    count = 4 if args.quick else 8
    if div2k:
      source, kwargs = 'DIV2K (validation split)', dict(name='div2k', split='validation',
                                                          manual_dir=div2k)
    else:
      start = time.perf_counter()
      synthetic_2k(tmp / 'synthetic2k', count)
      results['synthetic_write_s'] = time.perf_counter() - start
      source, kwargs = f'{count} synthetic 2040x1356 PNGs', dict(
          name='image_folder', split='train', manual_dir=tmp / 'synthetic2k')
    start = time.perf_counter()
    builders.prepare(builders.get_builder(kwargs['name'], data_dir=tmp / 'tfds2k',
                                          manual_dir=kwargs['manual_dir'], scales=(2,)),
                     manual_dir=kwargs['manual_dir'])
    build = time.perf_counter() - start
    start = time.perf_counter()
    big = builders.examples(kwargs['name'], split=kwargs['split'], data_dir=tmp / 'tfds2k',
                            manual_dir=kwargs['manual_dir'], scales=(2,))
    decode = time.perf_counter() - start
    big_p = pipeline.TrainPipeline(big, scale=2, batch_size=16, lr_patch_size=48)
    rate = time_pipeline(big_p, steps)
    tf_ds = big_p.as_tf_dataset(num_steps=steps + 1)
    it = iter(tfds.as_numpy(tf_ds))
    next(it)
    start = time.perf_counter()
    n = sum(1 for _ in it)
    tf_rate = n * 16 / (time.perf_counter() - start)
    results['2k'] = {'source': source, 'images': len(big), 'tfds_build_s': build,
                     'decode_into_cache_s': decode, 'decode_s_per_image': decode / len(big),
                     'edsr_x2_rgb_b16_p48_patches_per_s': rate,
                     'edsr_x2_rgb_b16_p48_tf_data_patches_per_s': tf_rate}
    print(json.dumps(results['2k'], indent=1), flush=True)

    # -- EDSR-baseline x2 step --
    figures, run = edsr_step(args.quick)
    import jax  # pylint: disable=g-import-not-at-top
    fed_steps = figures['steps']
    it = big_p.iterate(start_step=0, num_steps=fed_steps + 2, prefetch=2)
    jax.block_until_ready(run(next(it)))
    start = time.perf_counter()
    for batch in it:
      loss = run(batch)
    jax.block_until_ready(loss)
    figures['fed_by_pipeline_steps_per_s'] = (fed_steps + 1) / (time.perf_counter() - start)
    results['edsr_baseline_x2_step'] = figures
    print(json.dumps(figures, indent=1), flush=True)
    if not args.quick:
      results['stream'] = stream_section(tmp, [int(x) for x in args.sizes.split(',')],
                                         args.stream_steps, args.buffer, args.crops)

  need = figures['patches_per_s']
  results['ratios'] = {
      't91_pipeline_over_step': results['t91']['edsr_x2_rgb_b16_p48']['patches_per_s'] / need,
      '2k_pipeline_over_step': results['2k']['edsr_x2_rgb_b16_p48_patches_per_s'] / need,
      'goal_pipeline_over_step': 1.5, 'goal_2k_patches_per_s': 500,
  }
  print(json.dumps(results['ratios'], indent=1))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + '\n')


if __name__ == '__main__':
  main()
