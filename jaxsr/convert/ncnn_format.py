"""Reader for ncnn models: the ``.param`` text graph and the ``.bin`` weights beside it.

This module only parses; mapping a graph onto a jaxsr model is the job of the family matchers
(:mod:`jaxsr.convert.ncnn`). Every malformed or unsupported input raises ``InputError`` with one
line naming the file and the line/layer at fault.

The ``.param`` text format (as ncnn's ``Net::load_param`` / ``ParamDict::load_param`` read it):

* line 1: the magic number ``7767517``;
* line 2: ``<layer count> <blob count>``;
* then one line per layer: ``<type> <name> <bottom count> <top count> <bottom names...>
  <top names...> <id=value ...>``, all separated by whitespace. Blobs are named edges: a
  layer's tops are the blobs it produces, its bottoms the blobs it consumes (``Split`` copies
  one blob to several names; ``Input`` has no bottoms).
* ``id=value``: a non-negative integer id and one value. A value is a float when its text
  contains ``.``, ``e`` or ``E`` and an int otherwise (``1=3`` is the int 3, ``1=3.0`` the
  float 3.0). ncnn reads at most 15 characters of a value.
* arrays: ``-233xx=n,v1,...,vn``. An id ``<= -23300`` marks an array whose real id is
  ``-id - 23300`` (``-23310=1,2.000000e-01`` is param 10 = ``[0.2]``); ``n`` counts the
  elements, each typed like a scalar value. Following ncnn, :attr:`Layer.params` stores the
  array under its real (positive) id, as a Python list.

Lines that are empty are skipped; there are no comments. The binary ``.param.bin`` form is not
read.

The ``.bin`` format: a plain concatenation, in layer order, of the arrays each layer's
``load_model`` reads; layers without weights read nothing. An array is read in one of two ways:

* *tagged* (``ModelBin::load(n, 0)``, convolution / inner-product weights): a 4-byte
  little-endian storage flag, then the data. Flag ``0``: ``n`` float32 values. Flag
  ``0x01306B47`` (bytes ``47 6B 30 01``): ``n`` float16 values, padded with zero bytes to a
  multiple of 4 bytes. Any other flag (ncnn's int8 ``0x000D4B38``, scaled raw data
  ``0x0002C056``, or an 8-bit quantisation table) is refused.
* *raw* (``ModelBin::load(n, 1)``: biases, PReLU slopes, Scale/BatchNorm data): ``n`` float32
  values without a flag.

Weights per layer type (``params`` ids in parentheses) as :func:`read_weights` returns them,
all float32:

* ``Convolution`` / ``ConvolutionDepthWise`` / ``Deconvolution`` / ``DeconvolutionDepthWise``:
  ``'weight'`` tagged, ``weight_data_size`` (6) values, shaped ``[out, in/group, kh, kw]``
  (out = num_output (0), kw = kernel_w (1), kh = kernel_h (11, default kw), group (7, default
  1; only the depth-wise types have it)). For the convolutions this is PyTorch's
  ``Conv2d.weight`` layout; for the deconvolutions it is ncnn's own: output channel first,
  i.e. PyTorch's ``ConvTranspose2d.weight`` ``[in, out/group, kh, kw]`` with the two channel
  axes swapped per group, applied as a scatter without flipping the kernel. ``'bias'`` raw,
  ``[out]``, when bias_term (5) is set. int8 layers (8 ``int8_scale_term``) are refused.
* ``InnerProduct``: ``'weight'`` tagged, ``[out, in]`` (out = num_output (0), weight_data_size
  (2)); ``'bias'`` raw ``[out]`` when bias_term (1).
* ``PReLU``: ``'slope'`` raw, ``[num_slope (0)]`` (one value: shared by all channels).
* ``Scale``: nothing when scale_data_size (0) is ``-233`` (the scale comes from a second
  bottom); else ``'scale'`` raw ``[n]`` and ``'bias'`` raw ``[n]`` when bias_term (1).
* ``BatchNorm``: ``'slope'``, ``'mean'``, ``'var'``, ``'bias'``, raw, ``[channels (0)]``
  (eps is param 1).
* ``Bias``: ``'bias'`` raw ``[bias_data_size (0)]``.
* ``Padding``: ``'pad_value'`` raw ``[per_channel_pad_data_size (6)]`` when that is > 0.
* the weight-free types in :data:`WEIGHT_FREE` read nothing. Any other type is refused (its
  weight layout is unknown, so the rest of the file could not be located).

Bytes left over after the last layer are refused too: the ``.bin`` then belongs to another
graph.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np

from jaxsr.errors import InputError

MAGIC = 7767517
FLAG_FP32 = 0
FLAG_FP16 = 0x01306B47

# Layer types whose load_model reads nothing from the .bin.
WEIGHT_FREE = frozenset({
    'AbsVal', 'ArgMax', 'BinaryOp', 'BNLL', 'Cast', 'CELU', 'Clip', 'Concat', 'Crop',
    'DeepCopy', 'Dequantize', 'Dropout', 'ELU', 'Eltwise', 'Erf', 'Exp', 'ExpandDims',
    'Flatten', 'Fold', 'GELU', 'GLU', 'HardSigmoid', 'HardSwish', 'Input', 'Interp', 'Log',
    'LRN', 'Mish', 'MVN', 'Noop', 'Normalize', 'Packing', 'Permute', 'PixelShuffle', 'Pooling',
    'Pooling1D', 'Pooling3D', 'Power', 'Reduction', 'ReLU', 'Reorg', 'Reshape', 'SELU',
    'ShuffleChannel', 'Sigmoid', 'Slice', 'Softmax', 'Softplus', 'Split', 'Squeeze', 'Swish',
    'TanH', 'Threshold', 'Tile', 'UnaryOp', 'Unfold',
})
_CONVOLUTIONS = frozenset({'Convolution', 'ConvolutionDepthWise', 'Deconvolution',
                           'DeconvolutionDepthWise'})


@dataclasses.dataclass(frozen=True)
class Layer:
  """One layer line of a ``.param`` file.

  Attributes:
    type: the ncnn layer type (``'Convolution'``, ``'PReLU'``, ...).
    name: the layer's unique name.
    bottoms: names of the blobs it consumes.
    tops: names of the blobs it produces.
    params: ``{id: int | float | list}``; arrays under their real (positive) id.
  """
  type: str
  name: str
  bottoms: tuple[str, ...]
  tops: tuple[str, ...]
  params: dict[int, Any]

  def get(self, pid: int, default: Any = None) -> Any:
    """``params[pid]``, or ``default`` when absent (ncnn's own defaults are per layer type)."""
    return self.params.get(pid, default)


def _parse_number(text: str) -> int | float:
  """One value as ncnn reads it: float if it contains '.', 'e' or 'E', else int."""
  text = text[:15]
  if '.' in text or 'e' in text.lower():
    return _ncnn_float(text)
  return int(text)


def _ncnn_float(text: str) -> float:
  """Decimal text -> float32 value, computed in double the way ncnn's ``vstr_to_float`` does."""
  i = 0
  negative = text[:1] == '-'
  if text[:1] in '+-' and text:
    i = 1
  start = i
  while i < len(text) and text[i].isdigit():
    i += 1
  value = float(int(text[start:i])) if i > start else 0.0
  if i < len(text) and text[i] == '.':
    i += 1
    start = i
    while i < len(text) and text[i].isdigit():
      i += 1
    if i > start:
      value += int(text[start:i]) / float(10 ** (i - start))
  if i < len(text) and text[i] in 'eE':
    i += 1
    negative_exp = text[i:i + 1] == '-'
    if text[i:i + 1] in ('+', '-'):
      i += 1
    start = i
    while i < len(text) and text[i].isdigit():
      i += 1
    expon = int(text[start:i]) if i > start else 0
    scale = 1.0
    while expon >= 8:
      scale *= 1e8
      expon -= 8
    while expon > 0:
      scale *= 10.0
      expon -= 1
    value = value / scale if negative_exp else value * scale
  if i != len(text):
    raise ValueError(text)
  return float(np.float32(-value if negative else value))


def _parse_params(tokens: list[str], where: str) -> dict[int, Any]:
  params: dict[int, Any] = {}
  for token in tokens:
    key, eq, value = token.partition('=')
    try:
      pid = int(key)
    except ValueError:
      pid = None
    if not eq or pid is None:
      raise InputError(f"{where}: expected id=value, got {token!r}")
    try:
      if pid <= -23300:
        pid = -pid - 23300
        count_text, *items = value.split(',')
        count = int(count_text)
        if count != len(items):
          raise InputError(f"{where}: array {token!r} announces {count} elements but has "
                           f"{len(items)}")
        params[pid] = [_parse_number(v) for v in items]
      elif pid < 0:
        raise InputError(f"{where}: negative param id in {token!r}")
      else:
        params[pid] = _parse_number(value)
    except ValueError:
      raise InputError(f"{where}: cannot read the value of {token!r}") from None
  return params


def read_param(path: str | os.PathLike) -> list[Layer]:
  """Parses a ``.param`` text file (format in the module docstring) into its layers, in order.

  Raises:
    InputError: unreadable file, wrong magic, counts that disagree with the lines, a malformed
      line (naming its line number), a blob consumed before any layer produced it, or a
      duplicate layer name / produced blob.
  """
  path = pathlib.Path(path)
  try:
    text = path.read_text(encoding='utf-8')
  except (OSError, UnicodeDecodeError) as e:
    raise InputError(f"{path}: cannot read the ncnn .param file ({e.__class__.__name__}: "
                     f"{e})") from None
  lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
  if not lines or lines[0][1] != [str(MAGIC)]:
    first = ' '.join(lines[0][1])[:40] if lines else ''
    raise InputError(f"{path}: not an ncnn .param text file (first line {first!r}, expected "
                     f"the magic {MAGIC})")
  if len(lines) < 2 or len(lines[1][1]) != 2 or not all(t.isdigit() for t in lines[1][1]):
    raise InputError(f"{path}: line 2 must hold '<layer count> <blob count>'")
  layer_count, blob_count = (int(t) for t in lines[1][1])
  body = lines[2:]
  if len(body) != layer_count:
    raise InputError(f"{path}: the header announces {layer_count} layers but the file has "
                     f"{len(body)} layer lines")
  layers: list[Layer] = []
  produced: set[str] = set()
  names: set[str] = set()
  for lineno, tokens in body:
    where = f"{path}:{lineno}"
    if len(tokens) < 4 or not tokens[2].isdigit() or not tokens[3].isdigit():
      raise InputError(f"{where}: expected '<type> <name> <bottoms> <tops> ...', got "
                       f"{' '.join(tokens)[:60]!r}")
    ltype, name = tokens[0], tokens[1]
    nb, nt = int(tokens[2]), int(tokens[3])
    if len(tokens) < 4 + nb + nt:
      raise InputError(f"{where}: layer {name!r} lists fewer than {nb} bottoms and {nt} tops")
    bottoms = tuple(tokens[4:4 + nb])
    tops = tuple(tokens[4 + nb:4 + nb + nt])
    params = _parse_params(tokens[4 + nb + nt:], f"{where}: layer {name!r}")
    if name in names:
      raise InputError(f"{where}: duplicate layer name {name!r}")
    for b in bottoms:
      if b not in produced:
        raise InputError(f"{where}: layer {name!r} reads blob {b!r}, which no earlier layer "
                         f"produces")
    for t in tops:
      if t in produced:
        raise InputError(f"{where}: layer {name!r} produces blob {t!r} a second time")
      produced.add(t)
    names.add(name)
    layers.append(Layer(ltype, name, bottoms, tops, params))
  if len(produced) > blob_count:
    raise InputError(f"{path}: the header announces {blob_count} blobs but the layers "
                     f"produce {len(produced)}")
  return layers


class _Reader:
  """Sequential little-endian reader over the .bin bytes with one-line errors."""

  def __init__(self, path: pathlib.Path, data: bytes):
    self.path = path
    self.data = data
    self.pos = 0

  def _take(self, nbytes: int, what: str) -> bytes:
    if self.pos + nbytes > len(self.data):
      raise InputError(f"{self.path}: truncated: {what} needs {nbytes} bytes at offset "
                       f"{self.pos}, but the file has {len(self.data) - self.pos} left")
    chunk = self.data[self.pos:self.pos + nbytes]
    self.pos += nbytes
    return chunk

  def raw(self, n: int, what: str) -> np.ndarray:
    return np.frombuffer(self._take(4 * n, what), '<f4').astype(np.float32)

  def tagged(self, n: int, what: str) -> np.ndarray:
    flag = int(np.frombuffer(self._take(4, what + ' storage flag'), '<u4')[0])
    if flag == FLAG_FP32:
      return self.raw(n, what)
    if flag == FLAG_FP16:
      nbytes = (2 * n + 3) // 4 * 4
      return np.frombuffer(self._take(nbytes, what), '<f2')[:n].astype(np.float32)
    raise InputError(f"{self.path}: {what}: storage flag 0x{flag:08X} at offset "
                     f"{self.pos - 4} is neither fp32 (0) nor fp16 (0x{FLAG_FP16:08X}); "
                     f"int8/quantised ncnn weights are not supported")


def _int_param(layer: Layer, pid: int, default: int, where: str) -> int:
  value = layer.get(pid, default)
  if not isinstance(value, int):
    raise InputError(f"{where}: param {pid} must be an integer, got {value!r}")
  return value


def _layer_weights(layer: Layer, reader: _Reader, where: str) -> dict[str, np.ndarray]:
  ip = lambda pid, default: _int_param(layer, pid, default, where)  # noqa: E731
  t = layer.type
  if t in WEIGHT_FREE:
    return {}
  if t in _CONVOLUTIONS:
    if ip(8, 0):
      raise InputError(f"{where}: int8 {t} layers are not supported")
    if t == 'Convolution' and ip(19, 0):
      return {}  # dynamic weight: taken from a second bottom, nothing stored
    out, kw = ip(0, 0), ip(1, 0)
    kh, size = ip(11, kw), ip(6, 0)
    group = ip(7, 1) if t.endswith('DepthWise') else 1
    if min(out, kw, kh, size, group) <= 0 or size % (out * kh * kw) or out % group:
      raise InputError(f"{where}: inconsistent {t} params: num_output={out}, kernel={kh}x{kw}, "
                       f"group={group}, weight_data_size={size}")
    w = reader.tagged(size, f"layer {layer.name!r} weight").reshape(out, -1, kh, kw)
    found = {'weight': w}
    if ip(5, 0):
      found['bias'] = reader.raw(out, f"layer {layer.name!r} bias")
    return found
  if t == 'InnerProduct':
    if ip(8, 0):
      raise InputError(f"{where}: int8 InnerProduct layers are not supported")
    out, size = ip(0, 0), ip(2, 0)
    if out <= 0 or size <= 0 or size % out:
      raise InputError(f"{where}: inconsistent InnerProduct params: num_output={out}, "
                       f"weight_data_size={size}")
    found = {'weight': reader.tagged(size, f"layer {layer.name!r} weight").reshape(out, -1)}
    if ip(1, 0):
      found['bias'] = reader.raw(out, f"layer {layer.name!r} bias")
    return found
  if t == 'PReLU':
    return {'slope': reader.raw(ip(0, 0), f"layer {layer.name!r} slope")}
  if t == 'Scale':
    n = ip(0, 0)
    if n == -233:
      return {}
    found = {'scale': reader.raw(n, f"layer {layer.name!r} scale")}
    if ip(1, 0):
      found['bias'] = reader.raw(n, f"layer {layer.name!r} bias")
    return found
  if t == 'BatchNorm':
    n = ip(0, 0)
    return {k: reader.raw(n, f"layer {layer.name!r} {k}") for k in ('slope', 'mean', 'var',
                                                                       'bias')}
  if t == 'Bias':
    return {'bias': reader.raw(ip(0, 0), f"layer {layer.name!r} bias")}
  if t == 'Padding':
    n = ip(6, 0)
    return {'pad_value': reader.raw(n, f"layer {layer.name!r} pad_value")} if n > 0 else {}
  raise InputError(f"{where}: unsupported ncnn layer type {t!r} (layer {layer.name!r}): its "
                   f"weights cannot be located in the .bin")


def read_weights(bin_path: str | os.PathLike,
                 layers: list[Layer]) -> dict[str, dict[str, np.ndarray]]:
  """Reads a ``.bin`` file for the graph ``layers`` (from :func:`read_param`).

  Returns:
    ``{layer name: {'weight' | 'bias' | 'slope' | ...: float32 array}}`` for every layer that
    stores weights (shapes and names in the module docstring); weight-free layers are absent.

  Raises:
    InputError: unreadable or truncated file, an unsupported storage flag, a layer type whose
      weights this reader cannot locate, inconsistent sizes, or bytes left over at the end.
  """
  path = pathlib.Path(bin_path)
  try:
    data = path.read_bytes()
  except OSError as e:
    raise InputError(f"{path}: cannot read the ncnn .bin file ({e.__class__.__name__}: "
                     f"{e})") from None
  reader = _Reader(path, data)
  out: dict[str, dict[str, np.ndarray]] = {}
  for layer in layers:
    found = _layer_weights(layer, reader, f"{path}: layer {layer.name!r} ({layer.type})")
    for key, value in found.items():
      if not np.all(np.isfinite(value)):
        raise InputError(f"{path}: layer {layer.name!r} {key} holds non-finite values")
    if found:
      out[layer.name] = found
  if reader.pos != len(data):
    raise InputError(f"{path}: {len(data) - reader.pos} bytes left over after the last layer; "
                     f"the .bin does not belong to this .param")
  return out
