"""Importers of the U-Net families: Real-CUGAN and waifu2x (ncnn graphs, Real-CUGAN's .pth).

Contract: ``match_realcugan`` / ``match_waifu2x`` have the family-matcher signature of
:mod:`jaxsr.convert.ncnn`, ``match(layers, weights, *, source) -> Imported | None``: None when
the graph is not of the family; ``InputError`` naming the first layer that does not fit when it
starts like the family but deviates. ``import_realcugan_state_dict(state, *, source)`` maps
Real-CUGAN's PyTorch releases (``up2x-latest-conservative.pth``, ... with keys
``unet1.conv1.conv.0.weight`` ...; ``pro`` key: the pro releases).

How a graph is mapped: the jaxsr model of the recognised family and scale is run abstractly
(no allocation) and its convolutions are listed in the order it calls them; that order is
the order of the graph's weighted layers (``Convolution``, ``Deconvolution``, ``InnerProduct``
for the squeeze-excitation 1x1 convs). Each pair must agree in type, kernel size, stride,
output count, weight count and activation (LeakyReLU 0.1, ReLU and sigmoid in the SE blocks,
none on the heads), and the graph's crops must be the family's (4, 4, 16, 20 pixels, and 1 at
x4). ncnn's ``Convolution`` weights ``[out, in, kh, kw]`` and ``Deconvolution`` weights (ncnn
keeps the output channel first and does not flip the kernel) both become ``[kh, kw, in, out]``
by the same transpose; Real-CUGAN x4's ``conv_final`` feeds a ``PixelShuffle`` (PyTorch order)
and is permuted to jaxsr's :func:`~jaxsr.models.common.depth_to_space` order.

Input conventions of the graphs (found by running ncnn on test inputs; see the tests): every
graph takes an RGB image in [0, 1], already extended at its borders, and returns the output
without that border, i.e. ``s * (L - 2 * pad)`` pixels for ``L`` input pixels (pad 18 / 14 / 19
for Real-CUGAN x2 / x3 / x4, 18 for cunet x2, 28 for cunet x1, 7 for upconv_7; the cunet and
Real-CUGAN x1/x2/x4 graphs need ``L - 2 * pad`` to be a multiple of 2 (4 for x1 and x3)). What
the graphs leave to their runner, and the jaxsr models do themselves: the border extension
(reflect for Real-CUGAN, edge for waifu2x, as realcugan-ncnn-vulkan / waifu2x-ncnn-vulkan and
the PyTorch sources) and Real-CUGAN x4's nearest-neighbour residual (``+ nearest_x4(input)``).
The pro releases' ``0.7 x + 0.15`` input transform and its inverse are folded into their
graphs' weights (the converter removed the two input operations; on a Set5 crop the raw
convention gives 25.60 dB where applying the transform around the graph gives 25.47 dB and
either half alone 18-20 dB), so they import as ``realcugan`` with ``pro=False``; ``pro=True``
is for the PyTorch ``.pth`` pro releases.

Which family a cascaded U-Net graph belongs to (waifu2x's cunet x2 and Real-CUGAN x2 have the
same layers): a ``waifu2x`` / ``cugan`` token in the file path, else the layer style (waifu2x's
Caffe-converted graphs use ``Eltwise`` / ``Scale``, Real-CUGAN's ``BinaryOp``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import models
from jaxsr.convert import _common
from jaxsr.convert.ncnn_format import Layer
from jaxsr.errors import InputError
from jaxsr.models import common
from jaxsr.models import realcugan as realcugan_model
from jaxsr.models import waifu2x as waifu2x_model

# ncnn activation_type (param 9) values.
_ACT_NONE, _ACT_RELU, _ACT_LEAKY, _ACT_SIGMOID = 0, 1, 2, 4
_ACT_NAMES = {0: 'none', 1: 'ReLU', 2: 'LeakyReLU', 3: 'clip', 4: 'sigmoid', 5: 'mish',
              6: 'hardswish'}
_WEIGHTED = ('Convolution', 'Deconvolution', 'InnerProduct')
# Layers a U-Net graph may contain besides the weighted ones.
_OTHER = frozenset({'Input', 'Split', 'Crop', 'BinaryOp', 'Eltwise', 'Scale', 'Pooling',
                    'PixelShuffle'})
CASCADE_CROPS = (4, 4, 16, 20)


def _token(source: str, word: str) -> bool:
  return re.search(rf'(^|[^a-z]){word}([^a-z]|$)', source.lower()) is not None


def _layer_conv_slots(module: nn.Module) -> list[tuple[str, Any]]:
  """``(param path, module)`` of every Conv / ConvTranspose the model calls, in call order."""
  slots: list[tuple[str, Any]] = []

  def record(next_fun, args, kwargs, context):
    mod = context.module
    if context.method_name == '__call__' and isinstance(mod, (common.Conv, common.ConvTranspose)):
      slots.append(('/'.join(mod.path), mod))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda k: module.init(k, jnp.zeros((1, 16, 16, 3), jnp.float32)),
                   jax.random.key(0))
  return slots


def _expected_activation(path: str) -> tuple[int, float | None]:
  if path.endswith('se/conv1'):
    return _ACT_RELU, None
  if path.endswith('se/conv2'):
    return _ACT_SIGMOID, None
  if path.endswith(('conv_bottom', 'conv_final', 'conv7')):
    return _ACT_NONE, None
  return _ACT_LEAKY, 0.1


def _describe(layer: Layer) -> str:
  return f"layer {layer.name!r} ({layer.type})"


def _check_slot(layer: Layer, path: str, mod: Any, source: str, what: str) -> None:
  """Raises InputError unless ncnn ``layer`` can hold the weights of jaxsr ``mod``."""
  p = layer.params
  pointwise = isinstance(mod, common.Conv) and mod.kernel_size == 1
  if pointwise:
    want_type = 'InnerProduct'
  else:
    want_type = 'Deconvolution' if isinstance(mod, common.ConvTranspose) else 'Convolution'
  fail = lambda why: InputError(f"{source}: {_describe(layer)} cannot be {what}'s {path}: {why}")
  if layer.type != want_type:
    raise fail(f"expected a {want_type}")
  if int(p.get(0, 0)) != mod.features:
    raise fail(f"{p.get(0, 0)} outputs, expected {mod.features}")
  act, slope = _expected_activation(path)
  got = int(p.get(9, 0))
  if got != act:
    raise fail(f"activation {_ACT_NAMES.get(got, got)}, expected {_ACT_NAMES[act]}")
  if slope is not None:
    values = p.get(10, [0.])
    if not values or abs(float(values[0]) - slope) > 1e-6:
      raise fail(f"LeakyReLU slope {values}, expected {slope}")
  if pointwise:
    if int(p.get(1, 0)) != 1:
      raise fail("no bias, expected one")
    return
  k, s = int(p.get(1, 0)), int(p.get(3, 1))
  if int(p.get(11, k)) != k or int(p.get(13, s)) != s:
    raise fail("non-square kernel or stride")
  pad = int(p.get(4, 0))
  if k != mod.kernel_size or s != mod.strides:
    raise fail(f"kernel {k} stride {s}, expected kernel {mod.kernel_size} stride {mod.strides}")
  want_pad = mod.padding if isinstance(mod, common.ConvTranspose) else 0
  if pad != want_pad or any(int(p.get(i, 0)) for i in (14, 15, 16)) or int(p.get(2, 1)) != 1:
    raise fail(f"padding {pad} / dilation {p.get(2, 1)}, expected padding {want_pad}, no "
               f"dilation")
  if int(p.get(5, 0)) != 1:
    raise fail("no bias, expected one")
  if isinstance(mod, common.ConvTranspose) and (int(p.get(18, 0)) or int(p.get(19, 0))):
    raise fail("output padding, expected none")


def _crop_offset(layer: Layer) -> int | None:
  """The uniform crop of a ``Crop`` layer (ncnn's two-input or start/end form), or None."""
  p = layer.params
  if 9 in p:  # starts (-23309), ends (-23310), axes (-23311)
    starts, ends = list(p.get(9, [])), list(p.get(10, []))
    if len(set(starts)) == 1 and ends == [-starts[0]] * len(starts):
      return int(starts[0])
    return None
  w, h = int(p.get(0, 0)), int(p.get(1, 0))
  return w if w == h else None


def _map_graph(layers: list[Layer], weights: Mapping[str, Mapping[str, np.ndarray]], *,
               source: str, name: str, scale: int, overrides: dict[str, Any], what: str,
               crops: tuple[int, ...], notes: list[str]) -> _common.Imported:
  """Maps a graph onto ``get_model(name, scale, **overrides)`` (see the module docstring)."""
  module = models.get_model(name, scale=scale, **overrides)
  slots = _layer_conv_slots(module)
  weighted = [l for l in layers if l.type in _WEIGHTED]
  for layer in layers:
    if layer.type not in _WEIGHTED and layer.type not in _OTHER:
      raise InputError(f"{source}: {_describe(layer)} has no place in {what}")
  if len(weighted) != len(slots):
    extra = weighted[len(slots)] if len(weighted) > len(slots) else None
    where = f"; first extra layer {extra.name!r}" if extra is not None else ""
    raise InputError(f"{source}: {len(weighted)} weighted layers, {what} has {len(slots)}{where}")
  got_crops = []
  for layer in layers:
    if layer.type == 'Crop':
      off = _crop_offset(layer)
      got_crops.append(off)
      if off is None or len(got_crops) > len(crops) or off != crops[len(got_crops) - 1]:
        raise InputError(f"{source}: {_describe(layer)} crops {layer.params}, {what} crops "
                         f"{crops} pixels in turn")
    if layer.type == 'Pooling' and (int(layer.params.get(0, 0)) != 1 or
                                    int(layer.params.get(4, 0)) != 1):
      raise InputError(f"{source}: {_describe(layer)} is not a global average pooling")
    if layer.type == 'PixelShuffle' and (int(layer.params.get(0, 0)) != 2 or
                                         int(layer.params.get(1, 0)) != 0):
      raise InputError(f"{source}: {_describe(layer)} is not PyTorch's x2 PixelShuffle")
  if len(got_crops) != len(crops):
    raise InputError(f"{source}: {len(got_crops)} Crop layers, {what} has {len(crops)}")
  flat: dict[str, np.ndarray] = {}
  for layer, (path, mod) in zip(weighted, slots):
    _check_slot(layer, path, mod, source, what)
    w = weights.get(layer.name, {})
    if 'weight' not in w or 'bias' not in w:
      raise InputError(f"{source}: {_describe(layer)} has no weights in the .bin")
    kernel = np.asarray(w['weight'], np.float32)
    bias = np.asarray(w['bias'], np.float32)
    if layer.type == 'InnerProduct':
      kernel = kernel.T[None, None]
    else:  # Convolution [out, in, kh, kw]; Deconvolution: ncnn's output-first layout, unflipped
      kernel = kernel.transpose(2, 3, 1, 0)
    if path.endswith('conv_final'):
      perm = common.pixel_shuffle_permutation(kernel.shape[-1] // 4, 2)
      kernel, bias = kernel[..., perm], bias[perm]
    flat[f'{path}/kernel'] = kernel
    flat[f'{path}/bias'] = bias
  expected = _common.expected_shapes(module, 3)
  for key, shape in expected.items():
    if key not in flat or flat[key].shape != shape:
      got = flat[key].shape if key in flat else None
      raise InputError(f"{source}: {what}'s {key} needs shape {shape}, the graph gives {got}")
    if not np.all(np.isfinite(flat[key])):
      raise InputError(f"{source}: the weights of {key} hold non-finite values")
  return _common.Imported(name=name, scale=scale, overrides=overrides,
                          variables={'params': _common.unflatten(flat)}, source=source,
                          format='ncnn', notes=notes)


def _cascade_scale(layers: list[Layer]) -> int | None:
  """The scale of a cascaded-U-Net graph (1, 2, 3, 4), or None when it is not one."""
  weighted = [l for l in layers if l.type in _WEIGHTED]
  types = [l.type for l in layers]
  if len(weighted) not in (30, 31) or types.count('Pooling') != 4 or types.count('Crop') < 4:
    return None
  head = weighted[9]  # UNet1's conv_bottom
  k, s = int(head.params.get(1, 0)), int(head.params.get(3, 1))
  if len(weighted) == 31:
    return 4 if (head.type, k, s) == ('Deconvolution', 4, 2) and 'PixelShuffle' in types else None
  return {('Convolution', 3, 1): 1, ('Deconvolution', 4, 2): 2,
          ('Deconvolution', 5, 3): 3}.get((head.type, k, s))


def _is_waifu2x(layers: list[Layer], source: str) -> bool:
  if _token(source, 'waifu2x'):
    return True
  if _token(source, 'realcugan') or _token(source, 'cugan'):
    return False
  return any(l.type in ('Eltwise', 'Scale') for l in layers)


def match_realcugan(layers: list[Layer], weights: Mapping[str, Mapping[str, np.ndarray]], *,
                    source: str) -> _common.Imported | None:
  """Real-CUGAN graphs (se / pro, x2 / x3 / x4, denoise and conservative); None otherwise."""
  scale = _cascade_scale(layers)
  if scale is None or scale == 1 or _is_waifu2x(layers, source):
    return None
  overrides: dict[str, Any] = {}
  notes = [f"ncnn Real-CUGAN x{scale} graph: input RGB [0, 1] reflect-extended by "
           f"{realcugan_model.CASCADE_GEOMETRY[scale][0]} px per side (done by the model)"]
  if _token(source, 'pro'):
    notes.append("pro release: its 0.7 x + 0.15 transform is folded into the graph's weights "
                 "(imported with pro=False)")
  crops = CASCADE_CROPS + ((1,) if scale == 4 else ())
  return _map_graph(layers, weights, source=source, name='realcugan', scale=scale,
                    overrides=overrides, what=f'Real-CUGAN x{scale}', crops=crops, notes=notes)


def match_waifu2x(layers: list[Layer], weights: Mapping[str, Mapping[str, np.ndarray]], *,
                  source: str) -> _common.Imported | None:
  """waifu2x graphs: cunet (x1 denoise, x2) and upconv_7 (anime / photo); None otherwise."""
  weighted = [l for l in layers if l.type in _WEIGHTED]
  sig = [(l.type, int(l.params.get(0, 0)), int(l.params.get(1, 0))) for l in weighted]
  upconv7 = [('Convolution', f, 3) for f in waifu2x_model.UPCONV7_FEATURES]
  if sig[:6] == upconv7 and len(sig) == 7 and sig[6][0] == 'Deconvolution':
    notes = [f"ncnn waifu2x upconv_7 graph: input RGB [0, 1] edge-extended by "
             f"{waifu2x_model.UPCONV7_PAD} px per side (done by the model)"]
    return _map_graph(layers, weights, source=source, name='waifu2x_upconv7', scale=2,
                      overrides={}, what='waifu2x upconv_7', crops=(), notes=notes)
  scale = _cascade_scale(layers)
  if scale not in (1, 2) or not _is_waifu2x(layers, source):
    return None
  pad = realcugan_model.CASCADE_GEOMETRY[scale][0]
  notes = [f"ncnn waifu2x cunet x{scale} graph: input RGB [0, 1] edge-extended by {pad} px per "
           f"side (done by the model)"]
  return _map_graph(layers, weights, source=source, name='waifu2x_cunet', scale=scale,
                    overrides={}, what=f'waifu2x cunet x{scale}', crops=CASCADE_CROPS,
                    notes=notes)


# ----------------------------------------------------------------------------
# Real-CUGAN's PyTorch state dicts.


def _torch_key(path: str, leaf: str) -> str:
  """``unet1/conv1/conv_1`` + ``kernel`` -> ``unet1.conv1.conv.2.weight``."""
  parts = []
  for part in path.split('/'):
    m = re.fullmatch(r'conv_(\d)', part)
    if m:
      parts += ['conv', str(2 * int(m.group(1)))]
    else:
      parts.append('seblock' if part == 'se' else part)
  return '.'.join(parts) + ('.weight' if leaf == 'kernel' else '.bias')


def is_realcugan_state_dict(keys) -> bool:
  """True for the keys of a Real-CUGAN state dict (``unet1.*``, ``unet2.*``)."""
  return ('unet1.conv1.conv.0.weight' in keys and 'unet2.conv_bottom.weight' in keys
          and 'unet1.conv_bottom.weight' in keys)


# Key patterns of the layout (before .weight / .bias), for jaxsr.convert.pytorch's messages.
REALCUGAN_PATTERNS = (r'unet[12]\.conv\d\.conv\.[02]', r'unet[12]\.conv\d\.seblock\.conv[12]',
                      r'unet[12]\.conv\d_(down|up)', r'unet1\.conv3', r'unet2\.conv5',
                      r'unet[12]\.conv_bottom', r'conv_final')


def realcugan_rules(state: Mapping[str, Any], path: Any, model: str | None = None
                    ) -> tuple[str, int, dict[str, Any], dict[str, _common.Rule]]:
  """Real-CUGAN's PyTorch layout: ``(name, scale, inferred config, rules)``.

  The build function of :mod:`jaxsr.convert.pytorch`'s recognition table (``Layout.build``).
  The scale follows from the layers (``conv_final``: x4; a 5x5 UNet1 head: x3; else x2); a
  ``pro`` entry (a buffer; the caller ignores the key) marks the pro releases.
  """
  del model
  if not is_realcugan_state_dict(state):
    raise InputError(f"{path}: not a Real-CUGAN state dict (no unet1.conv1.conv.0.weight)")
  channels = int(np.shape(state['unet1.conv1.conv.0.weight'])[1])
  if channels != 3:
    raise InputError(f"{path}: unet1 takes {channels} channels; jaxsr imports Real-CUGAN's RGB "
                     f"models (not the 2x 'fast' model)")
  head = np.shape(state['unet1.conv_bottom.weight'])
  if 'conv_final.weight' in state:
    scale = 4
  else:
    scale = 3 if len(head) == 4 and head[-1] == 5 else 2
  inferred = {'channels': 3, 'pro': 'pro' in state}
  module = models.get_model('realcugan', scale=scale, pro=inferred['pro'])
  transposed = {p for p, m in _layer_conv_slots(module) if isinstance(m, common.ConvTranspose)}
  rules: dict[str, _common.Rule] = {}
  for target in _common.expected_shapes(module, 3):
    where, leaf = target.rsplit('/', 1)
    rules[_torch_key(where, leaf)] = _rule(target, leaf, transposed=where in transposed,
                                           shuffle=where.endswith('conv_final'))
  return 'realcugan', scale, inferred, rules


def import_realcugan_state_dict(state: Mapping[str, Any], *, source: str) -> _common.Imported:
  """Real-CUGAN's PyTorch release (``UpCunet2x/3x/4x`` state dict) -> ``realcugan``.

  Raises InputError naming the first key that does not fit. ``jaxsr.convert.pytorch``
  recognises the same layout (``import_torch``) through :func:`realcugan_rules`.
  """
  state = {k: np.asarray(v) for k, v in state.items()}
  name, scale, inferred, rules = realcugan_rules(state, source)
  state.pop('pro', None)
  overrides = {'pro': True} if inferred['pro'] else {}
  module = models.get_model(name, scale=scale, **overrides)
  expected = _common.expected_shapes(module, 3)
  params = _common.build_params(source, state, rules, expected,
                                _common.describe(name, scale, overrides))
  notes = ['Real-CUGAN PyTorch state dict'] + (['pro model (pro entry)'] if overrides else [])
  return _common.Imported(name=name, scale=scale, overrides=overrides,
                          variables={'params': params}, source=source, format='realcugan-pth',
                          notes=notes)


def _rule(target: str, leaf: str, *, transposed: bool, shuffle: bool) -> _common.Rule:
  perm: Callable[[int], np.ndarray] = lambda n: (common.pixel_shuffle_permutation(n // 4, 2)
                                                 if shuffle else np.arange(n))
  if leaf == 'bias':
    return _common.Rule(target, lambda a: a[perm(a.shape[0])], lambda s: s)
  if transposed:  # ConvTranspose2d [in, out, kh, kw] -> [kh, kw, in, out]
    return _common.Rule(target, lambda a: a.transpose(2, 3, 0, 1),
                        lambda s: (s[2], s[3], s[0], s[1]))
  return _common.Rule(target, lambda a: a.transpose(2, 3, 1, 0)[..., perm(a.shape[0])],
                      lambda s: (s[3], s[2], s[0], s[1]))
