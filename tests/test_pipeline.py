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
  with pytest.raises(InputError, match='no images'):
    pipeline.TrainPipeline(_coded(2), scale=2, batch_size=4, lr_patch_size=5, process_index=2,
                           process_count=4)
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
