"""Model registry: reference configurations by name.

``get_model(name, *, scale, **overrides)`` returns a Flax module. Super-
resolution models map LR ``[N, h, w, C]`` float32 in [0, 1] to SR
``[N, s*h, s*w, C]``; ``channels`` defaults to what the paper used (1 = Y for
SRCNN, FSRCNN, ESPCN, VDSR; 3 = RGB otherwise). Discriminators map
``[N, H, W, C]`` to logits ``[N, 1]``; ``vgg19`` returns a dict of features
(both ignore ``scale``; pass ``scale=None``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.errors import InputError
from jaxsr.models import discriminators
from jaxsr.models import edsr
from jaxsr.models import espcn
from jaxsr.models import fsrcnn
from jaxsr.models import rcan
from jaxsr.models import realcugan
from jaxsr.models import rrdbnet
from jaxsr.models import srcnn
from jaxsr.models import srresnet
from jaxsr.models import swinir
from jaxsr.models import srvgg
from jaxsr.models import vdsr
from jaxsr.models import vgg
from jaxsr.models import waifu2x

ANY_SCALE = None  # marker: every integer scale >= 1
POW2_OR_3 = (2, 3, 4, 8)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered reference configuration.

  Attributes:
    name: registry name.
    cls: the Flax module class.
    kind: 'sr', 'discriminator' or 'feature'.
    config: keyword arguments of the reference configuration.
    scales: supported scales (None: any integer >= 1; () for non-SR models).
    reference_scale: the scale used for listings (x4, or x3 for the
      SRCNN/FSRCNN/ESPCN papers' headline models).
    input_size: side of the square input used for FLOP counts of non-SR
      models (their training patch).
    description: one line.
  """
  name: str
  cls: type[nn.Module]
  kind: str
  config: Mapping[str, Any]
  scales: tuple[int, ...] | None
  reference_scale: int | None
  description: str
  input_size: int = 128


def _specs() -> list[ModelSpec]:
  s = []
  for f2, suffix in [(5, ''), (1, '_915'), (3, '_935'), (5, '_955')]:
    s.append(ModelSpec(f'srcnn{suffix}', srcnn.SRCNN, 'sr', dict(f2=f2, channels=1),
                       ANY_SCALE, 3, f'SRCNN 9-{f2}-5 (Y, bicubic inside, edge padding)'))
  s += [
      ModelSpec('fsrcnn', fsrcnn.FSRCNN, 'sr', dict(d=56, s=12, m=4, channels=1), ANY_SCALE, 3,
                'FSRCNN (56,12,4), PReLU, 9x9 deconvolution head (Y)'),
      ModelSpec('fsrcnn_s', fsrcnn.FSRCNN, 'sr', dict(d=32, s=5, m=1, channels=1), ANY_SCALE, 3,
                'FSRCNN-s (32,5,1), PReLU, 9x9 deconvolution head (Y)'),
      ModelSpec('espcn', espcn.ESPCN, 'sr', dict(channels=1), ANY_SCALE, 3,
                'ESPCN 5-3-3, tanh, sub-pixel (Y)'),
      ModelSpec('vdsr', vdsr.VDSR, 'sr', dict(channels=1), ANY_SCALE, 4,
                'VDSR, 20 layers x 64, global residual (Y, bicubic inside)'),
      ModelSpec('edsr', edsr.EDSR, 'sr', dict(num_feat=256, num_block=32, res_scale=0.1),
                POW2_OR_3, 4, 'EDSR, 32 blocks x 256, residual scaling 0.1 (RGB)'),
      ModelSpec('edsr_baseline', edsr.EDSR, 'sr', dict(num_feat=64, num_block=16, res_scale=1.),
                POW2_OR_3, 4, 'EDSR-baseline, 16 blocks x 64 (RGB)'),
      ModelSpec('rcan', rcan.RCAN, 'sr', dict(num_group=10, num_block=20, num_feat=64,
                                              reduction=16),
                POW2_OR_3, 4, 'RCAN, 10 groups x 20 RCAB x 64, CA reduction 16 (RGB)'),
      ModelSpec('srresnet', srresnet.SRResNet, 'sr', dict(num_feat=64, num_block=16),
                POW2_OR_3, 4, 'SRResNet (SRGAN generator), 16 blocks, BN, PReLU (RGB)'),
      ModelSpec('msrresnet', srresnet.MSRResNet, 'sr', dict(num_feat=64, num_block=16),
                POW2_OR_3, 4, 'MSRResNet (BasicSR), 16 blocks without BN (RGB)'),
      ModelSpec('rrdbnet', rrdbnet.RRDBNet, 'sr', dict(num_feat=64, num_block=23, num_grow_ch=32),
                (1,) + POW2_OR_3, 4,
                'RRDBNet (ESRGAN generator), 23 RRDB, nf 64, gc 32 (RGB); unshuffle=2/4 for x2/x1'),
      ModelSpec('srvgg_compact', srvgg.SRVGGNetCompact, 'sr',
                dict(num_feat=64, num_conv=16, act='prelu'), ANY_SCALE, 4,
                'SRVGGNetCompact (Real-ESRGAN animevideov3), 16 convs x 64, PReLU (RGB)'),
      ModelSpec('realcugan', realcugan.RealCUGAN, 'sr', dict(pro=False, border='reflect'),
                (2, 3, 4), 2, 'Real-CUGAN, cascaded U-Nets with SE, valid convs, reflect borders '
                '(RGB; pro=True: the pro releases)'),
      ModelSpec('waifu2x_cunet', waifu2x.CUNet, 'sr', dict(border='edge'), (1, 2), 2,
                'waifu2x cunet, cascaded U-Nets with SE (RGB; x1: denoise only)'),
      ModelSpec('waifu2x_upconv7', waifu2x.UpConv7, 'sr', dict(border='edge'), (2,), 2,
                'waifu2x upconv_7, 6 valid convs + 4x4 transposed conv (RGB)'),
      ModelSpec('swinir', swinir.SwinIR, 'sr', dict(upsampler='pixelshuffle'), POW2_OR_3, 4,
                'SwinIR classical, 6 RSTB x 6 Swin blocks, embed 180, window 8 (RGB)'),
      ModelSpec('swinir_light', swinir.SwinIR, 'sr',
                dict(embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4,
                     upsampler='pixelshuffledirect'), (2, 3, 4), 4,
                'SwinIR lightweight, 4 RSTB x 6, embed 60, one-step sub-pixel (RGB)'),
      ModelSpec('swinir_real', swinir.SwinIR, 'sr', dict(upsampler='nearest+conv'), (2, 4, 8), 4,
                'SwinIR real-world (SwinIR-M), nearest+conv upsampling (RGB)'),
      ModelSpec('srgan_discriminator', discriminators.SRGANDiscriminator, 'discriminator',
                dict(channels=3), (), None, 'SRGAN discriminator (96x96 patches)', 96),
      ModelSpec('esrgan_discriminator', discriminators.VGGStyleDiscriminator, 'discriminator',
                dict(channels=3), (), None, 'ESRGAN VGG-style discriminator (128x128 patches)',
                128),
      ModelSpec('unet_discriminator', discriminators.UNetDiscriminatorSN, 'discriminator',
                dict(channels=3, num_feat=64, skip_connection=True), (), None,
                'Real-ESRGAN U-Net discriminator, spectral norm, per-pixel logits', 256),
      ModelSpec('vgg19', vgg.VGG19, 'feature', dict(layers=('conv5_4',)), (), None,
                'VGG19 features up to conv5_4 (perceptual loss)', 128),
  ]
  return s


_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _specs()}


def list_models(kind: str = 'sr') -> list[str]:
  """Registered names of one kind ('sr', 'discriminator', 'feature') or 'all'."""
  return [n for n, s in _REGISTRY.items() if kind == 'all' or s.kind == kind]


def model_spec(name: str) -> ModelSpec:
  """The :class:`ModelSpec` registered as ``name``."""
  try:
    return _REGISTRY[name.lower()]
  except KeyError:
    raise ValueError(f"unknown model {name!r}; known: {list_models('all')}") from None


def model_fields(name: str) -> list[str]:
  """The configuration fields of model ``name`` that an override may set (not ``scale``)."""
  return [f.name for f in dataclasses.fields(model_spec(name).cls)
          if f.name not in ('parent', 'name', 'scale')]


def check_overrides(name: str, overrides: Mapping[str, Any]) -> None:
  """Raises ``InputError`` (``field='overrides'``) naming the first key of ``overrides`` that
  ``name`` has no field for, with the nearest field name (``difflib``) or the list of fields."""
  fields = model_fields(name)
  for key in overrides:
    if key in fields or key in ('scale', 'name'):
      continue
    near = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else f" (fields: {', '.join(fields)})"
    raise InputError(f"model {model_spec(name).name!r} has no field {key!r}{hint}",
                     field="overrides")


def get_model(name: str, *, scale: int | None, **overrides: Any) -> nn.Module:
  """Builds a registered model.

  Args:
    name: a name from ``list_models('all')``.
    scale: upscaling factor for SR models (``None`` for discriminators/vgg19).
    **overrides: fields replacing the reference configuration, e.g.
      ``channels=3`` or ``num_block=2`` for a tiny variant.

  Returns:
    An unbound Flax module.

  Raises:
    ValueError: an unknown name or scale; ``InputError`` (a ``ValueError``) for an override
      that is not a field of the model, naming it and the nearest field.
  """
  spec = model_spec(name)
  check_overrides(name, overrides)
  kw = dict(spec.config)
  kw.update(overrides)
  if spec.kind == 'sr':
    if scale is None or int(scale) != scale or scale < 1:
      raise ValueError(f"{name} needs an integer scale >= 1, got {scale!r}")
    if spec.scales is not None and scale not in spec.scales:
      raise ValueError(f"{name} supports scales {spec.scales}, got {scale}")
    kw['scale'] = int(scale)
  return spec.cls(**kw)


def _dummy_input(spec: ModelSpec, model: nn.Module, size: int) -> jax.ShapeDtypeStruct:
  channels = getattr(model, 'channels', 3)
  return jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)


def abstract_variables(model: nn.Module, x: jax.ShapeDtypeStruct) -> Any:
  """Variable shapes of ``model`` for input ``x`` via ``jax.eval_shape`` (no allocation)."""
  return jax.eval_shape(
      lambda k: model.init(k, jnp.zeros(x.shape, x.dtype)), jax.random.key(0))


def count_params(variables: Any) -> int:
  """Number of entries in the ``'params'`` collection (batch statistics excluded)."""
  params = variables['params'] if 'params' in variables else variables
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


def describe(name: str, *, scale: int | None = None, lr_size: int = 48) -> dict[str, Any]:
  """Parameter count and GFLOPs per output megapixel of a reference model.

  FLOPs come from XLA's cost analysis of the lowered forward pass
  (``jax.jit(apply).lower(...).cost_analysis()['flops']``; a multiply-add
  counts 2) on an ``lr_size`` square LR input, divided by the output
  megapixels. Non-SR models are measured on their training patch and the
  figure is per *input* megapixel.
  """
  spec = model_spec(name)
  if spec.kind == 'sr':
    scale = scale or spec.reference_scale
    model = get_model(name, scale=scale)
    x = _dummy_input(spec, model, lr_size)
    out_pixels = (lr_size * scale) ** 2
  else:
    model = get_model(name, scale=None)
    x = _dummy_input(spec, model, spec.input_size)
    out_pixels = spec.input_size ** 2
  variables = abstract_variables(model, x)
  lowered = jax.jit(model.apply).lower(variables, x)
  cost = lowered.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  flops = float(cost['flops'])
  return {'name': name, 'kind': spec.kind, 'scale': scale if spec.kind == 'sr' else None,
          'params': count_params(variables), 'gflops_per_mp': flops / out_pixels * 1e6 / 1e9,
          'description': spec.description}
