"""OpenCV ``dnn_superres`` frozen TensorFlow graphs (FSRCNN, FSRCNN-small, ESPCN) -> jaxsr.

The ``.pb`` files are TF1 ``GraphDef``s with the weights in ``Const`` nodes. The graph is parsed
with TensorFlow's protobuf classes (``tf.compat.v1.GraphDef.ParseFromString``; no graph is
imported or run) and walked from the input placeholder: each ``Conv2D`` (NHWC, stride 1, 'SAME'
zero padding) with its bias ``Add``/``BiasAdd``, the activation after it (``Relu``, or a PReLU
written as ``relu(x) + y * alpha * (x - |x|)``, whose slope is ``2 * y * alpha``), then
``DepthToSpace`` and what follows it:

* FSRCNN (56,12,4) / FSRCNN-small (32,5,1): per-channel PReLU; the last 1x1 conv to ``s*s``
  channels has no bias; ``depth_to_space(s)`` then ``BiasAdd`` of one scalar. This is
  ``FSRCNN(head='subpixel', subpixel_kernel=1)``.
* ESPCN: 5x5->64 ReLU, 3x3->32 ReLU, 3x3->s*s (+bias), ``depth_to_space``, ``tanh``. This is
  ``ESPCN(activation='relu', output_activation='tanh')``.

Input: OpenCV feeds these graphs its own luma, ``cv::COLOR_BGR2YCrCb`` on uint8 -- full-range
``Y = 0.299 R + 0.587 G + 0.114 B`` -- divided by 255. That is *not* the MATLAB ``rgb2ycbcr`` Y
(16..235) of jaxsr's ``y`` protocol; the imported checkpoint records ``luma='opencv'`` and
``jaxsr upscale`` converts accordingly, but ``eval.py --protocol y`` feeds the MATLAB Y (the
published protocol), which these models were not trained on.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any

import numpy as np

from jaxsr import color
from jaxsr import models
from jaxsr.convert import _common
from jaxsr.errors import InputError


def read_graph(path: str | os.PathLike):
  """Parses a frozen ``GraphDef`` (protobuf only: nothing is imported into a TF graph or run)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: no such weights file")
  graph = tf.compat.v1.GraphDef()
  try:
    graph.ParseFromString(path.read_bytes())
  except Exception as e:  # pylint: disable=broad-except  (protobuf DecodeError)
    raise InputError(f"{path}: truncated or corrupt TensorFlow GraphDef, or not one "
                     f"({type(e).__name__}: {str(e)[:80]})") from None
  if not graph.node:
    raise InputError(f"{path}: empty TensorFlow graph")
  return graph


class _Graph:
  """Name -> node and consumer lookups over a GraphDef."""

  def __init__(self, graph, path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    self.path = path
    self.nodes = {n.name: n for n in graph.node}
    self.consumers: dict[str, list[Any]] = {}
    for n in graph.node:
      for inp in n.input:
        self.consumers.setdefault(inp.split(":")[0].lstrip("^"), []).append(n)
    self._make_ndarray = tf.make_ndarray

  def const(self, name: str) -> np.ndarray | None:
    node = self.nodes.get(name.split(":")[0])
    if node is None or node.op != "Const":
      return None
    tensor = node.attr["value"].tensor
    dims = [d.size for d in tensor.tensor_shape.dim]
    # A constant may be stored as one value repeated to its shape: refuse a declared shape the
    # file's bytes could not hold before TensorFlow allocates it.
    limit = max(pathlib.Path(self.path).stat().st_size, 1 << 20)
    if any(d < 0 for d in dims) or math.prod(dims) > limit:
      raise InputError(f"{self.path}: constant {node.name!r} declares shape {dims}, more than "
                       f"the file's {limit} bytes can hold (corrupt or crafted file)")
    try:
      return np.asarray(self._make_ndarray(tensor))
    except (TypeError, ValueError) as e:  # a damaged dtype or tensor content
      raise InputError(f"{self.path}: corrupt constant {node.name!r} ({type(e).__name__}: "
                       f"{str(e)[:80]})") from None

  def only_consumer(self, node, ops=None):
    users = self.consumers.get(node.name, [])
    if len(users) != 1 or (ops and users[0].op not in ops):
      return None
    return users[0]

  def fail(self, node, what: str):
    raise InputError(f"{self.path}: unsupported graph at node {node.name!r} ({node.op}): {what}")


def _walk(g: _Graph) -> dict[str, Any]:
  """Follows the chain from the placeholder; returns the layers, the block size and the tail."""
  inputs = [n for n in g.nodes.values() if n.op == "Placeholder"]
  if len(inputs) != 1:
    raise InputError(f"{g.path}: expected one input placeholder, found {len(inputs)}")
  cur = inputs[0]
  layers: list[dict[str, Any]] = []
  while True:
    conv = g.only_consumer(cur, ("Conv2D",))
    if conv is None:
      break
    kernel = g.const(conv.input[1])
    if kernel is None or kernel.ndim != 4:
      g.fail(conv, "kernel is not a 4-D Const")
    if conv.attr["padding"].s != b"SAME" or list(conv.attr["strides"].list.i) not in ([], [1, 1, 1, 1]) \
        or conv.attr["data_format"].s not in (b"", b"NHWC") \
        or any(d != 1 for d in conv.attr["dilations"].list.i):
      g.fail(conv, "only NHWC, stride 1, dilation 1, SAME convolutions are supported")
    layer = {"kernel": kernel, "kernel_key": conv.input[1], "bias": None, "act": None}
    cur = conv
    nxt = g.only_consumer(cur)
    if nxt is not None and nxt.op in ("Add", "AddV2", "BiasAdd"):
      other = [i for i in nxt.input if i.split(":")[0] != cur.name]
      bias = g.const(other[0]) if len(other) == 1 else None
      if bias is not None and bias.ndim == 1:
        layer["bias"], layer["bias_key"] = bias, other[0]
        cur = nxt
    users = g.consumers.get(cur.name, [])
    ops = sorted(u.op for u in users)
    if ops == ["Relu"]:
      layer["act"] = "relu"
      cur = users[0]
    elif ops == ["Abs", "Relu", "Sub"]:
      cur, layer["alpha"], layer["alpha_key"] = _prelu(g, cur, users)
      layer["act"] = "prelu"
    layers.append(layer)
  if not layers:
    g.fail(cur, "no Conv2D after the input")
  d2s = g.only_consumer(cur, ("DepthToSpace",))
  if d2s is None:
    g.fail(cur, "expected DepthToSpace after the last convolution")
  if d2s.attr["data_format"].s not in (b"", b"NHWC"):
    g.fail(d2s, "only NHWC DepthToSpace is supported")
  block = int(d2s.attr["block_size"].i)
  tail = g.only_consumer(d2s)
  result = {"layers": layers, "block": block, "tail": None, "tail_bias": None}
  if tail is not None and tail.op == "Tanh":
    result["tail"] = "tanh"
  elif tail is not None and tail.op in ("BiasAdd", "Add", "AddV2"):
    other = [i for i in tail.input if i.split(":")[0] != d2s.name]
    bias = g.const(other[0]) if len(other) == 1 else None
    if bias is None:
      g.fail(tail, "bias after DepthToSpace is not a Const")
    result["tail"], result["tail_bias"], result["tail_bias_key"] = "bias", bias, other[0]
  elif tail is not None and tail.op not in ("Transpose", "Identity"):
    g.fail(tail, "unsupported operation after DepthToSpace")
  return result


def _prelu(g: _Graph, x, users):
  """Matches ``relu(x) + y * (alpha * (x - |x|))`` (either product order); returns its output."""
  relu = next(u for u in users if u.op == "Relu")
  sub = next(u for u in users if u.op == "Sub")
  mul1 = g.only_consumer(sub, ("Mul",))
  if mul1 is None:
    g.fail(sub, "PReLU pattern: expected Mul")
  alpha = next((g.const(i) for i in mul1.input if g.const(i) is not None), None)
  alpha_key = next((i for i in mul1.input if g.const(i) is not None), None)
  mul2 = g.only_consumer(mul1, ("Mul",))
  y = next((g.const(i) for i in mul2.input if g.const(i) is not None), None) if mul2 else None
  if alpha is None or y is None or np.size(y) != 1:
    g.fail(mul1, "PReLU pattern: expected alpha and a scalar factor")
  add = g.only_consumer(mul2, ("Add", "AddV2"))
  if add is None or relu.name not in [i.split(":")[0] for i in add.input]:
    g.fail(mul2, "PReLU pattern: expected relu(x) + ...")
  return add, np.asarray(alpha, np.float64) * 2.0 * float(np.asarray(y)), alpha_key


def _conv_rule(target: str) -> _common.Rule:
  return _common.identity_rule(target)


def import_opencv_pb(path: str | os.PathLike, *, scale: int | None = None,
                     model: str | None = None, **overrides: Any) -> _common.Imported:
  """Imports an OpenCV dnn_superres FSRCNN / FSRCNN-small / ESPCN frozen graph.

  Args:
    path: the ``.pb`` file.
    scale: must equal the graph's ``DepthToSpace`` block size when given.
    model: ``'fsrcnn'``, ``'fsrcnn_s'`` or ``'espcn'`` (default: recognised from the graph).
    **overrides: further model fields.

  Raises:
    InputError: unreadable file, a graph of another shape, or weights that do not fit.
  """
  path = pathlib.Path(path)
  g = _Graph(read_graph(path), path)
  walked = _walk(g)
  layers, block = walked["layers"], walked["block"]
  scale = _common.resolve_scale(path, requested=scale, structural=block, what="OpenCV")
  prelu = [l["act"] == "prelu" for l in layers]
  family = "fsrcnn" if walked["tail"] == "bias" and all(prelu[:-1]) else "espcn"
  if model is not None and models.model_spec(model).cls.__name__.lower() != family:
    raise InputError(f"{path}: this graph is {family.upper()}, not {model!r}")
  source: dict[str, np.ndarray] = {}
  rules: dict[str, _common.Rule] = {}
  order = []

  def add(key, value, rule):
    source[key] = value
    rules[key] = rule
    order.append(key)

  channels = int(layers[0]["kernel"].shape[2])
  if family == "fsrcnn":
    if len(layers) < 4 or layers[-1]["bias"] is not None or layers[-1]["act"] is not None:
      raise InputError(f"{path}: unexpected FSRCNN graph ({len(layers)} convolutions)")
    d, s, m = int(layers[0]["kernel"].shape[3]), int(layers[1]["kernel"].shape[3]), len(layers) - 4
    inferred = dict(d=d, s=s, m=m, channels=channels, head="subpixel", subpixel_kernel=1)
    if model is None:
      model = "fsrcnn_s" if (d, s, m) == (32, 5, 1) else "fsrcnn"
    names = ["extract", "shrink"] + [f"map_{i}" for i in range(m)] + ["expand"]
    for layer, name in zip(layers[:-1], names):
      add(layer["kernel_key"], layer["kernel"], _conv_rule(f"{name}/kernel"))
      if layer["bias"] is None:
        raise InputError(f"{path}: convolution {layer['kernel_key']!r} has no bias")
      add(layer["bias_key"], layer["bias"], _conv_rule(f"{name}/bias"))
      add(layer["alpha_key"], layer["alpha"], _conv_rule(f"{name}_prelu/alpha"))
    add(layers[-1]["kernel_key"], layers[-1]["kernel"], _conv_rule("head/kernel"))
    add(walked["tail_bias_key"], walked["tail_bias"], _conv_rule("head_bias"))
  else:
    if len(layers) != 3 or walked["tail"] != "tanh" or [l["act"] for l in layers] != \
        ["relu", "relu", None]:
      raise InputError(f"{path}: unexpected ESPCN graph (expected conv-relu, conv-relu, conv, "
                       f"depth_to_space, tanh)")
    inferred = dict(n1=int(layers[0]["kernel"].shape[3]), n2=int(layers[1]["kernel"].shape[3]),
                    channels=channels, activation="relu", output_activation="tanh")
    model = model or "espcn"
    for layer, name in zip(layers, ["conv1", "conv2", "conv3"]):
      add(layer["kernel_key"], layer["kernel"], _conv_rule(f"{name}/kernel"))
      add(layer["bias_key"], layer["bias"], _conv_rule(f"{name}/bias"))
  over = _common.registry_overrides(model, inferred, overrides)
  module = models.get_model(model, scale=scale, **over)
  expected = _common.expected_shapes(module, channels)
  params = _common.build_params(path, source, rules, expected,
                                _common.describe(model, scale, over), order=order)
  return _common.Imported(model, scale, over, {"params": params}, str(path), "opencv-pb",
                          luma=color.OPENCV,
                          notes=["input: OpenCV full-range Y (0.299R+0.587G+0.114B)/255, not "
                                 "the MATLAB Y of the y protocol"])
