"""Reading ``.safetensors`` weights into numpy, without the safetensors package or torch.

The format (https://huggingface.co/docs/safetensors): an unsigned little-endian 64-bit header
length ``n``, then ``n`` bytes of UTF-8 JSON ``{name: {"dtype": "F32", "shape": [...],
"data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}``, then the data buffer; each
tensor is the C-order little-endian bytes ``[begin, end)`` of that buffer. There is no code in a
safetensors file, so reading one runs nothing from it.

``read_safetensors(path)`` returns ``{name: numpy array}`` (a flat state dict, as
``jaxsr.convert.torch_io.read_state_dict`` returns for a ``.pth``; the tensors' names are the
PyTorch state-dict keys). Every declared size is checked against the file before anything is
allocated: the header must fit in the file, each tensor's byte range must lie inside the data
buffer and hold exactly ``prod(shape) * itemsize`` bytes. Any failure is one ``InputError`` line
naming the file and the tensor. Floating dtypes F64/F32/F16/BF16 and the integer/bool ones are
read; FP8 tensors are refused.

Choice: the header is parsed here (about 60 lines) rather than with the ``safetensors`` package,
so importing safetensors files needs no extra dependency; the test suite checks this reader
against the package's ``safetensors.numpy.load_file`` where it is installed.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import struct

import numpy as np

from jaxsr.errors import InputError

__all__ = ["is_safetensors", "read_safetensors"]

_MAX_HEADER = 100 << 20  # the reference implementation's limit

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bfloat16", "I64": "<i8",
           "I32": "<i4", "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2",
           "U8": "u1", "BOOL": "?"}


def _dtype(name: str) -> np.dtype:
  if name == "BF16":
    import ml_dtypes  # pylint: disable=g-import-not-at-top  (a jax dependency)
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(_DTYPES[name])


def is_safetensors(head: bytes) -> bool:
  """Whether a file's first bytes (at least 9) look like a safetensors header."""
  return len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 1


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads every tensor of a ``.safetensors`` file (see the module docstring).

  Raises:
    InputError: a missing, empty, truncated or malformed file, or an unsupported dtype.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: no such weights file")
  try:
    size = path.stat().st_size
    with open(path, "rb") as fh:
      head = fh.read(8)
      if len(head) < 8:
        raise InputError(f"{path}: truncated safetensors file ({size} bytes)")
      n = struct.unpack("<Q", head)[0]
      if n > _MAX_HEADER or 8 + n > size:
        raise InputError(f"{path}: corrupt safetensors file: a {n}-byte header in a "
                         f"{size}-byte file")
      raw = fh.read(n)
      data_start = 8 + n
      try:
        header = json.loads(raw.decode("utf-8"))
      except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: corrupt safetensors header ({type(e).__name__})") from None
      if not isinstance(header, dict):
        raise InputError(f"{path}: corrupt safetensors header (not a JSON object)")
      data_size = size - data_start
      out: dict[str, np.ndarray] = {}
      for name, info in header.items():
        if name == "__metadata__":
          continue
        out[name] = _read_tensor(fh, path, name, info, data_start, data_size)
  except OSError as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
  if not out:
    raise InputError(f"{path}: no tensors in this safetensors file")
  return out


def _read_tensor(fh, path, name, info, data_start: int, data_size: int) -> np.ndarray:
  where = f"{path}: tensor {name!r}"
  if not isinstance(info, dict):
    raise InputError(f"{where}: corrupt header entry")
  dtype_name, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
  if dtype_name not in _DTYPES:
    raise InputError(f"{where}: unsupported dtype {dtype_name!r}")
  if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
      or not isinstance(offsets, list) or len(offsets) != 2
      or not all(isinstance(o, int) and o >= 0 for o in offsets)):
    raise InputError(f"{where}: corrupt header entry (shape {shape!r}, data_offsets "
                     f"{offsets!r})")
  begin, end = offsets
  dtype = _dtype(dtype_name)
  want = math.prod(shape) * dtype.itemsize
  if end < begin or end > data_size:
    raise InputError(f"{where}: bytes [{begin}, {end}) lie outside the {data_size}-byte data "
                     f"buffer (truncated file?)")
  if end - begin != want:
    raise InputError(f"{where}: {end - begin} bytes for shape {tuple(shape)} {dtype_name} "
                     f"({want} expected)")
  fh.seek(data_start + begin)
  buf = fh.read(want)
  if len(buf) != want:
    raise InputError(f"{where}: truncated file")
  return np.frombuffer(buf, dtype).reshape(shape).copy()
