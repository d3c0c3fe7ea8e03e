"""tfds builders: built from local files into a temporary data_dir, never downloading."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from jaxsr import runtime
from jaxsr.data import builders
from jaxsr.data.embedded import EMBEDDED_TEST, EMBEDDED_TRAIN
from jaxsr.data.images import list_images, read_image
from jaxsr.degradations import lr_rgb
from jaxsr.errors import InputError

import tensorflow_datasets as tfds  # pylint: disable=g-bad-import-order

runtime.hide_accelerators_from_tensorflow()  # as the entry points do: tf.data stays on the host

tfds.disable_progress_bar()


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('tfds')


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
  monkeypatch.delenv('JAXSR_DATA_DIR', raising=False)
  monkeypatch.delenv('JAXSR_TFDS_DIR', raising=False)


def _smooth(h, w, c, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = 128 + 60 * np.sin(xx / 5.0 + seed) * np.cos(yy / 7.0)
  image = base[..., None] + rng.integers(-20, 20, (h, w, c))
  return np.clip(image, 0, 255).astype(np.uint8)


def test_names_do_not_collide_with_tfds(tmp_path):
  names = {cls.name for cls in builders.BUILDERS.values()}
  assert all(n.startswith('jaxsr_') for n in names)
  assert {'set5', 'set14', 'bsd100', 'urban100', 'manga109', 't91', 'general100', 'bsd200',
          'bsd300', 'bsd500', 'div2k', 'flickr2k', 'df2k', 'image_folder',
          'embedded'} <= set(builders.builder_names())
  assert builders.get_builder('B100', data_dir=tmp_path).name == 'jaxsr_bsd100'


def test_embedded_builds_with_no_files(data_dir):
  test = builders.examples('embedded', split='test', data_dir=data_dir)
  train = builders.examples('embedded', split='train', data_dir=data_dir)
  assert [e.name for e in test] == [n for n, _ in EMBEDDED_TEST]
  assert [e.name for e in train] == [n for n, _ in EMBEDDED_TRAIN]
  chelsea = test[1]
  h, w = chelsea.hr.shape[:2]
  for s in (2, 3, 4):
    assert chelsea.lr[s].shape == (h // s, w // s, 3)
  np.testing.assert_array_equal(chelsea.lr[3], lr_rgb(chelsea.hr, 3))


def test_set5_matches_imresize(data_dir):
  folder = shared_path('data', 'benchmarks', 'Set5')
  got = builders.examples('set5', split='test', data_dir=data_dir,
                          manual_dir=folder.parent.parent)
  files = list_images(folder)
  assert [e.name for e in got] == [p.stem for p in files]
  for ex, path in zip(got, files):
    hr = read_image(path)
    np.testing.assert_array_equal(ex.hr, hr)
    for s in (2, 3, 4):
      np.testing.assert_array_equal(ex.lr[s], lr_rgb(hr, s), err_msg=f'{path} x{s}')


def test_set5_manual_dir_can_be_the_set_folder(data_dir):
  folder = shared_path('data', 'benchmarks', 'Set5')
  dataset = builders.load('set5', split='test', data_dir=data_dir / 'direct', manual_dir=folder)
  assert len(dataset) == 5


def test_set14_keeps_greyscale(data_dir):
  root = shared_path('data', 'benchmarks', 'Set14').parent.parent
  images = dict(builders.tfds_eval_images('set14', 'test', data_dir, root))
  assert len(images) == 14
  assert images['bridge'].shape[-1] == 1
  assert images['baboon'].shape[-1] == 3
  record = next(r for r in tfds.as_numpy(builders.load('set14', split='test', data_dir=data_dir,
                                                       manual_dir=root))
                if r['name'] == b'bridge')
  assert record['channels'] == 1 and record['hr'].shape[-1] == 3  # stored replicated


def test_t91_builds(data_dir):
  root = shared_path('data', 'train', 'T91').parent.parent
  dataset = builders.load('t91', split='train', data_dir=data_dir, manual_dir=root,
                          try_autocache=False)
  assert len(dataset) == 91
  spec = dataset.element_spec
  assert set(spec) == {'name', 'hr', 'channels', 'lr_x2', 'lr_x3', 'lr_x4'}


@pytest.mark.parametrize('name,layout', [('set5', 'Set5/'), ('div2k', 'DIV2K_train_HR/'),
                                         ('bsd500', 'BSDS500/data/images/'),
                                         ('df2k', 'Flickr2K/Flickr2K_HR/')])
def test_missing_folder_names_the_layout(tmp_path, name, layout):
  (tmp_path / 'set5').mkdir()  # misnamed
  Image.fromarray(_smooth(16, 16, 3, 0)).save(tmp_path / 'set5' / 'a.png')
  with pytest.raises(InputError) as e:
    builders.load(name, split='train', data_dir=tmp_path / 'tfds', manual_dir=tmp_path)
  message = str(e.value)
  assert '\n' not in message and layout in message and str(tmp_path) in message
  with pytest.raises(InputError, match='no such folder'):
    builders.load(name, split='train', data_dir=tmp_path / 'tfds', manual_dir=tmp_path / 'nope')
  with pytest.raises(InputError, match='JAXSR_DATA_DIR'):
    builders.load(name, split='train', data_dir=tmp_path / 'tfds')
  assert not (tmp_path / 'tfds' / f'jaxsr_{name}').exists() or not any(
      (tmp_path / 'tfds' / f'jaxsr_{name}').rglob('*.tfrecord*'))


def test_unknown_name_and_split(data_dir):
  with pytest.raises(InputError, match='unknown dataset'):
    builders.load('div3k', split='train', data_dir=data_dir)
  with pytest.raises(InputError, match="no split 'valid'"):
    builders.load('embedded', split='valid', data_dir=data_dir)


def test_image_folder_handles_modes_and_skips_tiny(tmp_path):
  folder = tmp_path / 'imgs'
  folder.mkdir()
  rgb = _smooth(20, 26, 3, 1)
  Image.fromarray(rgb).save(folder / 'a_rgb.png')
  Image.fromarray(_smooth(18, 14, 1, 2)[..., 0]).save(folder / 'b_grey.png')
  rgba = np.concatenate([_smooth(16, 16, 3, 3), np.full((16, 16, 1), 128, np.uint8)], -1)
  Image.fromarray(rgba).save(folder / 'c_rgba.png')
  Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(folder / 'd_tiny.png')
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    got = builders.examples('image_folder', split='train', data_dir=tmp_path / 'tfds',
                            manual_dir=folder, scales=(2, 4))
  messages = [str(w.message) for w in caught]
  assert any('skipped 1 of 4' in m and 'd_tiny' in m for m in messages), messages
  assert any('alpha' in m for m in messages)
  by_name = {e.name: e for e in got}
  assert sorted(by_name) == ['a_rgb', 'b_grey', 'c_rgba']
  np.testing.assert_array_equal(by_name['a_rgb'].hr, rgb)
  np.testing.assert_array_equal(by_name['a_rgb'].lr[4], lr_rgb(rgb, 4))
  assert by_name['b_grey'].hr.shape == (18, 14, 1) and by_name['b_grey'].lr[2].shape == (9, 7, 1)
  assert by_name['c_rgba'].hr.shape == (16, 16, 3)
  assert set(by_name['a_rgb'].lr) == {2, 4}


def test_corrupt_image_fails_naming_the_file(tmp_path):
  folder = tmp_path / 'imgs'
  folder.mkdir()
  Image.fromarray(_smooth(16, 16, 3, 1)).save(folder / 'good.png')
  (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\nthis is not a png')
  with pytest.raises(InputError, match='broken.png'):
    builders.load('image_folder', split='train', data_dir=tmp_path / 'tfds', manual_dir=folder)


def test_div2k_uses_official_lr_when_present(tmp_path):
  root = tmp_path / 'data'
  for split, stem in (('train', '0001'), ('valid', '0801')):
    (root / f'DIV2K_{split}_HR').mkdir(parents=True)
    Image.fromarray(_smooth(24, 36, 3, int(stem))).save(root / f'DIV2K_{split}_HR' / f'{stem}.png')
  official = np.full((12, 18, 3), 7, np.uint8)  # deliberately not the bicubic LR
  (root / 'DIV2K_train_LR_bicubic' / 'X2').mkdir(parents=True)
  Image.fromarray(official).save(root / 'DIV2K_train_LR_bicubic' / 'X2' / '0001x2.png')
  train = builders.examples('div2k', split='train', data_dir=tmp_path / 'tfds', manual_dir=root)
  valid = builders.examples('div2k', split='validation', data_dir=tmp_path / 'tfds',
                            manual_dir=root)
  np.testing.assert_array_equal(train[0].lr[2], official)
  np.testing.assert_array_equal(train[0].lr[3], lr_rgb(train[0].hr, 3))
  assert valid[0].name == '0801'
  np.testing.assert_array_equal(valid[0].lr[2], lr_rgb(valid[0].hr, 2))


def test_custom_scales_are_their_own_config(tmp_path):
  builder = builders.get_builder('embedded', data_dir=tmp_path, scales=(8, 2))
  assert builder.builder_config.name == 'x2_x8'
  assert set(builder.info.features) == {'name', 'hr', 'channels', 'lr_x2', 'lr_x8'}
  with pytest.raises(InputError, match='scales'):
    builders.get_builder('embedded', data_dir=tmp_path, scales=(1,))


def _write(folder, stems, seed=0):
  folder.mkdir(parents=True, exist_ok=True)
  for i, stem in enumerate(stems):
    Image.fromarray(_smooth(16, 20, 3, seed + i)).save(folder / f'{stem}.png')


def test_df2k_combines_div2k_and_flickr2k(tmp_path):
  root = tmp_path / 'data'
  _write(root / 'DIV2K' / 'DIV2K_train_HR', ['0001', '0002'])
  _write(root / 'DIV2K' / 'DIV2K_valid_HR', ['0801'])
  _write(root / 'Flickr2K' / 'Flickr2K_HR', ['000001'])
  train = builders.examples('df2k', split='train', data_dir=tmp_path / 'tfds', manual_dir=root,
                            scales=(2,))
  assert [e.name for e in train] == ['0001', '0002', '000001']
  sources = builders.get_builder('df2k', data_dir=tmp_path).find_sources(root)
  assert [s.name for s in sources['validation']] == ['0801']


def test_bsds_layouts_are_found(tmp_path):
  for split in ('train', 'val', 'test'):
    _write(tmp_path / 'BSR' / 'BSDS500' / 'data' / 'images' / split, [f'{split}1'])
  sources = builders.get_builder('bsd500', data_dir=tmp_path).find_sources(tmp_path)
  assert {k: [s.name for s in v] for k, v in sources.items()} == {
      'train': ['train1'], 'validation': ['val1'], 'test': ['test1']}
  _write(tmp_path / 'BSDS300' / 'images' / 'train', ['a', 'b'])
  _write(tmp_path / 'BSDS300' / 'images' / 'test', ['c'])
  assert len(builders.get_builder('bsd200', data_dir=tmp_path).find_sources(tmp_path)['train']) == 2
  assert set(builders.get_builder('bsd300', data_dir=tmp_path).find_sources(tmp_path)) == {
      'train', 'test'}
