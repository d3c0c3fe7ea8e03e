"""Tests for jaxsr.models: parameter counts, shapes, gradients, layouts, registry, CLI."""

from __future__ import annotations

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import factories
from jaxsr import models
from jaxsr.models import __main__ as models_main
from jaxsr.models import common
from jaxsr.models import registry
from jaxsr.models import vgg


def _abstract_params(model, size=16, channels=None):
  c = channels or getattr(model, 'channels', 3)
  return registry.abstract_variables(model, jax.ShapeDtypeStruct((1, size, size, c), jnp.float32))


def random_variables(model, x, seed=0):
  """Random variables for ``model`` without compiling its (slow to compile) init.

  Shapes come from ``jax.eval_shape``; kernels are N(0, 1/fan_in), biases
  small, BN statistics and scales neutral, PReLU slopes 0.25.
  """
  shapes = registry.abstract_variables(model, jax.ShapeDtypeStruct(x.shape, jnp.float32))
  rng = np.random.default_rng(seed)

  def make(path, leaf):
    name = str(getattr(path[-1], 'key', path[-1]))
    if name == 'kernel':
      fan_in = int(np.prod(leaf.shape[:-1]))
      return jnp.asarray(rng.standard_normal(leaf.shape) / np.sqrt(fan_in), jnp.float32)
    if name in ('scale', 'var'):
      return jnp.ones(leaf.shape, jnp.float32)
    if name == 'alpha':
      return jnp.full(leaf.shape, 0.25, jnp.float32)
    return jnp.asarray(0.01 * rng.standard_normal(leaf.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(make, shapes)


# (registry name, scale, overrides, expected parameter count): the counts of the original
# networks in these configurations (README's model table). Another count means a layer differs
# from the reference architecture (a missing bias, a wrong kernel size or channel count).
PARAM_COUNTS = [
    ('srcnn', 3, {}, 57_281),
    ('srcnn_955', 2, {}, 57_281),
    ('srcnn_915', 3, {}, 8_129),
    ('srcnn_935', 3, {}, 24_513),
    ('fsrcnn', 3, {}, 12_809),
    ('fsrcnn', 2, {}, 12_809),
    ('fsrcnn', 4, {}, 12_809),
    ('fsrcnn', 3, {'head': 'subpixel'}, 12_809),
    ('fsrcnn', 3, {'head': 'subpixel', 'subpixel_kernel': 1}, 8_777),
    ('espcn', 3, {}, 22_729),
    ('vdsr', 2, {}, 665_921),
    ('vdsr', 4, {}, 665_921),
    ('edsr_baseline', 2, {}, 1_369_859),
    ('edsr_baseline', 3, {}, 1_554_499),
    ('edsr_baseline', 4, {}, 1_517_571),
    ('edsr', 2, {}, 40_729_603),
    ('edsr', 3, {}, 43_680_003),
    ('edsr', 4, {}, 43_089_923),
    ('rcan', 4, {}, 15_592_355),
    ('msrresnet', 4, {}, 1_517_571),
    ('rrdbnet', 4, {}, 16_697_987),
    ('rrdbnet', 2, {'unshuffle': 2}, 16_703_171),  # RealESRGAN_x2plus
    ('rrdbnet', 1, {'unshuffle': 4}, 16_723_907),  # BasicSR's x1 variant
    ('rrdbnet', 4, {'num_block': 6}, 4_467_779),  # RealESRGAN_x4plus_anime_6B
    ('srvgg_compact', 4, {}, 621_424),  # realesr-animevideov3 (x4)
    ('srvgg_compact', 2, {}, 600_652),
    ('srvgg_compact', 2, {'net_scale': 4}, 621_424),  # the sr-vulkan x2 graph: x4 + resize
    ('srvgg_compact', 4, {'num_conv': 32}, 1_213_296),  # realesr-general-x4v3
]


@pytest.mark.parametrize('name,scale,overrides,expected', PARAM_COUNTS,
                         ids=[f'{n}-x{s}-{len(o)}' for n, s, o, _ in PARAM_COUNTS])
def test_param_counts_match_design(name, scale, overrides, expected):
  model = models.get_model(name, scale=scale, **overrides)
  assert models.count_params(_abstract_params(model)) == expected


def test_published_rounded_counts():
  got = {s: models.count_params(_abstract_params(models.get_model('edsr', scale=s)))
         for s in (2, 3, 4)}
  assert [round(got[s] / 1e6, 2) for s in (2, 3, 4)] == [40.73, 43.68, 43.09]
  rcan = models.count_params(_abstract_params(models.get_model('rcan', scale=4)))
  assert round(rcan / 1e6, 2) == 15.59


TINY = factories.TINY_MODELS


def test_every_sr_model_has_a_tiny_variant():
  assert sorted(TINY) == sorted(models.list_models('sr'))


def _sr_scales(name):
  spec = models.model_spec(name)
  # x1 exists only as RRDBNet's pixel-unshuffle variant (tests/test_ncnn.py covers it).
  return (2, 3, 4, 8) if spec.scales is None else tuple(s for s in spec.scales if s > 1)


@pytest.mark.parametrize('name', sorted(TINY))
def test_output_shapes_all_scales(name):
  for scale in _sr_scales(name):
    for channels in (1, 3):
      model = models.get_model(name, scale=scale, channels=channels, **TINY[name])
      x = jax.ShapeDtypeStruct((2, 7, 5, channels), jnp.float32)
      variables = registry.abstract_variables(model, x)
      y = jax.eval_shape(model.apply, variables, x)
      assert y.shape == (2, 7 * scale, 5 * scale, channels), (name, scale, channels)
      assert y.dtype == jnp.float32


@pytest.mark.parametrize('name', ['fsrcnn', 'espcn', 'srcnn', 'vdsr'])
def test_any_integer_scale(name):
  model = models.get_model(name, scale=5, **TINY[name])
  x = jax.ShapeDtypeStruct((1, 6, 4, 1), jnp.float32)
  y = jax.eval_shape(model.apply, registry.abstract_variables(model, x), x)
  assert y.shape == (1, 30, 20, 1)


def _tiny_grad_check(model, x):
  """Jits init and one value-and-grad step (one compilation); returns the output."""
  variables = random_variables(model, x)
  has_bn = 'batch_stats' in variables

  def loss(params):
    v = {**variables, 'params': params}
    if has_bn:
      y, _ = model.apply(v, x, train=True, mutable=['batch_stats'])
    else:
      y = model.apply(v, x)
    return jnp.mean(y ** 2), y

  (_, y), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables['params'])
  chex.assert_tree_all_finite(grads)
  assert any(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))
  return y


@pytest.mark.parametrize('name', ['srcnn', 'fsrcnn', 'fsrcnn_s', 'espcn', 'vdsr', 'edsr',
                                  'edsr_baseline', 'rcan', 'srresnet', 'msrresnet', 'rrdbnet'])
def test_forward_backward_tiny(name):
  scale = 3 if name in ('srcnn', 'fsrcnn_s', 'espcn') else 2
  model = models.get_model(name, scale=scale, **TINY[name])
  c = model.channels
  x = jax.random.uniform(jax.random.key(1), (2, 9, 7, c))
  y = _tiny_grad_check(model, x)
  assert y.shape == (2, 9 * scale, 7 * scale, c)
  chex.assert_tree_all_finite(y)


def test_fsrcnn_subpixel_head_forward_backward():
  model = models.get_model('fsrcnn', scale=3, head='subpixel', **TINY['fsrcnn'])
  y = _tiny_grad_check(model, jnp.ones((1, 5, 6, 1)) * 0.5)
  assert y.shape == (1, 15, 18, 1)


@pytest.mark.parametrize('name,size', [('srgan_discriminator', 32),
                                       ('esrgan_discriminator', 64)])
def test_discriminators_tiny(name, size):
  model = models.get_model(name, scale=None, num_feat=4)
  x = jax.random.uniform(jax.random.key(2), (2, size, size, 3))
  y = _tiny_grad_check(model, x)
  assert y.shape == (2, 1)
  # 'avg' pooling: one set of parameters for any (large enough) size.
  model = models.get_model(name, scale=None, num_feat=4, pooling='avg')
  variables = registry.abstract_variables(model, jax.ShapeDtypeStruct(x.shape, x.dtype))
  for s in (size, size + 32):
    out = jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((1, s, s, 3), jnp.float32))
    assert out.shape == (1, 1)


def test_discriminator_reference_structure():
  variables = _abstract_params(models.get_model('esrgan_discriminator', scale=None), size=128)
  params = variables['params']
  assert params['linear1']['kernel'].shape == (512 * 4 * 4, 100)
  assert params['conv0_1']['kernel'].shape == (4, 4, 64, 64)
  assert 'bias' not in params['conv0_1'] and 'bias' in params['conv0_0']
  want_bn = {f'bn{k}_{i}' for k in range(5) for i in (0, 1)} - {'bn0_0'}
  assert set(variables['batch_stats']) == want_bn
  variables = _abstract_params(models.get_model('srgan_discriminator', scale=None), size=96)
  assert variables['params']['dense1']['kernel'].shape == (512 * 6 * 6, 1024)
  assert len([k for k in variables['params'] if k.startswith('conv')]) == 8


def test_vgg19_layers_and_torchvision_indices():
  assert vgg.TORCHVISION_INDEX['conv1_1'] == 0
  assert vgg.TORCHVISION_INDEX['relu2_2'] == 8
  assert vgg.TORCHVISION_INDEX['pool4'] == 27
  assert vgg.TORCHVISION_INDEX['conv5_4'] == 34
  assert vgg.TORCHVISION_INDEX['relu5_4'] == 35
  assert len(vgg.LAYER_NAMES) == 37
  model = models.VGG19(layers=('conv1_2', 'relu2_2', 'pool1'))
  x = jax.random.uniform(jax.random.key(0), (1, 20, 18, 3))
  variables = random_variables(model, x)
  assert sorted(variables['params']) == ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2']
  feats = jax.jit(model.apply)(variables, x)
  assert sorted(feats) == ['conv1_2', 'pool1', 'relu2_2']
  assert feats['conv1_2'].shape == (1, 20, 18, 64)
  assert feats['pool1'].shape == (1, 10, 9, 64)
  assert feats['relu2_2'].shape == (1, 10, 9, 128)
  assert float(feats['conv1_2'].min()) < 0 <= float(feats['relu2_2'].min())
  grads = jax.jit(jax.grad(lambda v: model.apply(v, x)['relu2_2'].mean()))(variables)
  chex.assert_tree_all_finite(grads)


def test_vgg19_full_and_activation_flag():
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  model = models.get_model('vgg19', scale=None, layers=('5_4', '3_4'), before_activation=True)
  variables = registry.abstract_variables(model, x)
  assert models.count_params(variables) == 20_024_384  # torchvision vgg19 features
  out = jax.eval_shape(model.apply, variables, x)
  assert sorted(out) == ['conv3_4', 'conv5_4'] and out['conv5_4'].shape == (1, 4, 4, 512)
  model = models.VGG19(layers=('5_4',), before_activation=False)
  assert list(jax.eval_shape(model.apply, variables, x)) == ['relu5_4']
  with pytest.raises(ValueError):
    vgg.resolve_layer('6_1', before_activation=True)


def test_depth_to_space_dcr_order_and_inverse():
  s, c = 2, 3
  x = jnp.arange(1 * 2 * 2 * s * s * c, dtype=jnp.float32).reshape(1, 2, 2, s * s * c)
  y = common.depth_to_space(x, s)
  for dy in range(s):
    for dx in range(s):
      for ch in range(c):
        assert y[0, s * 1 + dy, s * 0 + dx, ch] == x[0, 1, 0, (dy * s + dx) * c + ch]
  np.testing.assert_array_equal(common.space_to_depth(y, s), x)


def test_pixel_shuffle_permutation_against_torch():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(0)
  for c, s in [(3, 2), (2, 3), (1, 4), (4, 2)]:
    cin = 5
    w = rng.standard_normal((c * s * s, cin, 3, 3)).astype(np.float32)
    b = rng.standard_normal((c * s * s,)).astype(np.float32)
    x = rng.random((2, cin, 6, 7)).astype(np.float32)
    conv = torch.nn.Conv2d(cin, c * s * s, 3, padding=1)
    with torch.no_grad():
      conv.weight.copy_(torch.from_numpy(w))
      conv.bias.copy_(torch.from_numpy(b))
      want = torch.nn.PixelShuffle(s)(conv(torch.from_numpy(x))).numpy().transpose(0, 2, 3, 1)
    perm = models.pixel_shuffle_permutation(c, s)
    kernel = w.transpose(2, 3, 1, 0)[..., perm]
    params = {'params': {'kernel': kernel, 'bias': b[perm]}}
    feat = common.Conv(c * s * s, 3).apply(params, x.transpose(0, 2, 3, 1))
    got = models.depth_to_space(feat, s)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Without the permutation the orders disagree (except for one channel).
    if c > 1:
      wrong = models.depth_to_space(
          common.Conv(c * s * s, 3).apply(
              {'params': {'kernel': w.transpose(2, 3, 1, 0), 'bias': b}},
              x.transpose(0, 2, 3, 1)), s)
      assert np.abs(np.asarray(wrong) - want).max() > 1e-2


def test_conv_transpose_matches_torch():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(1)
  # (kernel, stride, padding, output_padding): FSRCNN's (sub-pixel fast path) and others.
  for k, s, p, op in [(9, 2, 4, 1), (9, 3, 4, 2), (9, 4, 4, 3), (9, 3, 3, 0), (4, 2, 1, 0),
                      (3, 2, 0, 0), (5, 3, 1, 1)]:
    w = rng.standard_normal((6, 2, k, k)).astype(np.float32)  # [in, out, kh, kw]
    b = rng.standard_normal((2,)).astype(np.float32)
    x = rng.random((1, 6, 5, 7)).astype(np.float32)
    deconv = torch.nn.ConvTranspose2d(6, 2, k, stride=s, padding=p, output_padding=op)
    with torch.no_grad():
      deconv.weight.copy_(torch.from_numpy(w))
      deconv.bias.copy_(torch.from_numpy(b))
      want = deconv(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    mod = common.ConvTranspose(2, k, strides=s, padding=p, output_padding=op)
    got = mod.apply({'params': {'kernel': w.transpose(2, 3, 0, 1), 'bias': b}},
                    x.transpose(0, 2, 3, 1))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, err_msg=str((k, s, p, op)))


def test_conv_padding_modes():
  x = jax.random.uniform(jax.random.key(0), (1, 6, 5, 2))
  k = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
  params = {'params': {'kernel': k, 'bias': jnp.zeros(4)}}
  edge = common.Conv(4, 3, padding='edge').apply(params, x)
  want = jax.lax.conv_general_dilated(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge'),
                                      k, (1, 1), 'VALID',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(edge, want, atol=1e-6)
  zero = common.Conv(4, 3).apply(params, x)
  want = jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(zero, want, atol=1e-6)
  one = common.Conv(4, 1).apply({'params': {'kernel': k[:1, :1], 'bias': jnp.ones(4)}}, x)
  np.testing.assert_allclose(one, jnp.einsum('nhwc,cd->nhwd', x, k[0, 0]) + 1, atol=1e-6)


def test_srcnn_upsample_false_takes_hr_size_input():
  model = models.get_model('srcnn', scale=3, upsample=False, **TINY['srcnn'])
  x = jnp.ones((1, 12, 9, 1)) * 0.3
  variables = random_variables(model, x)
  assert model.apply(variables, x).shape == (1, 12, 9, 1)
  full = models.get_model('srcnn', scale=3, **TINY['srcnn'])
  lr = jax.random.uniform(jax.random.key(3), (1, 4, 3, 1))
  np.testing.assert_allclose(full.apply(variables, lr),
                             model.apply(variables, common.upscale_fn(lr, 3)), atol=1e-6)


def test_registry():
  names = models.list_models('all')
  for n in ['srcnn', 'srcnn_915', 'fsrcnn', 'fsrcnn_s', 'espcn', 'vdsr', 'edsr', 'edsr_baseline',
            'rcan', 'srresnet', 'msrresnet', 'rrdbnet', 'srgan_discriminator',
            'esrgan_discriminator', 'vgg19']:
    assert n in names
  assert 'vgg19' not in models.list_models('sr')
  assert models.list_models('discriminator') == ['srgan_discriminator', 'esrgan_discriminator',
                                                  'unet_discriminator']
  assert models.get_model('fsrcnn', scale=3).channels == 1
  assert models.get_model('edsr', scale=2).channels == 3
  assert models.get_model('vdsr', scale=2, channels=3).channels == 3
  assert models.get_model('edsr', scale=8).scale == 8
  with pytest.raises(ValueError):
    models.get_model('edsr', scale=5)
  with pytest.raises(ValueError):
    models.get_model('edsr', scale=None)
  with pytest.raises(ValueError):
    models.get_model('nope', scale=2)
  with pytest.raises(ValueError):  # wrong channel count is reported clearly
    m = models.get_model('espcn', scale=2)
    m.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))


def test_list_cli_json(capsys):
  assert models_main.main(['--list', '--json']) == 0
  rows = json.loads(capsys.readouterr().out)
  by_name = {r['name']: r for r in rows}
  assert set(by_name) == set(models.list_models('all'))
  assert by_name['edsr_baseline'] == {**by_name['edsr_baseline'], 'scale': 4, 'params': 1_517_571}
  assert by_name['fsrcnn']['scale'] == 3 and by_name['fsrcnn']['params'] == 12_809
  assert by_name['rrdbnet']['params'] == 16_697_987
  # SRCNN 9-5-5: 2 * (81*64 + 25*64*32 + 25*32) MACs per output pixel + the bicubic upscale.
  assert 114.3 < by_name['srcnn']['gflops_per_mp'] < 116
  # VDSR: 2 * (18 * 9*64*64 + 2 * 9*64) per output pixel (zero padding counted as XLA does).
  assert abs(by_name['vdsr']['gflops_per_mp'] - 1329.4) < 15
  assert by_name['vgg19']['scale'] is None


def test_list_cli_table(capsys):
  assert models_main.main(['--list', '--kind', 'feature']) == 0
  out = capsys.readouterr().out
  assert 'vgg19' in out and '20,024,384' in out and 'srcnn' not in out


# ---------------------------------------------------------------------------
# BasicSR oracle: same weights, same outputs (tools/install_oracle.sh).


def _load_basicsr_archs():
  from oracle import load_basicsr_archs  # pylint: disable=g-import-not-at-top
  pytest.importorskip('torch')
  try:
    loaded = load_basicsr_archs()
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f'cannot load BasicSR archs: {e!r}')
  if loaded is None:
    pytest.skip('basicsr (oracle) not installed')
  return loaded


def _rcan_rules(path):
  import re
  path = re.sub(r'residual_group\.(\d+)\.rcab\.0', r'block_\1.conv1', path)
  path = re.sub(r'residual_group\.(\d+)\.rcab\.2', r'block_\1.conv2', path)
  path = re.sub(r'residual_group\.(\d+)\.rcab\.3\.attention\.1', r'block_\1.ca.conv_down', path)
  path = re.sub(r'residual_group\.(\d+)\.rcab\.3\.attention\.3', r'block_\1.ca.conv_up', path)
  return path


def _torch_to_flax(state, *, rename=lambda p: p, shuffle=(), flatten_hw=None):
  """A minimal BasicSR -> jaxsr converter (what jaxsr/convert will do in full).

  ``shuffle``: flax module paths whose conv feeds a PixelShuffle(2).
  ``flatten_hw``: ``(name, h, w)`` of a Linear after an NCHW flatten.
  """
  import re
  params, stats = {}, {}
  for key, value in state.items():
    value = value.detach().cpu().numpy()
    mod, leaf = key.rsplit('.', 1)
    if leaf == 'num_batches_tracked':
      continue
    mod = rename(mod)
    mod = re.sub(r'upsample\.(\d+)', lambda m: f'upsample.conv_{int(m.group(1)) // 2}', mod)
    mod = re.sub(r'\.(\d+)', r'_\1', mod)
    path = mod.split('.')
    target = params
    if leaf in ('running_mean', 'running_var'):
      target, leaf = stats, {'running_mean': 'mean', 'running_var': 'var'}[leaf]
    elif leaf == 'weight' and value.ndim == 4:
      leaf, value = 'kernel', value.transpose(2, 3, 1, 0)
    elif leaf == 'weight' and value.ndim == 2:
      if flatten_hw and path[-1] == flatten_hw[0]:
        _, h, w = flatten_hw
        value = value.reshape(value.shape[0], -1, h, w).transpose(2, 3, 1, 0).reshape(
            -1, value.shape[0]).T
      leaf, value = 'kernel', value.T
    elif leaf == 'weight':
      leaf = 'scale'
    if '/'.join(path) in shuffle:
      perm = models.pixel_shuffle_permutation(value.shape[-1] // 4, 2)
      value = value[..., perm]
    node = target
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(value)
  out = {'params': params}
  if stats:
    out['batch_stats'] = stats
  return out


@pytest.mark.oracle
def test_against_basicsr_archs():
  torch, archs = _load_basicsr_archs()
  torch.manual_seed(0)
  x = np.random.default_rng(0).random((1, 3, 11, 9)).astype(np.float32)
  cases = [
      (archs['edsr'].EDSR(3, 3, num_feat=16, num_block=2, upscale=4, res_scale=0.1),
       models.get_model('edsr', scale=4, num_feat=16, num_block=2), {},
       ('upsample/conv_0', 'upsample/conv_1')),
      (archs['rcan'].RCAN(3, 3, num_feat=16, num_group=2, num_block=2, squeeze_factor=4,
                          upscale=2),
       models.get_model('rcan', scale=2, num_feat=16, num_group=2, num_block=2, reduction=4),
       {'rename': _rcan_rules}, ('upsample/conv_0',)),
      (archs['srresnet'].MSRResNet(3, 3, num_feat=16, num_block=2, upscale=4),
       models.get_model('msrresnet', scale=4, num_feat=16, num_block=2), {},
       ('upconv1', 'upconv2')),
      (archs['rrdbnet'].RRDBNet(3, 3, num_feat=16, num_block=2, num_grow_ch=8, scale=4),
       models.get_model('rrdbnet', scale=4, num_feat=16, num_block=2, num_grow_ch=8), {}, ()),
  ]
  for net, model, kw, shuffle in cases:
    net.eval()
    for p in net.parameters():  # BasicSR initialises with small weights; make outputs busy
      torch.nn.init.normal_(p, std=0.1)
    with torch.no_grad():
      want = net(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    variables = _torch_to_flax(net.state_dict(), shuffle=shuffle, **kw)
    got = jax.jit(model.apply)(variables, x.transpose(0, 2, 3, 1))
    assert got.shape == want.shape, type(net).__name__
    err = float(np.abs(np.asarray(got) - want).max() / max(1., np.abs(want).max()))
    assert err < 1e-4, (type(net).__name__, err)
  # ESRGAN discriminator (BN in eval mode; Linear after an NCHW flatten).
  net = archs['discriminator'].VGGStyleDiscriminator(3, 8, input_size=128).eval()
  for name, buf in net.named_buffers():
    if 'running_var' in name:
      buf.uniform_(0.5, 2.)
    elif 'running_mean' in name:
      buf.normal_(0., 0.1)
  img = np.random.default_rng(1).random((2, 3, 128, 128)).astype(np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(img)).numpy()
  variables = _torch_to_flax(net.state_dict(), flatten_hw=('linear1', 4, 4))
  model = models.get_model('esrgan_discriminator', scale=None, num_feat=8)
  got = jax.jit(model.apply)(variables, img.transpose(0, 2, 3, 1))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('scale,size', [(2, 5), (3, 5), (4, 3)])
def test_fsrcnn_deconv_head_equals_converted_subpixel_head(scale, size):
  from jaxsr.models import fsrcnn  # pylint: disable=g-import-not-at-top
  deconv = models.get_model('fsrcnn', scale=scale, **TINY['fsrcnn'])
  x = jax.random.uniform(jax.random.key(5), (1, 7, 6, 1))
  variables = random_variables(deconv, x)
  params = dict(variables['params'])
  head = params.pop('deconv')
  kernel = fsrcnn.deconv_to_subpixel(np.asarray(head['kernel']), scale)
  assert kernel.shape[0] == size
  params['head'] = {'kernel': jnp.asarray(kernel)}
  params['head_bias'] = head['bias']
  sub = models.get_model('fsrcnn', scale=scale, head='subpixel', subpixel_kernel=size,
                         **TINY['fsrcnn'])
  np.testing.assert_allclose(sub.apply({'params': params}, x), deconv.apply(variables, x),
                             atol=1e-5)
