"""Export a super-resolution model for deployment: StableHLO, TensorFlow SavedModel, TFLite, ONNX.

``export(net, path, format=...)`` writes one artifact that runs the model on images of any
batch size, height and width (symbolic dimensions, one artifact for every size):

* ``'stablehlo'``: ``jax.export`` serialised bytes (``jax.export.deserialize(open(path,
  'rb').read()).call(x)``), lowered for ``platforms`` (default: this machine's backend); the
  metadata is a JSON sidecar ``PATH.json``.
* ``'savedmodel'``: a TensorFlow SavedModel folder (``jax2tf``: the StableHLO inside one
  ``XlaCallModule`` op, so it needs TensorFlow with XLA ops, as in the ``tensorflow`` pip
  package), signature ``serving_default(image) -> {'sr': ...}``; the metadata is the string
  variable ``jaxsr_metadata`` and the asset ``assets/jaxsr.json``.
* ``'tflite'``: the TFLite converter legalises that StableHLO to TFLite builtin ops; input
  ``[-1, -1, -1, C]`` (``interpreter.resize_tensor_input`` then ``allocate_tensors`` for each
  size); the metadata is the flatbuffer's metadata entry ``jaxsr`` (JSON bytes).
* ``'onnx'``: converted from that TFLite model by ``tf2onnx`` (opset 17; dimensions named
  ``unk__N``); the metadata is ``metadata_props`` (key ``jaxsr``: the JSON, plus one key per
  top-level field).

Contract of every artifact: input ``[N, H, W, C]`` float32 in [0, 1] (NHWC, any N, H, W >= 1),
output ``[N, s*H, s*W, C]`` float32, the model's output unclipped (clip to [0, 1] before
quantising), the same values as ``jaxsr.inference.upscale(..., bucket=None)`` (exact sizes, no
tiling). ``C`` is 3 (RGB, sRGB, R-G-B order) or 1 (the Y plane of YCbCr / 255 in the
convention the weights were trained on: MATLAB ``rgb2ycbcr`` 16..235 or OpenCV full range;
``jaxsr.color``). :func:`read_metadata` returns the convention from any artifact.

Sizes: a model that needs H and W to be multiples of ``m`` (pixel-unshuffle, window
attention: the model attribute ``size_multiple`` when it has one, else the smallest ``m`` in
1, 2, 4, ..., 64 for which the model traces with symbolic ``m*h``) pads the input at the
bottom/right by symmetric (edge-including) reflection up to the next multiple and crops the
output back, inside the artifact. Models that pad themselves by amounts computed from the
image size (Real-CUGAN and waifu2x: border extension to an aligned size; SwinIR: reflection
to a multiple of the window, and its shifted-window masks) trace with symbolic sizes
through their own slice-and-concatenate forms of those pads and masks (the same rows and
values as at concrete sizes), so the artifact equals ``model.apply`` at the exact size.
Inside the artifact some layers take equivalent forms that every format holds (equal to
float rounding): MATLAB bicubic and bilinear ``Upsample`` (SRCNN, VDSR, MSRResNet) as fixed
polyphase taps with the same borders, 1x1 convolutions and ``Dense`` layers as 1x1
convolutions, and transposed convolutions whose output is not ``s`` times their input
(Real-CUGAN, waifu2x) as cropped sub-pixel convolutions. SwinIR cannot go to ONNX (see
:data:`REFUSED`).

Reduced precision: ``dtype='bfloat16'`` or ``'float16'`` casts the parameters and the input
to that dtype inside the artifact (the interface stays float32); outputs differ from float32
by the rounding of that dtype (:data:`TOLERANCE`).

:func:`load` opens an artifact in its own runtime (``jax.export``, TensorFlow, the TFLite
interpreter, onnxruntime) as a numpy function; the tests and ``benchmarks/export_speed.py``
use it. Mistakes (unknown format or dtype, an existing output without ``overwrite``, an
unwritable path, a format that cannot hold an operation of the model) raise ``InputError``
with one line.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import imresize
from jaxsr import loading
from jaxsr.errors import InputError
from jaxsr.models import common
from jaxsr.models import swinir

__all__ = ["DTYPES", "FORMATS", "REFUSED", "SUFFIX", "TOLERANCE", "Artifact", "describe", "export", "forward_fn",
           "load", "metadata_for", "random_model", "read_metadata", "reference", "size_multiple"]

FORMATS = ("stablehlo", "savedmodel", "tflite", "onnx")
DTYPES = ("float32", "bfloat16", "float16")
# Max |artifact - jaxsr float32| the tests accept for outputs in [0, 1], per compute dtype.
TOLERANCE = {"float32": 1e-4, "bfloat16": 6e-2, "float16": 1e-2}
SUFFIX = {"stablehlo": ".stablehlo", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
# (module class, format) -> the operation that format cannot hold, refused before converting.
REFUSED = {
    (swinir.SwinIR, "onnx"): "SwinIR's window-attention matmuls over a symbolic number of "
                             "windows (tf2onnx mistranslates the reshapes TFLite puts around "
                             "a matmul with a symbolic batch axis)",
}
_ONNX_OPSET = 17


@dataclasses.dataclass(frozen=True)
class Artifact:
  """An exported model.

  Attributes:
    path: the artifact (a file; a folder for ``savedmodel``).
    format: one of :data:`FORMATS`.
    metadata: the convention written into it (see :func:`metadata_for`).
    size_bytes: bytes on disk (the folder's total for ``savedmodel``, the sidecar included for
      ``stablehlo``).
  """
  path: str
  format: str
  metadata: dict[str, Any]
  size_bytes: int


# --------------------------------------------------------------------------- the function


def _periodic(x: jax.Array, axis: int, copies: int) -> jax.Array:
  """``[x, reversed x] * copies`` along ``axis``: entry ``k`` is ``x[fold(k)]``.

  Reversal, concatenation and slices only: TFLite cannot hold a gather whose slice sizes
  are symbolic, and tf2onnx mistranslates the reshapes around a symbolic matmul.
  """
  flipped = jnp.flip(x, axis=axis)
  return jnp.concatenate([x, flipped] * copies, axis=axis)


def _pad_symmetric(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
  """Symmetric padding by static amounts along ``axis`` of symbolic length ``n >= 1``."""
  n = x.shape[axis]
  copies = max(before, after, 1)
  ext = _periodic(x, axis, copies)
  parts = []
  if before:
    parts.append(jax.lax.slice_in_dim(ext, 2 * n * copies - before, 2 * n * copies, axis=axis))
  parts.append(x)
  if after:
    parts.append(jax.lax.slice_in_dim(ext, n, n + after, axis=axis))
  return jnp.concatenate(parts, axis=axis) if len(parts) > 1 else x


def _pad_to_multiple(x: jax.Array, axis: int, m: int) -> jax.Array:
  """Pads ``axis`` at the end to ``m * ceil(n / m)`` by symmetric reflection (a size whose
  divisibility by ``m`` symbolic shapes can prove)."""
  n = x.shape[axis]
  ext = _periodic(x, axis, max(1, (m + 1) // 2))
  return jax.lax.slice_in_dim(ext, 0, m * ((n + m - 1) // m), axis=axis)


def _bicubic_taps(scale: int) -> tuple[int, list[list[tuple[int, float]]]]:
  """MATLAB bicubic upscaling by an integer ``scale``, per output phase ``p``: ``(offset,
  weight)`` taps, output ``s*j + p`` being ``sum weight * x[j + offset]``. Returns the widest
  reach and the taps, read off ``jaxsr.imresize.weights_and_indices`` in the interior."""
  n = 16
  weights, indices = imresize.weights_and_indices(n, n * scale, float(scale))
  j = n // 2
  phases = []
  for p in range(scale):
    i = scale * j + p
    taps = [(int(indices[i, t]) - j, float(weights[i, t]))
            for t in range(weights.shape[1]) if weights[i, t] != 0]
    phases.append(taps)
  reach = max(abs(o) for taps in phases for o, _ in taps)
  return reach, phases


def _bicubic_axis(x: jax.Array, scale: int, axis: int) -> jax.Array:
  n = x.shape[axis]
  reach, phases = _bicubic_taps(scale)
  x = _pad_symmetric(x, axis, reach, reach)
  outs = []
  for taps in phases:
    acc = None
    for off, wt in taps:
      part = jax.lax.slice_in_dim(x, reach + off, reach + off + n, axis=axis) * wt
      acc = part if acc is None else acc + part
    outs.append(acc)
  y = jnp.stack(outs, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = n * scale
  return y.reshape(shape)


def _bilinear_axis(x: jax.Array, scale: int, axis: int) -> jax.Array:
  """Bilinear upscaling by an integer ``scale`` along ``axis`` (half-pixel centres, edge
  rows repeated: ``jax.image.resize(..., 'bilinear')``, PyTorch ``align_corners=False``):
  output ``s*j + p`` blends rows ``j`` and ``j -/+ 1`` at the fixed offset ``(2p + 1 - s) /
  (2s)``. Slices and constants only (no per-size matrix, no matmul)."""
  n = x.shape[axis]
  x = jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis), x,
                       jax.lax.slice_in_dim(x, n - 1, n, axis=axis)], axis=axis)
  rows = lambda off: jax.lax.slice_in_dim(x, 1 + off, 1 + off + n, axis=axis)  # noqa: E731
  outs = []
  for p in range(scale):
    d = (2 * p + 1 - scale) / (2 * scale)
    outs.append(rows(-1) * -d + rows(0) * (1 + d) if d < 0 else
                rows(0) * (1 - d) + rows(1) * d if d > 0 else rows(0))
  y = jnp.stack(outs, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = n * scale
  return y.reshape(shape)


def _symbolic_upsample(next_fun, args, kwargs, context):
  """Flax interceptor: the model's layers in forms that trace with symbolic sizes and that
  every format holds: MATLAB bicubic and bilinear ``Upsample`` as fixed polyphase taps
  (instead of per-size matrices), 1x1 ``Conv`` and ``Dense`` as 1x1 convolutions, and
  transposed convolutions whose output is not ``s`` times the input as sub-pixel ones."""
  mod = context.module
  if (context.method_name == "__call__" and isinstance(mod, common.Upsample)
      and mod.method in ("bicubic", "bilinear")):
    # jax.image.resize builds a per-size interpolation matrix: a matmul with symbolic sizes.
    axis_fn = _bicubic_axis if mod.method == "bicubic" else _bilinear_axis
    x = args[0]
    y = axis_fn(axis_fn(x.astype(jnp.float32), mod.scale, 1), mod.scale, 2)
    return y.astype(x.dtype)
  if (context.method_name == "__call__" and isinstance(mod, common.Conv)
      and mod.kernel_size == 1 and mod.strides == 1 and mod.pad_amounts() == (0, 0)):
    # jaxsr computes 1x1 convolutions as a matmul; tf2onnx mistranslates the reshapes TFLite
    # wraps around that matmul for symbolic sizes, so artifacts hold a 1x1 convolution.
    params = mod.variables["params"]
    kernel = params["kernel"]
    y = jax.lax.conv_general_dilated(args[0].astype(kernel.dtype), kernel, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + params["bias"] if mod.use_bias else y
  if (context.method_name == "__call__" and isinstance(mod, nn.Dense)
      and args[0].ndim in (3, 4)):
    # The same for Dense layers (SwinIR's qkv, proj and MLP): a 1x1 convolution on [N, H, W,
    # C] (a [B, L, C] input is viewed as [B, 1, L, C]).
    params = mod.variables["params"]
    kernel = params["kernel"]
    x = args[0].astype(kernel.dtype)
    flat = x.ndim == 3
    if flat:
      x = jnp.expand_dims(x, 1)
    y = jax.lax.conv_general_dilated(x, kernel[None, None], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if mod.use_bias:
      y = y + params["bias"]
    return jnp.squeeze(y, 1) if flat else y
  if (context.method_name == "__call__" and isinstance(mod, common.ConvTranspose)
      and mod.strides > 1
      and mod.kernel_size + mod.output_padding - 2 * mod.padding != mod.strides):
    return _transposed_as_subpixel(mod, args[0])
  return next_fun(*args, **kwargs)


def _transposed_as_subpixel(mod: common.ConvTranspose, x: jax.Array) -> jax.Array:
  """A transposed convolution whose output is not ``s`` times its input (Real-CUGAN's and
  waifu2x's 'valid' heads) as its sub-pixel convolution, cropped: the TFLite converter
  computes a wrong output shape for an ``lhs_dilation`` convolution with symbolic sizes.

  The sub-pixel form gives output rows ``0 .. s*H - 1`` of the transposed convolution
  (taps outside the input read zeros); the input is first extended by zero rows when the
  output is longer than that.
  """
  k, s, p, op = mod.kernel_size, mod.strides, mod.padding, mod.output_padding
  params = mod.variables["params"]
  kernel = params["kernel"]
  x = x.astype(kernel.dtype)
  n_h, n_w = x.shape[1], x.shape[2]
  grow = k + op - 2 * p - s  # output length minus s times the input length
  extra = max(0, -(-grow // s))
  if extra:
    x = jnp.pad(x, ((0, 0), (0, extra), (0, extra), (0, 0)))
  w = common.transposed_to_subpixel_kernel(kernel, s, p)
  r = (w.shape[0] - 1) // 2
  y = jax.lax.conv_general_dilated(x, w, (1, 1), ((r, r), (r, r)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y = common.depth_to_space(y, s)
  y = jax.lax.slice_in_dim(y, 0, (n_h - 1) * s + k + op - 2 * p, axis=1)
  y = jax.lax.slice_in_dim(y, 0, (n_w - 1) * s + k + op - 2 * p, axis=2)
  return y + params["bias"] if mod.use_bias else y


def forward_fn(module: nn.Module, variables: Any, *, channels: int, multiple: int = 1,
               dtype: str = "float32") -> Callable[[jax.Array], jax.Array]:
  """The function every artifact holds: ``[N, H, W, C]`` float32 -> ``[N, s*H, s*W, C]``.

  Pads H and W up to ``multiple`` (symmetric reflection) and crops the output back; computes
  in ``dtype``; traces with symbolic N, H, W.
  """
  del channels
  compute = jnp.dtype(dtype)
  params = jax.tree.map(lambda a: jnp.asarray(a, compute)
                        if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, variables)
  scale = int(module.scale)

  def fn(x: jax.Array) -> jax.Array:
    h, w = x.shape[1], x.shape[2]
    if multiple > 1:
      # The padded size as m * ceil(n / m): a form whose divisibility by m the symbolic
      # shapes can prove.
      x = _pad_to_multiple(_pad_to_multiple(x, 1, multiple), 2, multiple)
    with nn.intercept_methods(_symbolic_upsample):
      y = module.apply(params, x.astype(compute))
    if multiple > 1:
      # lax slices: numpy-style indexing with symbolic bounds lowers to a gather (no TFLite).
      y = jax.lax.slice_in_dim(jax.lax.slice_in_dim(y, 0, scale * h, axis=1), 0, scale * w,
                               axis=2)
    return y.astype(jnp.float32)

  return fn


def _traces(module: nn.Module, variables: Any, channels: int, multiple: int) -> bool:
  spec = jax.ShapeDtypeStruct(jax.export.symbolic_shape(
      f"b, {multiple}*h, {multiple}*w, {channels}"), jnp.float32)
  try:
    with nn.intercept_methods(_symbolic_upsample):
      out = jax.eval_shape(lambda x: module.apply(variables, x), spec)
  except Exception:  # pylint: disable=broad-except
    return False
  return tuple(map(str, out.shape[1:3])) == tuple(
      str(d * int(module.scale)) for d in spec.shape[1:3])


def size_multiple(module: nn.Module, variables: Any, *, channels: int) -> int:
  """The multiple that H and W of the model's input must have (1: any size).

  The module's ``size_multiple`` attribute when it has one; else the smallest of 1, 2, 4, ...,
  64 for which the model traces with symbolic sizes ``m*h, m*w`` (and gives ``s*m*h``).

  Raises:
    InputError: the model traces with none of them (an operation needs concrete sizes).
  """
  given = getattr(module, "size_multiple", None)
  if callable(given):
    given = given()
  if given:
    return int(given)
  for m in _MULTIPLES:
    if _traces(module, variables, channels, m):
      return m
  raise InputError(f"model {type(module).__name__} does not trace with symbolic image sizes "
                   f"(an operation needs concrete sizes); no format can hold it",
                   field="model")


# --------------------------------------------------------------------------- metadata


def metadata_for(net: loading.LoadedModel, *, fmt: str, dtype: str, multiple: int,
                 platforms: Sequence[str] | None = None) -> dict[str, Any]:
  """The input/output convention written into an artifact (JSON-serialisable)."""
  channels = net.channels
  if channels == 1:
    order = "Y"
    space = ("YCbCr Y plane / 255, " + ("OpenCV full range (COLOR_RGB2YCrCb)"
                                        if net.luma == "opencv" else
                                        "MATLAB rgb2ycbcr (16..235)"))
  else:
    order = "RGB"
    space = "sRGB (gamma-encoded, as read from 8-bit images)"
  try:
    version = importlib.metadata.version("jaxsr")
  except importlib.metadata.PackageNotFoundError:  # a source checkout that is not installed
    version = "unknown"
  meta = {
      "producer": f"jaxsr {version}",
      "model": net.name,
      "scale": int(net.scale),
      "format": fmt,
      "compute_dtype": dtype,
      "layout": "NHWC",
      "input": {"shape": ["N", "H", "W", channels], "dtype": "float32", "range": [0.0, 1.0],
                "channels": channels, "channel_order": order, "colour_space": space},
      "output": {"shape": ["N", f"{net.scale}*H", f"{net.scale}*W", channels],
                 "dtype": "float32", "range": [0.0, 1.0], "clipped": False,
                 "channels": channels, "channel_order": order, "colour_space": space},
      "dynamic": ["N", "H", "W"],
      "size_multiple": int(multiple),
      "padding": ("none: any H, W" if multiple == 1 else
                  f"H, W padded inside to a multiple of {multiple} by symmetric reflection "
                  f"at the bottom/right; output cropped to s*H x s*W"),
      "source": net.source,
  }
  if channels == 1:
    meta["luma"] = net.luma
  if platforms:
    meta["platforms"] = list(platforms)
  return meta


def describe(meta: dict[str, Any]) -> str:
  """Two lines for people: what goes in and what comes out."""
  i = meta["input"]
  return (f"input  [N, H, W, {i['channels']}] float32 in [0, 1], {i['channel_order']}, "
          f"{i['colour_space']}; any N, H, W"
          + (f" (padded inside to a multiple of {meta['size_multiple']})"
             if meta["size_multiple"] > 1 else "") + "\n"
          f"output [N, {meta['scale']}H, {meta['scale']}W, {i['channels']}] float32, "
          f"unclipped (clip to [0, 1]); compute {meta['compute_dtype']}")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
  """The metadata written by :func:`export` into the artifact at ``path`` (any format)."""
  p = pathlib.Path(path)
  fmt = _format_of(p)
  try:
    if fmt == "stablehlo":
      return json.loads(pathlib.Path(str(p) + ".json").read_text())
    if fmt == "savedmodel":
      return json.loads((p / "assets" / "jaxsr.json").read_text())
    if fmt == "tflite":
      from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
      model = flatbuffer_utils.read_model(str(p))
      for entry in model.metadata or ():
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == "jaxsr":
          return json.loads(bytes(model.buffers[entry.buffer].data).decode())
      raise InputError(f"{p}: no jaxsr metadata in this TFLite model")
    import onnx  # pylint: disable=g-import-not-at-top
    model = onnx.load(str(p), load_external_data=False)
    for prop in model.metadata_props:
      if prop.key == "jaxsr":
        return json.loads(prop.value)
    raise InputError(f"{p}: no jaxsr metadata in this ONNX model")
  except (OSError, ValueError) as e:
    if isinstance(e, InputError):
      raise
    raise InputError(f"{p}: cannot read the metadata ({e})") from None


def _format_of(p: pathlib.Path) -> str:
  if p.is_dir():
    return "savedmodel"
  for fmt, suffix in SUFFIX.items():
    if suffix and p.name.endswith(suffix):
      return fmt
  raise InputError(f"{p}: not a known artifact (.stablehlo, .tflite, .onnx or a SavedModel "
                   f"folder)")


# --------------------------------------------------------------------------- writers


def _symbolic_spec(channels: int) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(jax.export.symbolic_shape(f"b, h, w, {channels}"), jnp.float32)


def _stablehlo(fn, channels: int, platforms: Sequence[str] | None):
  kwargs = {"platforms": tuple(platforms)} if platforms else {}
  return jax.export.export(jax.jit(fn), **kwargs)(_symbolic_spec(channels))


def _tf_function(fn, channels: int):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  converted = jax2tf.convert(fn, polymorphic_shapes=[f"(b, h, w, {channels})"],
                             with_gradient=False)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, None, None, channels], tf.float32, name="image")])
  def serve(image):
    return {"sr": converted(image)}

  return serve


def _write_stablehlo(fn, channels, meta, target: pathlib.Path, platforms) -> list[pathlib.Path]:
  exp = _stablehlo(fn, channels, platforms)
  target.write_bytes(exp.serialize())
  side = pathlib.Path(str(target) + ".json")
  side.write_text(json.dumps(meta, indent=1))
  return [target, side]


def _write_savedmodel(fn, channels, meta, target: pathlib.Path) -> list[pathlib.Path]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  holder = tf.Module()
  holder.serve = _tf_function(fn, channels)
  holder.jaxsr_metadata = tf.Variable(json.dumps(meta), trainable=False, name="jaxsr_metadata")
  with tempfile.TemporaryDirectory() as tmp:
    side = pathlib.Path(tmp) / "jaxsr.json"
    side.write_text(json.dumps(meta, indent=1))
    holder.metadata_asset = tf.saved_model.Asset(str(side))
    tf.saved_model.save(holder, str(target),
                        signatures={"serving_default": holder.serve.get_concrete_function()})
  return [target]


def _tflite_bytes(fn, channels) -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  serve = _tf_function(fn, channels)
  concrete = serve.get_concrete_function()
  converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], serve)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  return converter.convert()


def _with_tflite_metadata(content: bytes, meta: dict[str, Any]) -> bytes:
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top

  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
  buf = schema.BufferT()
  buf.data = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
  model.buffers.append(buf)
  entry = schema.MetadataT()
  entry.name = "jaxsr"
  entry.buffer = len(model.buffers) - 1
  model.metadata = list(model.metadata or []) + [entry]
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _write_tflite(fn, channels, meta, target: pathlib.Path) -> list[pathlib.Path]:
  target.write_bytes(_with_tflite_metadata(_tflite_bytes(fn, channels), meta))
  return [target]


def _write_onnx(fn, channels, meta, target: pathlib.Path, dtype: str) -> list[pathlib.Path]:
  import onnx  # pylint: disable=g-import-not-at-top
  import tf2onnx  # pylint: disable=g-import-not-at-top

  content = _tflite_bytes(fn, channels)
  with tempfile.TemporaryDirectory() as tmp:
    lite = pathlib.Path(tmp) / "model.tflite"
    lite.write_bytes(content)
    model, _ = tf2onnx.convert.from_tflite(str(lite), opset=_ONNX_OPSET)
  model.producer_name = "jaxsr (jax2tf, TFLite, tf2onnx)"
  for key, value in [("jaxsr", json.dumps(meta))] + [
      (k, v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()]:
    prop = model.metadata_props.add()
    prop.key, prop.value = key, value
  onnx.save(model, str(target))
  _smoke_test(target, "onnx", channels, fn, dtype)
  return [target]


def _smoke_test(target: pathlib.Path, fmt: str, channels: int, fn, dtype: str) -> None:
  """Runs the artifact once on a small odd-sized batch and compares it with ``fn`` run by
  jax; a converter that mistranslated an operation (tf2onnx: the reshapes around a matmul
  with symbolic sizes) is refused here rather than shipped."""
  x = np.random.default_rng(0).random((2, 5, 7, channels), dtype=np.float32)
  try:
    got = load(target)(x)
  except Exception as e:  # pylint: disable=broad-except
    text = " ".join(str(e).split())
    at = text.find("Name:'")
    node = text[at + 6:].split("'")[0] if at >= 0 else text[:120]
    raise InputError(f"format {fmt} cannot hold an operation of this model: the converted "
                     f"node {node} fails at run time (tf2onnx mistranslates a symbolic "
                     f"reshape)", field="format") from None
  want = np.asarray(jax.jit(fn)(jnp.asarray(x)))
  if got.shape != want.shape or not np.abs(got - want).max() < TOLERANCE[dtype]:
    raise InputError(f"format {fmt} cannot hold an operation of this model: the converted "
                     f"model's output differs from jaxsr's (a converter mistranslated an "
                     f"operation)", field="format")


def _size(paths: Sequence[pathlib.Path]) -> int:
  total = 0
  for p in paths:
    if p.is_dir():
      total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    elif p.exists():
      total += p.stat().st_size
  return total


def _unsupported(fmt: str, error: Exception) -> InputError:
  text = " ".join(str(error).split())
  op = ""
  for marker in ("failed to legalize operation '", "'tfl.", "'stablehlo.", "op type "):
    at = text.find(marker)
    if at >= 0:
      op = text[at:at + 80].split("'")[1] if "'" in text[at:at + 80] else text[at:at + 60]
      break
  if fmt == "stablehlo":
    return InputError(f"the model does not trace with symbolic image sizes ({text[:160]})",
                      field="model")
  what = f"operation {op}" if op else f"an operation ({text[:160]})"
  return InputError(f"format {fmt} cannot hold {what} of this model", field="format")


def export(net: loading.LoadedModel, path: str | os.PathLike, *, format: str,  # pylint: disable=redefined-builtin
           dtype: str = "float32", overwrite: bool = False,
           platforms: Sequence[str] | None = None) -> Artifact:
  """Writes ``net`` as a deployable artifact (module docstring: formats and contract).

  Args:
    net: a loaded model (``jaxsr.load_model``, ``jaxsr.zoo.load_pretrained``).
    path: the artifact to write (a folder for ``savedmodel``); written through a temporary
      sibling and renamed into place.
    format: one of :data:`FORMATS`.
    dtype: compute dtype inside the artifact, one of :data:`DTYPES`.
    overwrite: replace an existing artifact at ``path``.
    platforms: ``stablehlo`` only: the ``jax.export`` lowering platforms (e.g. ``('cpu',
      'cuda')``); default this machine's backend.

  Returns:
    The :class:`Artifact`.

  Raises:
    InputError: unknown ``format`` / ``dtype`` (field ``format`` / ``dtype``); ``path`` exists
      without ``overwrite`` or cannot be written (field ``output``); a model or format that
      cannot hold one of the model's operations (field ``model`` / ``format``).
  """
  if format not in FORMATS:
    raise InputError(f"unknown format {format!r}; one of {', '.join(FORMATS)}", field="format")
  if dtype not in DTYPES:
    raise InputError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPES)}", field="dtype")
  for (cls, fmt), what in REFUSED.items():
    if format == fmt and isinstance(net.module, cls):
      raise InputError(f"format {fmt} cannot hold {what}", field="format")
  target = pathlib.Path(path).absolute()
  if target.exists() or (format == "stablehlo" and pathlib.Path(str(target) + ".json").exists()):
    if not overwrite:
      raise InputError(f"{target}: already exists; pass overwrite (--overwrite) to replace it",
                       field="output")
    if format == "savedmodel" and target.exists() and not (
        (target / "saved_model.pb").exists() or not any(target.iterdir())):
      raise InputError(f"{target}: exists and is not a SavedModel; choose another path",
                       field="output")
    if format != "savedmodel" and target.is_dir():
      raise InputError(f"{target}: exists and is a folder", field="output")
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
  except OSError as e:
    raise InputError(f"{target}: cannot write here ({e.strerror or e})", field="output") from None
  channels = net.channels
  try:
    multiple = size_multiple(net.module, net.variables, channels=channels)
    meta = metadata_for(net, fmt=format, dtype=dtype, multiple=multiple,
                        platforms=platforms if format == "stablehlo" else None)
    fn = forward_fn(net.module, net.variables, channels=channels, multiple=multiple,
                    dtype=dtype)
    staged = staging / target.name
    try:
      if format == "stablehlo":
        written = _write_stablehlo(fn, channels, meta, staged, platforms)
      elif format == "savedmodel":
        written = _write_savedmodel(fn, channels, meta, staged)
      elif format == "tflite":
        written = _write_tflite(fn, channels, meta, staged)
      else:
        written = _write_onnx(fn, channels, meta, staged, dtype)
    except InputError:
      raise
    except OSError as e:
      raise InputError(f"{target}: cannot write ({e.strerror or e})", field="output") from None
    except Exception as e:  # pylint: disable=broad-except
      raise _unsupported(format, e) from e
    finals = []
    for src in written:
      dst = target.parent / src.name
      if dst.is_dir():
        shutil.rmtree(dst)
      src.replace(dst) if not src.is_dir() else src.rename(dst)
      finals.append(dst)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return Artifact(path=str(target), format=format, metadata=meta, size_bytes=_size(finals))


# --------------------------------------------------------------------------- runtimes


def load(path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
  """Opens an artifact in its own runtime: ``f(x [N, H, W, C] float32) -> [N, sH, sW, C]``.

  ``stablehlo``: ``jax.export.deserialize``; ``savedmodel``: ``tf.saved_model.load``;
  ``tflite``: ``tf.lite.Interpreter`` (resized for each new input shape); ``onnx``:
  ``onnxruntime`` (CPU).
  """
  p = pathlib.Path(path)
  fmt = _format_of(p)
  if fmt == "stablehlo":
    exp = jax.export.deserialize(bytearray(p.read_bytes()))
    call = jax.jit(exp.call)
    return lambda x: np.asarray(call(jnp.asarray(x, jnp.float32)))
  if fmt == "savedmodel":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    sig = tf.saved_model.load(str(p)).signatures["serving_default"]
    return lambda x: sig(image=tf.constant(np.asarray(x, np.float32)))["sr"].numpy()
  if fmt == "tflite":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    interp = tf.lite.Interpreter(model_path=str(p), num_threads=os.cpu_count())
    state = {"shape": None}

    def run_tflite(x):
      x = np.ascontiguousarray(x, np.float32)
      inp = interp.get_input_details()[0]["index"]
      if state["shape"] != x.shape:
        interp.resize_tensor_input(inp, list(x.shape), strict=False)
        interp.allocate_tensors()
        state["shape"] = x.shape
      interp.set_tensor(inp, x)
      interp.invoke()
      return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()

    return run_tflite
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
  name = session.get_inputs()[0].name
  return lambda x: session.run(None, {name: np.asarray(x, np.float32)})[0]


def reference(net: loading.LoadedModel, x: np.ndarray, *, dtype: str = "float32") -> np.ndarray:
  """jaxsr's own output for ``x`` computed by the artifact's function, run by ``jax.jit``
  without exporting (the tests compare it and ``jaxsr.inference.upscale`` with artifacts)."""
  multiple = size_multiple(net.module, net.variables, channels=net.channels)
  fn = forward_fn(net.module, net.variables, channels=net.channels, multiple=multiple,
                  dtype=dtype)
  return np.asarray(jax.jit(fn)(jnp.asarray(x, jnp.float32)))


def random_model(name: str, *, scale: int, key: jax.Array | None = None,
                 **overrides: Any) -> loading.LoadedModel:
  """A registry model with random weights as a :class:`jaxsr.loading.LoadedModel` (tests,
  benchmarks)."""
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  module = models.get_model(name, scale=scale, **overrides)
  channels = int(getattr(module, "channels", 3))
  key = jax.random.key(0) if key is None else key
  variables = module.init(key, jnp.zeros((1, 16, 16, channels), jnp.float32))
  return loading.LoadedModel(module=module, variables=variables, scale=int(module.scale),
                             luma="matlab", name=name, format="random", source="random init")

