"""Reading PyTorch ``.pth`` state dicts without executing code from the file, and without torch.

``read_state_dict(path)`` returns ``{key: numpy array}`` from a file written by ``torch.save``
(the zip format of torch >= 1.6 and the legacy format before it). The pickles inside are read
with a *restricted unpickler*: the only globals it resolves are the handful a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` and
the ``torch.*Storage`` types), each mapped to a local numpy implementation. Anything else -- a
``__reduce__`` naming ``os.system``, ``builtins.eval``, a pickled module or class -- makes the
read fail with ``InputError`` *before* the object is built, so no code from the file runs. This
is the same policy as ``torch.load(weights_only=True)``, but it needs no torch install.

Nested containers are flattened: a BasicSR checkpoint ``{'params': {...}}`` or
``{'params_ema': {...}}`` is returned as a dict of dicts; ``select_state_dict`` picks the weights.
"""

from __future__ import annotations

import collections
import io
import os
import pathlib
import pickle
import zipfile
from typing import Any

import numpy as np

from jaxsr.errors import InputError

__all__ = ["read_state_dict", "select_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}


def _np_dtype(name: str):
  dt = _STORAGE_DTYPES[name]
  if dt == "bfloat16":
    import ml_dtypes  # pylint: disable=g-import-not-at-top  (a jax dependency)
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(dt)


class _StorageType:
  """Stands in for ``torch.FloatStorage`` etc.: only carries the dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _np_dtype(name)


class _Storage:
  """A flat numpy buffer (filled later for the legacy format)."""

  def __init__(self, dtype: np.dtype, numel: int, data: np.ndarray | None = None):
    self.dtype = dtype
    self.numel = numel
    self.data = data


class _TensorRef:
  """A tensor whose storage bytes may arrive after unpickling (legacy format)."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

  def materialise(self) -> np.ndarray:
    storage = self.storage
    if isinstance(storage, tuple):  # legacy view: (base storage, element offset, numel)
      base, view_offset, _ = storage
      flat, offset = base.data, self.offset + view_offset
    else:
      flat, offset = storage.data, self.offset
    if flat is None:
      raise InputError("tensor storage missing from the file")
    if offset < 0 or any(n < 0 for n in self.size) or any(st < 0 for st in self.stride) \
        or len(self.size) != len(self.stride):
      raise InputError("tensor with a negative offset, size or stride (corrupt file)")
    if not self.size:
      if offset >= flat.size:
        raise InputError("tensor exceeds its storage (truncated or corrupt file)")
      return np.array(flat[offset])
    needed = offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
    if needed > flat.size and all(n > 0 for n in self.size):
      raise InputError("tensor exceeds its storage (truncated or corrupt file)")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=self.size,
                                           strides=tuple(s * item for s in self.stride))
    return np.array(view)  # a copy: contiguous, owns its memory


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  del requires_grad, backward_hooks, metadata
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  del requires_grad, backward_hooks
  return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
  del requires_grad, backward_hooks, state
  return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only the globals of ``_ALLOWED`` and the storage types; refuses everything else."""

  def __init__(self, file, path: pathlib.Path, persistent_load):
    super().__init__(file, encoding="latin1")
    self._path = path
    self._persistent = persistent_load

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise InputError(
        f"{self._path}: refusing to load: the file references {module}.{name}, which a weights "
        f"file does not need (jaxsr never runs code from a weights file)")

  def persistent_load(self, pid):
    return self._persistent(pid)


def _check_storage_id(path, pid) -> tuple:
  if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
    raise InputError(f"{path}: refusing to load: unsupported persistent object {str(pid)[:80]}")
  if not isinstance(pid[1], _StorageType):
    raise InputError(f"{path}: refusing to load: unsupported storage type {pid[1]!r}")
  return pid


def _read_zip(path: pathlib.Path) -> Any:
  with zipfile.ZipFile(path) as zf:
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
      raise InputError(f"{path}: not a torch.save archive (no single data.pkl)")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = zf.read(prefix + "byteorder").decode().strip() or "little"
    storages: dict[str, _Storage] = {}

    def persistent_load(pid):
      _, stype, key, _, numel = _check_storage_id(path, pid)[:5]
      key = str(key)
      if key not in storages:
        member = f"{prefix}data/{key}"
        if member not in names:
          raise InputError(f"{path}: storage {key} missing from the archive")
        raw = zf.read(member)
        dtype = stype.dtype.newbyteorder("<" if byteorder == "little" else ">")
        if len(raw) < int(numel) * dtype.itemsize:
          raise InputError(f"{path}: storage {key} is truncated")
        data = np.frombuffer(raw, dtype, count=int(numel)).astype(stype.dtype)
        storages[key] = _Storage(stype.dtype, int(numel), data)
      return storages[key]

    return _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path, persistent_load).load()


def _read_legacy(path: pathlib.Path) -> Any:
  data = path.read_bytes()
  f = io.BytesIO(data)

  def plain_load():
    return _RestrictedUnpickler(f, path, lambda pid: _refuse_pid(path, pid)).load()

  magic = plain_load()
  if magic != _LEGACY_MAGIC:
    raise InputError(f"{path}: not a PyTorch weights file (bad magic number)")
  plain_load()  # protocol version
  plain_load()  # sys info
  storages: dict[str, _Storage] = {}

  def persistent_load(pid):
    _, stype, key, _, numel, view = _check_storage_id(path, pid)[:6]
    key = str(key)
    if key not in storages:
      storages[key] = _Storage(stype.dtype, int(numel))
    if view is not None:
      _, view_offset, view_size = view
      return (storages[key], int(view_offset), int(view_size))
    return storages[key]

  result = _RestrictedUnpickler(f, path, persistent_load).load()
  keys = plain_load()
  if not isinstance(keys, list):
    raise InputError(f"{path}: corrupt legacy weights file (no storage list)")
  for key in keys:
    storage = storages.get(str(key))
    if storage is None:
      raise InputError(f"{path}: corrupt legacy weights file (unknown storage {key})")
    header = f.read(8)
    if len(header) != 8:
      raise InputError(f"{path}: truncated weights file")
    numel = int(np.frombuffer(header, "<i8")[0])
    raw = f.read(numel * storage.dtype.itemsize)
    if len(raw) != numel * storage.dtype.itemsize:
      raise InputError(f"{path}: truncated weights file")
    storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<")).astype(storage.dtype)
  return result


def _refuse_pid(path, pid):
  raise InputError(f"{path}: refusing to load: unexpected persistent object {str(pid)[:80]}")


def _materialise(obj: Any, path: pathlib.Path) -> Any:
  if isinstance(obj, _TensorRef):
    try:
      return obj.materialise()
    except InputError as e:
      raise InputError(f"{path}: {e}") from None
  if isinstance(obj, dict):
    return {k: _materialise(v, path) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialise(v, path) for v in obj)
  return obj


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
  """Reads a ``torch.save`` file into nested dicts of numpy arrays, never executing its code.

  Args:
    path: a ``.pth``/``.pt`` file (zip or legacy format).

  Returns:
    The saved object with every tensor as a numpy array (a ``dict``).

  Raises:
    InputError: missing, corrupt or unsupported file, or one that references code.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"{path}: no such weights file")
  try:
    if zipfile.is_zipfile(path):
      obj = _read_zip(path)
    else:
      obj = _read_legacy(path)
    obj = _materialise(obj, path)
  except InputError:
    raise
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
          AttributeError, zipfile.BadZipFile, OSError) as e:
    raise InputError(f"{path}: cannot read PyTorch weights ({type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''})") from None
  if not isinstance(obj, dict):
    raise InputError(f"{path}: expected a state dict, found {type(obj).__name__}")
  return obj


def select_state_dict(obj: dict[str, Any], path: str | os.PathLike, *,
                      prefer_ema: bool = True) -> tuple[dict[str, np.ndarray], str | None]:
  """Picks the flat ``{key: array}`` weights out of a loaded checkpoint.

  BasicSR saves ``{'params': sd}`` or ``{'params_ema': sd}`` (Real-ESRGAN ships
  ``params_ema``); other trainers use ``'state_dict'`` or ``'model'``. ``prefer_ema`` takes
  ``params_ema`` when both are present. A leading ``module.`` (DataParallel) is stripped.

  Returns:
    ``(state dict, wrapper key or None)``.
  """
  wrapper = None
  order = ("params_ema", "params") if prefer_ema else ("params", "params_ema")
  for key in order + ("state_dict", "model", "generator"):
    if isinstance(obj.get(key), dict):
      obj, wrapper = obj[key], key
      break
  flat = {}
  for k, v in obj.items():
    if not isinstance(v, np.ndarray):
      continue
    k = str(k)
    flat[k[len("module."):] if k.startswith("module.") else k] = v
  if not flat:
    raise InputError(f"{path}: no tensors found (keys: {', '.join(map(str, list(obj)[:8]))})")
  return flat, wrapper
