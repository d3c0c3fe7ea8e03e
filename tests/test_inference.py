"""Tests for jaxsr.inference: structures, exact bucketing, tiling, self-ensemble, compiles."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import factories
from jaxsr import errors
from jaxsr import inference
from jaxsr import models
from jaxsr import runtime
from jaxsr.models import common
from jaxsr.models import registry

# The shared small variants; these tests use two blocks in EDSR and RCAN and a narrower
# FSRCNN-s.
TINY = {**factories.TINY_MODELS,
        'fsrcnn_s': dict(d=6, s=3),
        'edsr': dict(num_feat=8, num_block=2),
        'rcan': dict(num_feat=8, num_group=1, num_block=2, reduction=4)}

# Set14 HR sizes (height, width).
SET14_HR = [(480, 500), (576, 720), (512, 512), (288, 352), (361, 250), (276, 276), (362, 500),
            (288, 352), (512, 512), (512, 512), (512, 768), (512, 512), (656, 529), (391, 586)]


def random_variables(model, x, seed=0):
  """Random variables from ``jax.eval_shape`` shapes (no compiled init)."""
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
    return jnp.asarray(0.1 * rng.standard_normal(leaf.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(make, shapes)


def _tiny(name, scale, **kw):
  model = models.get_model(name, scale=scale, **{**TINY[name], **kw})
  variables = random_variables(model, jnp.zeros((1, 8, 8, model.channels)))
  return model, variables


def _images(shapes, channels, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.random((h, w, channels), dtype=np.float32) for h, w in shapes]


def _direct(model, variables, im):
  return np.asarray(jax.jit(model.apply)(variables, jnp.asarray(im)[None]))[0]


def _max_rel_diff(a, b):
  return float(np.abs(a - b).max() / max(1., np.abs(b).max()))


def test_structures_and_odd_sizes():
  model, variables = _tiny('fsrcnn', 3)
  single = _images([(13, 11)], 1)[0]
  out = inference.upscale(model, variables, single)
  assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (39, 33, 1)
  np.testing.assert_allclose(out, _direct(model, variables, single), atol=1e-5)
  out2d = inference.upscale(model, variables['params'], single[..., 0])  # bare params accepted
  assert out2d.shape == (39, 33)
  np.testing.assert_allclose(out2d, out[..., 0], atol=1e-6)
  batch = np.stack(_images([(9, 10)] * 3, 1, seed=1))
  out = inference.upscale(model, variables, batch, batch_size=2)
  assert out.shape == (3, 27, 30, 1)
  np.testing.assert_allclose(out[2], _direct(model, variables, batch[2]), atol=1e-5)
  ims = _images([(5, 7), (17, 3), (1, 1)], 1, seed=2)
  outs = inference.upscale(model, variables, ims)
  assert isinstance(outs, list) and [o.shape for o in outs] == [(15, 21, 1), (51, 9, 1), (3, 3, 1)]
  for o, im in zip(outs, ims):
    np.testing.assert_allclose(o, _direct(model, variables, im), atol=1e-5)
  with pytest.raises(ValueError):
    inference.upscale(model, variables, (single * 255).astype(np.uint8))


def test_tiny_variants_cover_the_registry():
  assert sorted(TINY) == sorted(models.list_models('sr'))


@pytest.mark.parametrize('name', sorted(TINY))
def test_bucketed_output_equals_unpadded(name):
  model, variables = _tiny(name, 2)
  ims = _images([(13, 7), (21, 18)], model.channels)
  outs = inference.upscale(model, variables, ims, bucket=16, batch_size=2)
  for o, im in zip(outs, ims):
    want = _direct(model, variables, im)
    assert o.shape == want.shape
    assert _max_rel_diff(o, want) < 1e-5, name


def test_naive_padding_would_not_be_exact():
  """Why inference masks: padding the input alone changes the border outputs."""
  model, variables = _tiny('edsr_baseline', 2)
  im = _images([(13, 7)], 3)[0]
  padded = np.pad(im, ((0, 3), (0, 9), (0, 0)), mode='edge')
  naive = _direct(model, variables, padded)[:26, :14]
  want = _direct(model, variables, im)
  assert _max_rel_diff(naive, want) > 1e-3
  got = inference.upscale(model, variables, im, bucket=16)
  assert _max_rel_diff(got, want) < 1e-5


@pytest.mark.parametrize('name,scale,radius', [('fsrcnn', 3, 5), ('edsr_baseline', 2, 6),
                                               ('srcnn', 3, 5), ('msrresnet', 2, 6)])
def test_tiled_equals_untiled(name, scale, radius):
  # Radii by hand: FSRCNN tiny 2 (5x5) + 1 (3x3) + 2 (the x3 deconvolution reaches LR pixels
  # i-1 .. i+2); EDSR tiny 1 + 2 + 1 + 1 (LR convs) + 0.5 (conv_last at HR) -> 6; SRCNN x3
  # (4 + 2 + 2) / 3 + 2 (bicubic) -> 5; MSRResNet tiny 1 + 2 + 1 (LR) + 0.5 + 0.5 (HR) + 1
  # (bilinear branch, in parallel, so an overestimate) -> 6.
  model, variables = _tiny(name, scale)
  assert inference.receptive_radius(model) == radius
  overlap = 2 * radius
  ims = _images([(40, 29), (10, 45)], model.channels, seed=3)  # second is thinner than a tile
  whole = inference.upscale(model, variables, ims)
  tiled = inference.upscale(model, variables, ims, tile=overlap + 6, tile_overlap=overlap,
                            batch_size=4)
  for t, w in zip(tiled, whole):
    assert t.shape == w.shape
    assert _max_rel_diff(t, w) < 1e-5


def test_receptive_radius_reference_models():
  radius = {n: inference.receptive_radius(models.get_model(n, scale=4)) for n in
            ('edsr_baseline', 'vdsr', 'rcan')}
  assert radius == {'edsr_baseline': 36, 'vdsr': 7, 'rcan': float('inf')}


# receptive_radius of every registry model (reference configurations), pinned from the code that
# checked layer classes in jaxsr.inference before the layers declared their own reach.
RADII = {
    ('srcnn', 2): 6, ('srcnn', 3): 5, ('srcnn', 4): 4,
    ('srcnn_915', 2): 5, ('srcnn_915', 3): 4, ('srcnn_915', 4): 4,
    ('srcnn_935', 2): 6, ('srcnn_935', 3): 5, ('srcnn_935', 4): 4,
    ('srcnn_955', 2): 6, ('srcnn_955', 3): 5, ('srcnn_955', 4): 4,
    ('fsrcnn', 2): 8, ('fsrcnn', 3): 8, ('fsrcnn', 4): 7,
    ('fsrcnn_s', 2): 5, ('fsrcnn_s', 3): 5, ('fsrcnn_s', 4): 4,
    ('espcn', 2): 4, ('espcn', 3): 4, ('espcn', 4): 4,
    ('vdsr', 2): 12, ('vdsr', 3): 9, ('vdsr', 4): 7,
    ('edsr', 2): 68, ('edsr', 3): 68, ('edsr', 4): 68,
    ('edsr_baseline', 2): 36, ('edsr_baseline', 3): 36, ('edsr_baseline', 4): 36,
    ('rcan', 2): float('inf'), ('rcan', 3): float('inf'), ('rcan', 4): float('inf'),
    ('srresnet', 2): 40, ('srresnet', 3): 40, ('srresnet', 4): 40,
    ('msrresnet', 2): 36, ('msrresnet', 3): 36, ('msrresnet', 4): 36,
    ('rrdbnet', 2): 349, ('rrdbnet', 3): 348, ('rrdbnet', 4): 349,
    ('realcugan', 2): float('inf'), ('realcugan', 3): float('inf'),
    ('realcugan', 4): float('inf'), ('waifu2x_cunet', 2): float('inf'),
    ('waifu2x_upconv7', 2): 7,
    ('srvgg_compact', 2): 18, ('srvgg_compact', 4): 18,
    ('swinir', 2): float('inf'), ('swinir_light', 4): float('inf'),
    ('swinir_real', 4): float('inf'), ('unet_discriminator', None): 34,
    ('srgan_discriminator', None): 30, ('esrgan_discriminator', None): 62, ('vgg19', None): 118,
}
# Variants with other layer settings (padding modes, heads, kernel sizes, x8).
RADII_VARIANTS = [
    ('srcnn', 3, dict(padding='zero'), 5), ('srcnn', 3, dict(padding='valid'), 5),
    ('srcnn', 2, dict(upsample=False), 8), ('fsrcnn', 3, dict(head='subpixel'), 7),
    ('fsrcnn', 2, dict(head='subpixel'), 8),
    ('fsrcnn', 3, dict(head='subpixel', subpixel_kernel=1), 6), ('fsrcnn', 8, {}, 7),
    ('edsr_baseline', 8, {}, 36), ('srresnet', 8, {}, 40), ('espcn', 3, dict(channels=3), 4),
]


def test_receptive_radius_of_every_registry_model():
  names = {n for n, _ in RADII}
  assert names == set(models.list_models('all'))
  got = {(n, s): inference.receptive_radius(models.get_model(n, scale=s)) for n, s in RADII}
  assert got == RADII
  for name, scale, overrides, radius in RADII_VARIANTS:
    model = models.get_model(name, scale=scale, **overrides)
    assert inference.receptive_radius(model) == radius, (name, scale, overrides)


def test_tiling_too_small_overlap_differs():
  model, variables = _tiny('edsr_baseline', 2)
  im = _images([(40, 29)], 3, seed=3)[0]
  whole = inference.upscale(model, variables, im)
  tiled = inference.upscale(model, variables, im, tile=16, tile_overlap=2)
  assert _max_rel_diff(tiled, whole) > 1e-4


def test_self_ensemble_is_mean_of_inverted_outputs():
  model, variables = _tiny('fsrcnn', 2)
  im = _images([(9, 6)], 1, seed=4)[0]
  got = inference.upscale(model, variables, im, self_ensemble=True)
  outs = []
  for k in range(8):
    x = np.rot90(im[:, ::-1] if k >= 4 else im, k % 4, axes=(0, 1))
    y = np.rot90(_direct(model, variables, np.ascontiguousarray(x)), -(k % 4), axes=(0, 1))
    outs.append(y[:, ::-1] if k >= 4 else y)
  np.testing.assert_allclose(got, np.mean(outs, axis=0), atol=1e-5)
  assert np.abs(got - _direct(model, variables, im)).max() > 1e-4  # FSRCNN is not equivariant


def test_self_ensemble_of_equivariant_model_is_identity():
  # VDSR with dihedrally symmetric kernels (and symmetric bicubic / zero padding) is
  # equivariant to flips and 90-degree rotations, so the ensemble changes nothing.
  model, variables = _tiny('vdsr', 2)

  def symmetrize(path, leaf):
    if str(getattr(path[-1], 'key', '')) != 'kernel':
      return leaf
    ks = [jnp.rot90(leaf, r, axes=(0, 1)) for r in range(4)]
    ks += [k[:, ::-1] for k in ks]
    return sum(ks) / 8
  variables = jax.tree_util.tree_map_with_path(symmetrize, variables)
  im = _images([(11, 8)], 1, seed=5)[0]
  plain = inference.upscale(model, variables, im)
  ens = inference.upscale(model, variables, im, self_ensemble=True)
  np.testing.assert_allclose(ens, plain, atol=1e-5)


def test_compile_count_set14_shapes():
  inference.clear_cache()
  assert inference.compile_count() == 0
  scale = 4
  shapes = [(h // scale, w // scale) for h, w in SET14_HR]
  assert len(set(shapes)) == 10
  model, variables = _tiny('fsrcnn', scale, d=4, s=2)
  ims = _images(shapes, 1, seed=6)
  plan = inference.plan_compilations([s + (1,) for s in shapes])
  assert len(plan) == 4  # the number documented in jaxsr.inference
  outs = inference.upscale(model, variables, ims)
  assert [o.shape[:2] for o in outs] == [(scale * h, scale * w) for h, w in shapes]
  assert inference.compile_count() == 4
  # Same sizes again, and an equal model object: nothing new is compiled.
  same_model = models.get_model('fsrcnn', scale=scale, **{**TINY['fsrcnn'], 'd': 4, 's': 2})
  inference.upscale(same_model, variables, ims[:3])
  assert inference.compile_count() == 4
  # Tiles all have one shape: one compile for full batches (+1 for a smaller last batch).
  before = inference.compile_count()
  inference.upscale(model, variables, ims, tile=64, tile_overlap=16, batch_size=4)
  plan = inference.plan_compilations([s + (1,) for s in shapes], tile=64, tile_overlap=16,
                                     batch_size=4)
  assert inference.compile_count() - before == len(plan) == 1


def test_batched_equals_unbatched():
  model, variables = _tiny('espcn', 3)
  ims = _images([(8, 9)] * 5 + [(7, 7)], 1, seed=7)
  one = inference.upscale(model, variables, ims, batch_size=1)
  four = inference.upscale(model, variables, ims, batch_size=4)
  for a, b in zip(one, four):
    np.testing.assert_allclose(a, b, atol=1e-6)


def _fsrcnn_pytorch_variables(state):
  """Maps a state dict of the fsrcnn_pytorch weights onto jaxsr's FSRCNN.

  That model keeps its layers in ``first_part`` (conv 5x5 + PReLU), ``mid_part``
  (shrink, the mapping convs and expand, each followed by a PReLU, so PReLU
  slopes sit at the odd indices) and ``last_part`` (the 9x9 ``ConvTranspose2d``,
  weight ``[in, out, kh, kw]``); conv weights are ``[out, in, kh, kw]``.
  """
  names = {'first_part.0': 'extract', 'first_part.1': 'extract_prelu', 'mid_part.0': 'shrink',
           'mid_part.1': 'shrink_prelu', 'mid_part.10': 'expand', 'mid_part.11': 'expand_prelu',
           'last_part': 'deconv'}
  for i in range(4):
    names[f'mid_part.{2 + 2 * i}'] = f'map_{i}'
    names[f'mid_part.{3 + 2 * i}'] = f'map_{i}_prelu'
  params = {}
  for key, value in state.items():
    mod, leaf = key.rsplit('.', 1)
    value = value.numpy()
    name = names[mod]
    if name == 'deconv' and leaf == 'weight':
      leaf, value = 'kernel', value.transpose(2, 3, 0, 1)  # [in, out, kh, kw] -> [kh, kw, in, out]
    elif leaf == 'weight' and value.ndim == 4:
      leaf, value = 'kernel', value.transpose(2, 3, 1, 0)
    elif leaf == 'weight':
      leaf = 'alpha'
    params.setdefault(name, {})[leaf] = jnp.asarray(value)
  return {'params': params}


@pytest.mark.shared
@pytest.mark.parametrize('scale,published', [(2, 37.12), (3, 33.22)])
def test_fsrcnn_pytorch_weights_reproduce_published_set5(scale, published):
  """The pretrained PyTorch FSRCNN (9x9 deconvolution head) loads 1:1 and gives its README's
  Set5 PSNR with its protocol (HR PIL-resized to a multiple of the scale, PIL-bicubic LR,
  PSNR on [0, 1] Y without shaving), through jaxsr.inference."""
  torch = pytest.importorskip('torch')
  image = pytest.importorskip('PIL.Image')
  from conftest import shared_path  # pylint: disable=g-import-not-at-top
  weights = shared_path('weights', 'fsrcnn_pytorch', f'fsrcnn_x{scale}.pth')
  set5 = shared_path('data', 'benchmarks', 'Set5')
  state = torch.load(weights, map_location='cpu', weights_only=True)
  model = models.get_model('fsrcnn', scale=scale)
  variables = _fsrcnn_pytorch_variables(state)

  def y_of(img):
    a = np.asarray(img, np.float64)
    return (16. + (64.738 * a[..., 0] + 129.057 * a[..., 1] + 25.064 * a[..., 2]) / 256.) / 255.

  lrs, hrs = [], []
  for path in sorted(set5.glob('*.png')):
    hr = image.open(path).convert('RGB')
    w, h = (hr.width // scale) * scale, (hr.height // scale) * scale
    hr = hr.resize((w, h), resample=image.BICUBIC)  # (sic) that README's test resizes to modcrop
    lr = hr.resize((w // scale, h // scale), resample=image.BICUBIC)
    hrs.append(y_of(hr))
    lrs.append(y_of(lr).astype(np.float32)[..., None])
  srs = inference.upscale(model, variables, lrs)
  psnrs = [10 * np.log10(1. / np.mean((np.clip(sr[..., 0], 0, 1) - hr) ** 2))
           for sr, hr in zip(srs, hrs)]
  assert abs(np.mean(psnrs) - published) < 0.05, np.mean(psnrs)


# ----------------------------------------------------------------------------
# Spatial rules: what the interceptor reads instead of layer classes.


class _WithLayer(nn.Module):
  """3x3 conv -> ``layer`` -> depth_to_space(2): a x2 model around one layer under test."""
  layer: nn.Module
  scale: int = 2
  channels: int = 1

  @nn.compact
  def __call__(self, x):
    x = common.Conv(4, 3, name='conv_in')(x)
    x = self.layer(x)
    return common.depth_to_space(common.Conv(4, 3, name='conv_out')(x), 2)


class _BoxBlur(nn.Module):
  """A user layer that mixes pixels and declares nothing."""

  @nn.compact
  def __call__(self, x):
    p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(p[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)) / 9


@pytest.mark.parametrize('layer', [nn.Conv(4, (3, 3)), nn.ConvTranspose(4, (3, 3)), _BoxBlur()])
def test_undeclared_spatial_layer_refuses_bucketing(layer):
  model = _WithLayer(layer)
  im = _images([(13, 7)], 1, seed=8)[0]
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
  with pytest.raises(errors.InputError, match='bucket=None') as info:
    inference.upscale(model, variables, im, bucket=16)
  message = str(info.value)
  assert '\n' not in message
  assert f"layer 'layer' ({type(layer).__module__}.{type(layer).__qualname__})" in message
  with pytest.raises(errors.InputError, match='bucket=None'):  # a tile larger than the image
    inference.upscale(model, variables, im, tile=16, tile_overlap=4)
  with pytest.raises(ValueError, match="layer 'layer' "):
    inference.receptive_radius(model)
  # Exact sizes run the model unmodified, whole or in tiles that fit the image.
  want = _direct(model, variables, im)
  np.testing.assert_allclose(inference.upscale(model, variables, im, bucket=None), want,
                             atol=1e-6)
  tiled = inference.upscale(model, variables, im, bucket=None, tile=7, tile_overlap=6)
  assert tiled.shape == want.shape


@pytest.mark.parametrize('layer', [
    nn.Conv(4, (1, 1)), nn.Dense(4), nn.LayerNorm(), nn.PReLU(), common.PReLU(),
    common.Upsample(1, 'nearest'),
])
def test_pointwise_flax_layers_run_bucketed_exactly(layer):
  model = _WithLayer(layer)
  variables = random_variables(model, jnp.zeros((1, 8, 8, 1)), seed=9)
  ims = _images([(13, 7), (5, 11)], 1, seed=9)
  outs = inference.upscale(model, variables, ims, bucket=16, batch_size=2)
  for o, im in zip(outs, ims):
    assert _max_rel_diff(o, _direct(model, variables, im)) < 1e-5


def test_valid_convolutions_run_at_exact_sizes_whatever_the_bucket():
  model = models.get_model('srcnn', scale=2, padding='valid', n1=4, n2=2)
  variables = random_variables(model, jnp.zeros((1, 16, 16, 1)))
  im = _images([(10, 9)], 1)[0]
  assert inference.needs_exact_sizes(model)
  out = inference.upscale(model, variables, im, bucket=None)
  assert out.shape == (20 - 16, 18 - 16, 1)  # 9-5-5 'valid' shrinks by 16 HR pixels
  np.testing.assert_array_equal(inference.upscale(model, variables, im, bucket=16), out)
  assert not inference.needs_exact_sizes(models.get_model('srcnn', scale=2, n1=4, n2=2))


def test_declared_resolution_change_matches_shapes():
  """Every spatial rule met in the registry's models states its layer's output size."""
  seen = set()

  def check(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name != '__call__' or not args or getattr(args[0], 'ndim', 0) != 4:
      return y
    rule = common.spatial_rule_of(context.module)
    if rule is not None:
      h = args[0].shape[1]
      seen.add(rule.valid_region)
      if rule.valid_region == common.MEAN:
        assert y.shape[1:3] == (1, 1)
      elif rule.valid_region != common.EXACT_SIZE_ONLY:
        assert y.shape[1] == round(h * rule.scale), (context.module.path, rule, h, y.shape)
    return y

  cases = [(n, 3 if n.startswith(('srcnn', 'fsrcnn', 'espcn')) else 2, TINY[n]) for n in TINY]
  cases += [('fsrcnn', 3, dict(head='subpixel')), ('srgan_discriminator', None, {}),
            ('esrgan_discriminator', None, {}), ('vgg19', None, {}),
            ('srcnn', 3, dict(padding='valid'))]
  with nn.intercept_methods(check):
    for name, scale, overrides in cases:
      model = models.get_model(name, scale=scale, **overrides)
      registry.abstract_variables(
          model, jax.ShapeDtypeStruct((1, 32, 32, getattr(model, 'channels', 3)), jnp.float32))
  assert seen == set(common.VALID_REGION_RULES)


class _DeclaredBoxBlur(_BoxBlur):
  """The same user layer, declaring its zero padding."""

  @nn.nowrap
  def spatial_rule(self):
    return models.SpatialRule('zero', reach=1)


def test_user_layer_with_a_spatial_rule_runs_bucketed_exactly():
  model = _WithLayer(_DeclaredBoxBlur())
  variables = random_variables(model, jnp.zeros((1, 8, 8, 1)), seed=10)
  ims = _images([(13, 7), (6, 10)], 1, seed=10)
  outs = inference.upscale(model, variables, ims, bucket=16, batch_size=2)
  for o, im in zip(outs, ims):
    assert _max_rel_diff(o, _direct(model, variables, im)) < 1e-5
  assert inference.receptive_radius(model) == 3  # 3x3 conv, blur, 3x3 conv: 1 + 1 + 1
  with pytest.raises(ValueError, match='unknown valid_region'):
    models.SpatialRule('reflect')


def test_forward_memory_follows_xla_at_the_actual_size(monkeypatch):
  # XLA's memory analysis omits XLA:CPU's im2col buffers, which the estimate adds when an entry
  # point (or another test in this process) turned YNNPACK fusions off: compare without them.
  monkeypatch.setattr(runtime, 'xla_cpu_im2col_convolutions', lambda: False)
  monkeypatch.setattr(inference, '_FOOTPRINTS', {})
  model, variables = _tiny('fsrcnn', 3)
  fixed, per_pixel = inference._footprint(model, variables, 1)
  lowered = inference._jitted(model).lower(
      variables, jax.ShapeDtypeStruct((1, 320, 256, 1), jnp.float32),
      jax.ShapeDtypeStruct((1,), jnp.int32), jax.ShapeDtypeStruct((1,), jnp.int32), padded=True)
  stats = lowered.compile().memory_analysis()
  actual = (stats.argument_size_in_bytes + stats.output_size_in_bytes +
            stats.temp_size_in_bytes)
  assert abs(fixed + per_pixel * 320 * 256 - actual) < 0.1 * actual
  small = inference.forward_memory(model, variables, (150, 130, 1))
  assert inference.forward_memory(model, variables, (300, 260, 1)) > 3 * small > 0


def test_plan_memory_tiles_when_memory_is_short():
  model, variables = _tiny('fsrcnn', 3)
  radius = int(inference.receptive_radius(model))
  shape = (150, 130, 1)
  need = inference.forward_memory(model, variables, shape)
  roomy = inference.plan_memory(model, variables, shape, available=2 * need)
  assert roomy.tile is None and roomy.need == need and roomy.available == 2 * need
  short = inference.plan_memory(model, variables, shape, available=need // 2,
                                tile_overlap=2 * radius)
  assert short.tile in inference.TILE_CANDIDATES and short.tile < max(shape)
  assert short.tile_need <= 0.8 * (need // 2)
  im = _images([shape[:2]], 1, seed=5)[0]
  whole = inference.upscale(model, variables, im)
  tiled = inference.upscale(model, variables, im, tile=short.tile, tile_overlap=2 * radius)
  assert tiled.shape == whole.shape and _max_rel_diff(tiled, whole) < 1e-5
  # An explicit tile that does not fit is refused with the one that does.
  cost = {t: inference.plan_memory(model, variables, shape, tile=t, available=10**12).tile_need
          for t in (96, 128)}
  between = int((cost[96] + cost[128]) / 2 / 0.8)
  with pytest.raises(errors.InputError, match='with tile 128 needs .*; use tile 96') as info:
    inference.plan_memory(model, variables, shape, tile=128, available=between)
  assert info.value.field == 'tile'
  assert inference.plan_memory(model, variables, shape, available=between).tile == 96
  with pytest.raises(errors.InputError, match='even with tile 64'):
    inference.plan_memory(model, variables, shape, available=1000)


def test_available_memory_env(monkeypatch):
  monkeypatch.setenv(inference.MEMORY_ENV, '8M')
  assert inference.available_memory() == 8 * 2**20
  monkeypatch.setenv(inference.MEMORY_ENV, '1.5G')
  assert inference.available_memory() == int(1.5 * 2**30)
  monkeypatch.setenv(inference.MEMORY_ENV, 'lots')
  with pytest.raises(errors.InputError, match='lots'):
    inference.available_memory()
  monkeypatch.delenv(inference.MEMORY_ENV)
  assert inference.available_memory() is None or inference.available_memory() > 0


def test_im2col_workspace_per_pixel_follows_each_convolution(monkeypatch):
  # XLA:CPU without YNNPACK gathers a convolution's patches into one buffer its memory
  # analysis does not count (a 4000x3000 ESPCN pass asked for ~28 GB of it); the estimate adds
  # the largest one, at the resolution the convolution runs at.
  espcn = models.get_model("espcn", scale=3)  # 5x5 on 1 channel, 3x3 on 64, 3x3 on 32
  variables = jax.eval_shape(espcn.init, jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
  assert inference._im2col_per_pixel(espcn, variables, 1) == 4 * 3 * 3 * 64
  srcnn = models.get_model("srcnn", scale=3)  # bicubic x3 inside, then 9x9/1, 5x5/64 at HR size
  variables = jax.eval_shape(srcnn.init, jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
  assert inference._im2col_per_pixel(srcnn, variables, 1) == 4 * 5 * 5 * 64 * 9
  monkeypatch.setenv("XLA_FLAGS", "--foo=1 --xla_cpu_experimental_ynn_fusion_type=")
  assert runtime.xla_cpu_im2col_convolutions()
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=convolution")
  assert not runtime.xla_cpu_im2col_convolutions()
  monkeypatch.delenv("XLA_FLAGS")
  assert not runtime.xla_cpu_im2col_convolutions()


# ----------------------------------------------------------------------------
# Blended tiles, compute dtype, 16-bit / alpha images, resize (helper ZOO).


@pytest.mark.parametrize('n,tile,overlap,scale', [(40, 16, 4, 2), (45, 18, 12, 3), (37, 10, 8, 1),
                                                  (9, 16, 4, 2)])
def test_feather_weights_sum_to_one_and_vanish_at_cuts(n, tile, overlap, scale):
  starts = inference._tile_starts(n, tile, overlap)
  length = min(tile, n)
  weights = inference._feather(starts, length, n, scale, overlap)
  total = np.zeros(n * scale)
  for a, w in zip(starts, weights):
    assert w.shape == (length * scale,) and w.min() >= 0
    total[a * scale:(a + length) * scale] += w
    margin = int(inference._FEATHER_MARGIN * overlap * scale)
    if a > 0 and margin:
      assert np.all(w[:margin] == 0)  # nothing from next to a cut
    if a + length < n and margin:
      assert np.all(w[-margin:] == 0)
  np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_tiles_blend_only_where_approximate():
  model, variables = _tiny('edsr_baseline', 2)
  radius = int(inference.receptive_radius(model))
  assert inference.exact_overlap(model) == 2 * radius
  assert inference.tiling_is_exact(model, 2 * radius)
  assert not inference.tiling_is_exact(model, 2 * radius - 2)
  assert inference.exact_overlap(models.get_model('rcan', scale=2)) is None
  im = _images([(40, 29)], 3, seed=3)[0]
  whole = inference.upscale(model, variables, im)
  # Exact overlap: the default cuts mid-overlap, bit for bit as without blending.
  exact = dict(tile=2 * radius + 6, tile_overlap=2 * radius)
  auto = inference.upscale(model, variables, im, **exact)
  np.testing.assert_array_equal(auto, inference.upscale(model, variables, im, blend=False,
                                                        **exact))
  assert _max_rel_diff(auto, whole) < 1e-5
  # Approximate overlap: the default blends.
  approx = dict(tile=2 * radius + 6, tile_overlap=4)  # the same tile: no new compilation
  auto = inference.upscale(model, variables, im, **approx)
  blended = inference.upscale(model, variables, im, blend=True, **approx)
  cut = inference.upscale(model, variables, im, blend=False, **approx)
  np.testing.assert_array_equal(auto, blended)
  assert np.abs(blended - cut).max() > 1e-4
  # The blend is a convex combination of tiles: no worse than twice the cut's error.
  assert np.abs(blended - whole).max() <= 2 * np.abs(cut - whole).max()


@pytest.mark.parametrize('dtype,tol', [('bfloat16', 0.05), ('float16', 0.01)])
def test_reduced_precision_dtype(dtype, tol):
  model, variables = _tiny('edsr_baseline', 2)
  im = _images([(12, 10)], 3, seed=4)[0]
  ref = inference.upscale(model, variables, im)
  got = inference.upscale(model, variables, im, dtype=dtype)
  assert got.dtype == np.float32 and got.shape == ref.shape
  assert 0 < _max_rel_diff(got, ref) < tol  # computed in the low precision, and close
  np.testing.assert_array_equal(inference.upscale(model, variables, im, dtype='float32'), ref)
  with pytest.raises(errors.InputError, match='dtype must be one of') as info:
    inference.upscale(model, variables, im, dtype='int8')
  assert info.value.field == 'dtype'


def test_upscale_image_16_bit_and_alpha():
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top

  model, variables = _tiny('edsr_baseline', 2)
  rng = np.random.default_rng(5)
  rgba8 = rng.integers(0, 256, (11, 9, 4)).astype(np.uint8)
  out8 = inference.upscale_image(rgba8, model, variables, scale=2)
  assert out8.dtype == np.uint8 and out8.shape == (22, 18, 4)
  np.testing.assert_array_equal(out8[..., :3],
                                inference.upscale_image(rgba8[..., :3], model, variables, scale=2))
  np.testing.assert_array_equal(out8[..., 3], imresize.imresize_np(rgba8[..., 3], 2))
  # 16 bits: the same image scaled by 257 gives the 8-bit result scaled by 257 (+- rounding).
  rgba16 = rgba8.astype(np.uint16) * 257
  out16 = inference.upscale_image(rgba16, model, variables, scale=2)
  assert out16.dtype == np.uint16
  assert np.abs(out16.astype(np.int64) - out8.astype(np.int64) * 257).max() <= 257
  grey_alpha = rgba16[..., 2:]
  out = inference.upscale_image(grey_alpha, model, variables, scale=2, alpha='model')
  assert out.shape == (22, 18, 2) and out.dtype == np.uint16
  with pytest.raises(errors.InputError, match='alpha must be one of'):
    inference.upscale_image(rgba8, model, variables, scale=2, alpha='nearest')


@pytest.mark.parametrize('size', [(74, 58), (20, 15), (37, 60)])
def test_resize_image_is_imresize(size):
  from jaxsr import imresize  # pylint: disable=g-import-not-at-top

  im = np.random.default_rng(6).integers(0, 256, (37, 29, 3)).astype(np.uint8)
  np.testing.assert_array_equal(inference.resize_image(im, size),
                                imresize.imresize_np(im, output_shape=size))
