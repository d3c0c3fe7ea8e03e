"""Training/eval pipelines: alignment, identical transforms, determinism, resumption, hosts."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from jaxsr import degradations
from jaxsr import runtime
from jaxsr.data import pipeline
from jaxsr.data.builders import SRExample
from jaxsr.degradations import lr_rgb
from jaxsr.errors import InputError
from jaxsr.imresize import imresize_np

import tensorflow_datasets as tfds  # pylint: disable=g-bad-import-order

runtime.hide_accelerators_from_tensorflow()  # as the entry points do: tf.data stays on the host

tfds.disable_progress_bar()


def _coded(n: int = 6, scale: int = 2) -> list[SRExample]:
  """Fake pairs where pixel values encode positions: LR (y, x, id), HR (Y//s, X//s, id).

  The HR patch of an aligned, identically transformed pair is the LR patch block-upsampled.
  """
  out = []
  for i in range(n):
    h, w = 20 + 3 * i, 24 + 2 * i
    yy, xx = np.mgrid[0:h, 0:w]
    lr = np.stack([yy, xx, np.full_like(yy, i)], -1).astype(np.uint8)
    hr = np.repeat(np.repeat(lr, scale, 0), scale, 1)
    hr = np.pad(hr, ((0, scale - 1), (0, 1), (0, 0)))  # un-cropped HR: extra rows/cols
    out.append(SRExample(f'img{i}', hr, {scale: lr}))
  return out


def _smooth_examples(n=4, scales=(2, 3)):
  out = []
  for i in range(n):
    rng = np.random.default_rng(i)
    h, w = 60 + 7 * i, 66 + 5 * i
    yy, xx = np.mgrid[0:h, 0:w]
    hr = (128 + 80 * np.sin(xx / 6 + i) * np.cos(yy / 9))[..., None] + rng.integers(0, 30, (h, w, 3))
    hr = np.clip(hr, 0, 255).astype(np.uint8)
    out.append(SRExample(f's{i}', hr, {s: lr_rgb(hr, s) for s in scales}))
  return out


def _upsample(lr, s):
  return np.repeat(np.repeat(lr, s, -3), s, -2)


def test_shapes_dtypes_range():
  p = pipeline.TrainPipeline(_coded(), scale=2, batch_size=8, lr_patch_size=5)
  batch = p.batch(0)
  assert set(batch) == {'lr', 'hr'}
  assert batch['lr'].shape == (8, 5, 5, 3) and batch['hr'].shape == (8, 10, 10, 3)
  assert batch['lr'].dtype == batch['hr'].dtype == np.float32
  assert 0 <= batch['lr'].min() and batch['hr'].max() <= 1


def test_crop_alignment_and_identical_transforms():
  p = pipeline.TrainPipeline(_coded(), scale=2, batch_size=16, lr_patch_size=6, seed=3)
  seen_rot = set()
  for step in range(20):
    b = p.batch(step)
    lr = np.rint(b['lr'] * 255).astype(np.int64)
    hr = np.rint(b['hr'] * 255).astype(np.int64)
    np.testing.assert_array_equal(hr, _upsample(lr, 2))
    # The LR patch is a contiguous window of its image, possibly flipped/rotated.
    for patch in lr:
      ys, xs = patch[..., 0], patch[..., 1]
      assert {ys.max() - ys.min(), xs.max() - xs.min()} == {5}
      seen_rot.add(bool(ys[0, 0] == ys[0, 1]))  # rows constant along x: not transposed
  assert seen_rot == {True, False}


def test_crop_matches_imresize_of_hr_patch():
  """The LR patch is the bicubic LR of the HR patch away from the patch border."""
  p = pipeline.TrainPipeline(_smooth_examples(scales=(3,)), scale=3, batch_size=8,
                             lr_patch_size=12, flips=False, rot90=False)
  b = p.batch(1)
  lr = np.rint(b['lr'] * 255).astype(np.uint8)
  hr = np.rint(b['hr'] * 255).astype(np.uint8)
  for j in range(8):
    np.testing.assert_array_equal(imresize_np(hr[j], 1 / 3)[2:-2, 2:-2], lr[j][2:-2, 2:-2])


def test_deterministic_given_seed():
  a = pipeline.TrainPipeline(_coded(), scale=2, batch_size=8, lr_patch_size=5, seed=7)
  b = pipeline.TrainPipeline(_coded(), scale=2, batch_size=8, lr_patch_size=5, seed=7)
  c = pipeline.TrainPipeline(_coded(), scale=2, batch_size=8, lr_patch_size=5, seed=8)
  for step in (0, 5, 123):
    for key in ('lr', 'hr'):
      np.testing.assert_array_equal(a.batch(step)[key], b.batch(step)[key])
  assert not np.array_equal(a.batch(0)['hr'], c.batch(0)['hr'])
  assert not np.array_equal(a.batch(0)['hr'], a.batch(1)['hr'])


def test_resume_at_step_k_equals_uninterrupted():
  kwargs = dict(scale=2, batch_size=4, lr_patch_size=5, seed=11)
  full = list(pipeline.TrainPipeline(_coded(), **kwargs).iterate(num_steps=12, prefetch=3,
                                                                  workers=2))
  resumed = list(pipeline.TrainPipeline(_coded(), **kwargs).iterate(start_step=7, num_steps=5))
  assert len(resumed) == 5
  for x, y in zip(full[7:], resumed):
    for key in ('lr', 'hr'):
      np.testing.assert_array_equal(x[key], y[key])


def test_each_epoch_visits_every_image_once():
  p = pipeline.TrainPipeline(_coded(6), scale=2, batch_size=3, lr_patch_size=5)
  ids = [np.rint(p.batch(k)['lr'][:, 0, 0, 2] * 255).astype(int) for k in range(4)]
  ids = np.concatenate(ids)
  assert sorted(ids[:6]) == list(range(6)) and sorted(ids[6:]) == list(range(6))


def test_hosts_get_disjoint_shares():
  examples = _coded(6)
  hosts = [pipeline.TrainPipeline(examples, scale=2, batch_size=8, lr_patch_size=5, seed=1,
                                  process_index=h, process_count=2) for h in range(2)]
  assert [len(h.items) for h in hosts] == [3, 3]
  seen = []
  for h in hosts:
    ids = set()
    for step in range(6):
      batch = h.batch(step)
      assert batch['lr'].shape == (4, 5, 5, 3)
      ids |= set(np.rint(batch['lr'][:, 0, 0, 2] * 255).astype(int).tolist())
    seen.append(ids)
  assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(6))
  assert not np.array_equal(hosts[0].batch(0)['lr'], hosts[1].batch(0)['lr'])


def test_host_options_are_checked():
  with pytest.raises(InputError, match='multiple'):
    pipeline.TrainPipeline(_coded(), scale=2, batch_size=7, lr_patch_size=5, process_count=2)
  # Fewer images than hosts: hosts share shards (each loads the ones its slots draw from).
  shared = pipeline.TrainPipeline(_coded(2), scale=2, batch_size=4, lr_patch_size=5,
                                  process_index=2, process_count=4)
  assert [it.name for it in shared.items] == ['img1']
  with pytest.raises(InputError, match='exactly one'):
    pipeline.TrainPipeline(_coded(), scale=2, batch_size=4)


def test_small_images_skipped_and_counted():
  with pytest.warns(UserWarning, match=r'skipped 3 of 6'):
    p = pipeline.TrainPipeline(_coded(6), scale=2, batch_size=4, lr_patch_size=27)
  assert p.skipped == ['img0', 'img1', 'img2']
  assert len(p.items) == 3
  with pytest.raises(InputError, match='large enough'), warnings.catch_warnings():
    warnings.simplefilter('ignore')
    pipeline.TrainPipeline(_coded(2), scale=2, batch_size=4, lr_patch_size=100)


def test_y_channel_degrades_as_the_y_protocol():
  """Y mode: HR = rounded MATLAB Y, LR = float imresize of HR/255 (the ``y`` protocol)."""
  examples = _smooth_examples(scales=(2,))
  grey = examples[0].hr[..., :1]
  examples[0] = SRExample('grey', grey, {2: lr_rgb(grey, 2)})
  p = pipeline.TrainPipeline(examples, scale=2, batch_size=8, lr_patch_size=8, seed=5,
                             y_channel=True, flips=False, rot90=False)
  batch = p.batch(3)
  assert batch['lr'].shape == (8, 8, 8, 1) and batch['hr'].shape == (8, 16, 16, 1)
  assert batch['lr'].dtype == np.float32
  for ex in examples:
    item = next(it for it in p.items if it.name == ex.name)
    pair = degradations.degrade(ex.hr, scale=2, protocol='y', name=ex.name)
    np.testing.assert_array_equal(item.hr[:pair.hr.shape[0], :pair.hr.shape[1]], pair.hr)
    np.testing.assert_allclose(item.lr[2], pair.lr, atol=1e-6)
  # The batch is made of aligned crops of those planes.
  rng_lr = batch['lr'] * 255
  assert np.any(np.abs(rng_lr - np.round(rng_lr)) > 1e-3)  # not quantised
  np.testing.assert_allclose(batch['hr'] * 255, np.round(batch['hr'] * 255), atol=1e-4)


def test_multiscale_one_scale_per_step_upscaled_lr():
  examples = _smooth_examples(scales=(2, 3, 4))
  hosts = [pipeline.TrainPipeline(examples, scale=(2, 3, 4), batch_size=4, hr_patch_size=20,
                                  seed=2, process_index=h, process_count=2, flips=False,
                                  rot90=False) for h in range(2)]
  scales = set()
  for step in range(12):
    b0, b1 = hosts[0].batch(step), hosts[1].batch(step)
    assert b0['lr'].shape == b0['hr'].shape == (2, 20, 20, 3)
    assert len(set(b0['scale']) | set(b1['scale'])) == 1
    scales.add(int(b0['scale'][0]))
  assert scales == {2, 3, 4}
  p = hosts[0]
  step = next(k for k in range(20) if p.step_scale(k) == 3)
  b = p.batch(step)
  # The input is the bicubic-upscaled LR: downscaling it again is close to the LR of the HR.
  lr_up = np.rint(b['lr'] * 255)
  hr = np.rint(b['hr'] * 255)
  assert np.abs(lr_up - hr).mean() < 20 and not np.array_equal(lr_up, hr)
  with pytest.raises(InputError, match='hr_patch_size'):
    pipeline.TrainPipeline(examples, scale=(2, 3), batch_size=4, lr_patch_size=5)


def test_hr_rescales_enlarge_the_pool():
  examples = _smooth_examples(n=2, scales=(2,))
  p = pipeline.TrainPipeline(examples, scale=2, batch_size=4, lr_patch_size=8,
                             hr_rescales=(1.0, 0.8, 0.6))
  assert len(p.items) == 6
  small = [item for item in p.items if item.hr.shape[0] < examples[0].hr.shape[0]]
  item = small[0]
  np.testing.assert_array_equal(item.lr[2], lr_rgb(item.hr, 2))


def test_tf_dataset_equals_batches():
  p = pipeline.TrainPipeline(_coded(), scale=2, batch_size=4, lr_patch_size=5, seed=9)
  got = list(tfds.as_numpy(p.as_tf_dataset(start_step=3, num_steps=3)))
  assert len(got) == 3
  for k, batch in enumerate(got):
    for key in ('lr', 'hr'):
      np.testing.assert_array_equal(batch[key], p.batch(3 + k)[key])


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds')


def test_train_dataset_from_embedded_builder(data_dir):
  batches = list(pipeline.train_dataset('embedded', scale=4, batch_size=4, lr_patch_size=12,
                                        seed=0, num_steps=2, data_dir=data_dir, process_index=1,
                                        process_count=2))
  assert len(batches) == 2 and batches[0]['hr'].shape == (2, 48, 48, 3)
  again = list(pipeline.train_dataset('embedded', scale=4, batch_size=4, lr_patch_size=12,
                                      seed=0, start_step=1, num_steps=1, data_dir=data_dir,
                                      process_index=1, process_count=2))
  np.testing.assert_array_equal(again[0]['lr'], batches[1]['lr'])


def test_eval_dataset_whole_images(data_dir):
  items = list(pipeline.eval_dataset('embedded', scales=(2, 4), data_dir=data_dir))
  assert [name for name, _, _ in items] == ['astronaut', 'chelsea', 'coffee', 'rocket']
  name, hr, lr = items[1]
  assert hr.shape == (300, 451, 3) and set(lr) == {2, 4}
  np.testing.assert_array_equal(lr[4], lr_rgb(hr, 4))
  assert degradations.modcrop(hr, 4).shape[:2] == (4 * lr[4].shape[0], 4 * lr[4].shape[1])


def test_paired_transform_matches_numpy_flips_and_rot90():
  image = np.arange(5 * 7 * 2).reshape(5, 7, 2)
  for hflip, vflip, rot in itertools.product([False, True], [False, True], range(-1, 6)):
    want = image[:, ::-1] if hflip else image
    want = want[::-1] if vflip else want
    want = np.rot90(want, rot, axes=(0, 1))
    got, = pipeline.paired_transform(image, hflip=hflip, vflip=vflip, rot=rot)
    np.testing.assert_array_equal(got, want, err_msg=f"hflip={hflip} vflip={vflip} rot={rot}")


# -- topology-free order, sources, streaming -----------------------------------------------------


class _Counting(pipeline.sources.ListSource):
  """A source that records which images were loaded."""

  def __init__(self, examples):
    super().__init__(examples)
    self.loaded = []

  def load_one(self, index):
    self.loaded.append(index)
    return super().load_one(index)


def _global(make, hosts: int, step: int) -> dict:
  parts = [make(process_index=h, process_count=hosts).batch(step) for h in range(hosts)]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize('stream', [False, True])
def test_global_batch_is_the_same_on_any_topology(stream):
  examples = _coded(10)
  cls = pipeline.StreamPipeline if stream else pipeline.TrainPipeline
  extra = dict(shuffle_buffer=2, crops_per_image=3) if stream else {}

  def make(**hosts):
    return cls(examples, scale=2, batch_size=8, lr_patch_size=5, seed=4, **extra, **hosts)

  for step in (0, 3, 17):
    want = make().batch(step)
    for hosts in (2, 4, 8):
      got = _global(make, hosts, step)
      for key in ('lr', 'hr'):
        np.testing.assert_array_equal(got[key], want[key], err_msg=f'{hosts} hosts step {step}')


def test_hosts_load_only_their_shards():
  examples = _coded(16)
  loaded = []
  for h in range(4):
    source = _Counting(examples)
    p = pipeline.TrainPipeline(source, scale=2, batch_size=8, lr_patch_size=5, process_index=h,
                               process_count=4)
    assert p.shards == 8 and p.layout.local_shards == [2 * h, 2 * h + 1]
    assert sorted(source.loaded) == sorted(i for i in range(16) if i % 8 in (2 * h, 2 * h + 1))
    loaded.append(set(source.loaded))
  assert set().union(*loaded) == set(range(16)) and sum(map(len, loaded)) == 16


def test_multiscale_and_rescales_are_topology_free():
  examples = _smooth_examples(n=4, scales=(2, 3, 4))

  def make(**hosts):
    return pipeline.TrainPipeline(examples, scale=(2, 3, 4), batch_size=4, hr_patch_size=20,
                                  hr_rescales=(1.0, 0.8), seed=2, **hosts)

  for step in (0, 5):
    want = make().batch(step)
    got = _global(make, 2, step)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_shard_of_small_images_draws_from_the_next_shard():
  with pytest.warns(UserWarning, match='skipped 2 of'):
    p = pipeline.TrainPipeline(_coded(8), scale=2, batch_size=4, lr_patch_size=24, seed=1)
  # shards 0 and 1 hold images {0, 4} and {1, 5}; images 0 and 1 are too small
  assert p.skipped == ['img0', 'img1'] and p.shards == 4
  ids = np.rint(p.batch(0)['lr'][:, 0, 0, 2] * 255).astype(int)
  assert set(ids) <= set(range(2, 8))


def test_stream_resume_and_reuse_within_a_block():
  kwargs = dict(scale=2, batch_size=4, lr_patch_size=5, seed=3, shuffle_buffer=2,
                crops_per_image=4)
  full = list(pipeline.StreamPipeline(_coded(8), **kwargs).iterate(num_steps=16, workers=2))
  resumed = list(pipeline.StreamPipeline(_coded(8), **kwargs).iterate(start_step=9,
                                                                      num_steps=7))
  assert len(resumed) == 7
  for x, y in zip(full[9:], resumed):
    np.testing.assert_array_equal(x['hr'], y['hr'])
  lr = np.rint(np.stack([b['lr'] for b in full]) * 255).astype(np.int64)
  hr = np.rint(np.stack([b['hr'] for b in full]) * 255).astype(np.int64)
  np.testing.assert_array_equal(hr, _upsample(lr, 2))  # aligned pairs
  # Slot 0 (shard 0) over one block of 2 images x 4 crops: each image 4 times.
  ids = lr[:, 0, 0, 0, 2]
  for block in range(2):
    values, counts = np.unique(ids[block * 8:(block + 1) * 8], return_counts=True)
    assert counts.tolist() == [4, 4] and set(values) <= {0, 4}


def test_stream_memory_is_bounded_and_checked():
  source = _Counting(_coded(40))
  p = pipeline.StreamPipeline(source, scale=2, batch_size=4, lr_patch_size=5, shuffle_buffer=2,
                              crops_per_image=2)
  for step in range(30):
    p.batch(step)
    assert len(p._blocks) <= 2 * p.shards  # pylint: disable=protected-access
  with pytest.raises(InputError, match='memory_limit_mb=0.001'):
    pipeline.StreamPipeline(_coded(40), scale=2, batch_size=4, lr_patch_size=5,
                            shuffle_buffer=8, memory_limit_mb=0.001)
  with pytest.raises(InputError, match='hr_rescales'):
    pipeline.StreamPipeline(_coded(4), scale=2, batch_size=4, lr_patch_size=5,
                            hr_rescales=(1.0, 0.5))


def test_stream_small_images_give_their_crops_to_the_next():
  examples = _coded(4)
  examples[1] = SRExample('tiny', examples[1].hr[:4, :4], {2: examples[1].lr[2][:2, :2]})
  with pytest.warns(UserWarning, match='tiny'):
    p = pipeline.StreamPipeline(examples, scale=2, batch_size=1, lr_patch_size=5,
                                shuffle_buffer=4, crops_per_image=2, seed=0)
    batches = [p.batch(k) for k in range(8)]
  assert p.skipped == ['tiny']
  ids = [int(np.rint(b['lr'][0, 0, 0, 2] * 255)) for b in batches]
  assert 1 not in ids and sorted(set(ids)) == [0, 2, 3]


def _write(folder, name, image):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(folder / name)


def test_paired_and_hr_folders(tmp_path):
  examples = _smooth_examples(n=3, scales=(2,))
  for ex in examples:
    _write(tmp_path / 'hr', f'{ex.name}.png', ex.hr)
    _write(tmp_path / 'lr', f'{ex.name}x2.png', ex.lr[2])
  paired = pipeline.sources.FolderSource(tmp_path / 'hr', lr_folder=tmp_path / 'lr', scale=2)
  assert paired.names == ['s0', 's1', 's2']
  got = paired.load([1])[0]
  np.testing.assert_array_equal(got.lr[2], examples[1].lr[2])
  for mode in pipeline.MODES:
    p = pipeline.make_pipeline(scale=2, batch_size=4, lr_patch_size=8, hr_folder=tmp_path / 'hr',
                               lr_folder=tmp_path / 'lr', mode=mode, process_index=0,
                               process_count=1)
    b = p.batch(0)
    assert b['hr'].shape == (4, 16, 16, 3)
  hr_only = pipeline.make_pipeline(scale=2, batch_size=2, lr_patch_size=8,
                                   hr_folder=tmp_path / 'hr', process_index=0, process_count=1)
  np.testing.assert_array_equal(hr_only.items[0].lr[2], lr_rgb(examples[0].hr, 2))
  # One-line errors naming the file.
  _write(tmp_path / 'hr', 'extra.png', examples[0].hr)
  with pytest.raises(InputError, match=r'extra.png: no LR image of that name'):
    pipeline.sources.FolderSource(tmp_path / 'hr', lr_folder=tmp_path / 'lr', scale=2)
  (tmp_path / 'hr' / 'extra.png').unlink()
  _write(tmp_path / 'lr', 's1x2.png', examples[1].lr[2][:-1])
  with pytest.raises(InputError, match=r's1x2.png: LR size .* does not match its HR s1.png'):
    pipeline.sources.FolderSource(tmp_path / 'hr', lr_folder=tmp_path / 'lr', scale=2)
  with pytest.raises(InputError, match='no such folder') as e:
    pipeline.make_pipeline(scale=2, batch_size=2, lr_patch_size=8, hr_folder=tmp_path / 'nope',
                           process_index=0, process_count=1)
  assert e.value.field == 'hr_folder' and '\n' not in str(e.value)
  with pytest.raises(InputError, match='unknown data mode'):
    pipeline.make_pipeline(scale=2, batch_size=2, lr_patch_size=8, hr_folder=tmp_path / 'hr',
                           mode='disk', process_index=0, process_count=1)


def test_record_source_reads_the_prepared_split(data_dir):
  source = pipeline.sources.RecordSource('embedded', split='train', data_dir=data_dir)
  want = pipeline.builders.examples('embedded', split='train', data_dir=data_dir)
  got = source.load(range(len(source)))
  assert [g.name for g in got] == [w.name for w in want]
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g.hr, w.hr)
    np.testing.assert_array_equal(g.lr[4], w.lr[4])


def test_config_fields_reach_the_pipeline(tmp_path):
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  from jaxsr.recipes import test as test_recipe  # pylint: disable=g-import-not-at-top
  for ex in _smooth_examples(n=2, scales=(3,)):
    _write(tmp_path / 'hr', f'{ex.name}.png', ex.hr)
  config = test_recipe.get_config()
  config.data.update(mode='stream', hr_folder=str(tmp_path / 'hr'), shuffle_buffer=1,
                     crops_per_image=2, memory_limit_mb=64.0)
  kwargs = train_lib._pipeline_kwargs(config, channels=1)  # pylint: disable=protected-access
  assert kwargs['mode'] == 'stream' and kwargs['shuffle_buffer'] == 1
  p = pipeline.make_pipeline(kwargs.pop('name'), process_index=0, process_count=1, **kwargs)
  assert isinstance(p, pipeline.StreamPipeline)
  assert p.batch(0)['hr'].shape == (8, 24, 24, 1)


# -- order='host': the earlier releases' per-host sample order ------------------------------------


def _legacy_set(n: int = 7, scale: int = 2) -> list[SRExample]:
  """Random uint8 pairs (given LR: no resampling involved); image 3 is smaller than the patch."""
  out = []
  for i in range(n):
    rng = np.random.default_rng(100 + i)
    h, w = (4, 6) if i == 3 else (9 + 2 * i, 11 + i)
    lr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hr = rng.integers(0, 256, (scale * h + 1, scale * w + 1, 3), dtype=np.uint8)
    out.append(SRExample(f'g{i}', hr, {scale: lr}))
  return out


def _digest(batch: dict) -> str:
  import hashlib  # pylint: disable=g-import-not-at-top
  h = hashlib.sha256()
  for key in ('lr', 'hr'):
    h.update(np.round(batch[key] * 255).astype(np.uint8).tobytes())
  return h.hexdigest()[:16]


# (process_count, process_index, step) -> (image names, LR crop offsets (y, x), batch digest),
# computed with the pipeline of commit HEAD before the topology-free order (per-host
# permutations from (seed, host, hosts, epoch), g = k * b + j, integer crops from
# (seed, host, hosts, step)) for _legacy_set(), scale 2, batch 4, LR patch 5, seed 3.
_HOST_ORDER_GOLDEN = {
    (1, 0, 0): (['g0', 'g1', 'g5', 'g2'], [(1, 5), (6, 7), (1, 6), (3, 4)], '88654c9c339f9bb9'),
    (1, 0, 1): (['g4', 'g6', 'g0', 'g4'], [(2, 1), (2, 0), (1, 0), (5, 8)], '7feaa9457585e56f'),
    (1, 0, 57): (['g1', 'g6', 'g4', 'g5'], [(4, 4), (4, 1), (5, 3), (7, 3)], '6e2c1403d5b53eef'),
    (2, 0, 0): (['g2', 'g4'], [(1, 7), (9, 9)], '64d10b7345060165'),
    (2, 0, 1): (['g6', 'g0'], [(13, 8), (4, 5)], 'e848f1e463a6501a'),
    (2, 0, 57): (['g6', 'g4'], [(11, 3), (8, 10)], 'f73ce5633e12dfb5'),
    (2, 1, 0): (['g5', 'g1'], [(5, 4), (3, 4)], '4b382fd8cbe7b44c'),
    (2, 1, 1): (['g5', 'g1'], [(1, 11), (1, 3)], 'eaf43d7ebeca9645'),
    (2, 1, 57): (['g1', 'g5'], [(1, 4), (7, 5)], '9f91b99c4618e981'),
}


@pytest.mark.filterwarnings('ignore:skipped 1 of')
def test_host_order_reproduces_the_earlier_pipeline(monkeypatch):
  crops = []
  real_crop = pipeline.paired_crop

  def recording_crop(lr, hr, *, y, x, lr_size, scale):
    crops.append((y, x))
    return real_crop(lr, hr, y=y, x=x, lr_size=lr_size, scale=scale)

  monkeypatch.setattr(pipeline, 'paired_crop', recording_crop)
  examples = _legacy_set()
  for hosts in (1, 2):
    for host in range(hosts):
      with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        p = pipeline.TrainPipeline(examples, scale=2, batch_size=4, lr_patch_size=5, seed=3,
                                   process_index=host, process_count=hosts, order='host')
      # images[host::hosts], in file order, minus the one that is too small
      want_items = [ex.name for ex in examples[host::hosts] if ex.name != 'g3']
      assert [item.name for item in p.items] == want_items
      assert p.skipped == (['g3'] if 'g3' in [ex.name for ex in examples[host::hosts]] else [])
      assert len(caught) == (1 if p.skipped else 0)
      for step in (0, 1, 57):
        crops.clear()
        batch = p.batch(step)
        names = [p.items[i].name for i in p.indices(step)]
        assert (names, crops, _digest(batch)) == _HOST_ORDER_GOLDEN[(hosts, host, step)], (
            hosts, host, step)
  # resumption on the same topology is still exact, and the default stays topology-free
  p = pipeline.TrainPipeline(examples, scale=2, batch_size=4, lr_patch_size=5, seed=3,
                             order='host')
  resumed = list(p.iterate(start_step=56, num_steps=2))
  assert _digest(resumed[1]) == _HOST_ORDER_GOLDEN[(1, 0, 57)][2]
  assert pipeline.TrainPipeline(examples, scale=2, batch_size=4, lr_patch_size=5).order == 'global'


@pytest.mark.filterwarnings('ignore:skipped 1 of')
def test_host_order_refusals():
  examples = _legacy_set()
  with pytest.raises(InputError, match='unknown sample order') as e:
    pipeline.TrainPipeline(examples, scale=2, batch_size=4, lr_patch_size=5, order='hosts')
  assert e.value.field == 'order'
  with pytest.raises(InputError, match='not available in stream mode') as e:
    pipeline.StreamPipeline(examples, scale=2, batch_size=4, lr_patch_size=5, order='host')
  assert e.value.field == 'order' and '\n' not in str(e.value)
  with pytest.raises(InputError, match='host 2 of 4 has no images'):
    pipeline.TrainPipeline(examples[:2], scale=2, batch_size=4, lr_patch_size=5, order='host',
                           process_index=2, process_count=4)
  # resuming: 'host' only on the process count that wrote the checkpoint
  pipeline.check_resume_order('host', saved_process_count=2, process_count=2)
  pipeline.check_resume_order('host', saved_process_count=None, process_count=4)  # unknown
  pipeline.check_resume_order('global', saved_process_count=2, process_count=4)
  with pytest.raises(InputError, match='written by 2 and this run has 4') as e:
    pipeline.check_resume_order('host', saved_process_count=2, process_count=4)
  assert e.value.field == 'order'
  # ... and train_lib names the config field, in one line
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  meta = {'data': {'order': 'host', 'process_count': 3}}
  with pytest.raises(InputError) as e:
    train_lib._check_resume_order(meta, 'host', 'wd/checkpoints')  # pylint: disable=protected-access
  assert str(e.value).startswith('config.data.order: wd/checkpoints: ') and '\n' not in str(e.value)
  train_lib._check_resume_order(meta, 'global', 'wd')  # pylint: disable=protected-access


def test_config_data_order_reaches_the_pipeline(tmp_path):
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  from jaxsr.recipes import test as test_recipe  # pylint: disable=g-import-not-at-top
  for ex in _legacy_set(n=2):
    _write(tmp_path / 'hr', f'{ex.name}.png', ex.hr)
  config = test_recipe.get_config()
  assert config.data.order == 'global'
  config.data.update(order='host', hr_folder=str(tmp_path / 'hr'))
  kwargs = train_lib._pipeline_kwargs(config, channels=3)  # pylint: disable=protected-access
  assert kwargs['order'] == 'host'
  kwargs.update(scale=2, lr_patch_size=5)
  p = pipeline.make_pipeline(kwargs.pop('name'), process_index=0, process_count=1, **kwargs)
  assert p.order == 'host' and p.layout is None
  kwargs.update(mode='stream')
  with pytest.raises(InputError, match='not available in stream mode') as e:
    pipeline.make_pipeline('embedded', process_index=0, process_count=1, **kwargs)
  assert e.value.field == 'order'


# -- with_lr=False: HR crops only (tasks that make their LR on device) ---------------------------


_HR_ONLY_CASES = {
    'memory': dict(scale=2, lr_patch_size=5),
    'stream': dict(scale=2, lr_patch_size=5, shuffle_buffer=2, crops_per_image=3),
    'memory-no-stored-lr': dict(scale=3, lr_patch_size=6),
    'stream-no-stored-lr': dict(scale=3, lr_patch_size=6, shuffle_buffer=2, crops_per_image=3),
    'y-channel': dict(scale=3, lr_patch_size=6, y_channel=True),
    'multiscale': dict(scale=(2, 3), hr_patch_size=12),
    'rescales': dict(scale=2, lr_patch_size=8, hr_rescales=(1.0, 0.7)),
    'host-order': dict(scale=2, lr_patch_size=5, order='host'),
}


@pytest.mark.parametrize('case', list(_HR_ONLY_CASES))
def test_hr_only_batches_are_the_hr_crops_of_the_paired_batches(case):
  kwargs = dict(_HR_ONLY_CASES[case])
  cls = pipeline.StreamPipeline if case.startswith('stream') else pipeline.TrainPipeline
  if case in ('memory', 'stream', 'host-order'):
    examples = _coded(7)
  else:  # no stored LR: the crop range comes from the bicubic LR's size, H // s x W // s
    examples = [SRExample(ex.name, ex.hr, {}) for ex in _smooth_examples(n=5, scales=())]
  paired = cls(examples, batch_size=6, seed=5, **kwargs)
  hr_only = cls(examples, batch_size=6, seed=5, with_lr=False, **kwargs)
  assert all(not item.lr for item in hr_only.items)  # no LR made or cached
  for k, got in zip(range(2, 6), hr_only.iterate(start_step=2, num_steps=4, workers=2)):
    want = paired.batch(k)
    assert set(got) == set(want) - {'lr'}, k
    for key in got:  # 'hr' (and 'scale'): the same bytes, order, flips and turns
      np.testing.assert_array_equal(got[key], want[key], err_msg=f'{case} step {k} {key}')
    np.testing.assert_array_equal(hr_only.batch(k)['hr'], got['hr'])  # a pure function of k


def test_hr_only_tf_dataset_and_topologies():
  examples = _coded(8)

  def make(**hosts):
    return pipeline.TrainPipeline(examples, scale=2, batch_size=8, lr_patch_size=5, seed=2,
                                  with_lr=False, **hosts)

  p = make()
  got = list(tfds.as_numpy(p.as_tf_dataset(start_step=1, num_steps=2)))
  assert [sorted(b) for b in got] == [['hr'], ['hr']]
  for k, batch in enumerate(got):
    np.testing.assert_array_equal(batch['hr'], p.batch(1 + k)['hr'])
  np.testing.assert_array_equal(_global(make, 4, 3)['hr'], p.batch(3)['hr'])


def test_hr_only_batches_stack_and_shard():
  from jaxsr import parallel  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  p = pipeline.TrainPipeline(_coded(4), scale=2, batch_size=4, lr_patch_size=5, with_lr=False)
  (stack, count), = train_lib.stack_batches(p.iterate(num_steps=3), 4)
  assert count == 3 and sorted(stack) == ['hr'] and stack['hr'].shape == (4, 4, 10, 10, 3)
  sharded = parallel.shard_batch(stack, parallel.make_mesh(), batch_axis=1)
  np.testing.assert_array_equal(np.asarray(sharded['hr']), stack['hr'])


def test_tasks_declare_whether_they_need_the_host_lr(tmp_path):
  from jaxsr import tasks  # pylint: disable=g-import-not-at-top
  from jaxsr import train_lib  # pylint: disable=g-import-not-at-top
  from jaxsr.recipes import realesrnet_x4  # pylint: disable=g-import-not-at-top
  from jaxsr.recipes import test as test_recipe  # pylint: disable=g-import-not-at-top
  assert tasks.make_task(test_recipe.get_config()).needs_lr  # bicubic pairs: the LR is read
  config = realesrnet_x4.get_config()
  config.model_overrides.update(num_feat=4, num_block=1, num_grow_ch=4)
  assert not tasks.make_task(config).needs_lr  # the degradation makes the LR on device
  config.data.lr_folder = str(tmp_path)  # paired folders: the degradation is off
  assert tasks.make_task(config).needs_lr
  config.data.lr_folder = None
  config.degradation.enabled = False  # bicubic fine-tuning
  assert tasks.make_task(config).needs_lr
  kwargs = train_lib._pipeline_kwargs  # pylint: disable=protected-access
  assert kwargs(config, channels=3, with_lr=False)['with_lr'] is False
  assert kwargs(config, channels=3)['with_lr'] is True
