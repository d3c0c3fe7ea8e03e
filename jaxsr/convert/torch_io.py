"""Reading PyTorch ``.pth`` state dicts without executing code from the file, and without torch.

``read_state_dict(path)`` returns ``{key: numpy array}`` from a file written by ``torch.save``
(the zip format of torch >= 1.6 and the legacy format before it). The pickles inside are read
with a *restricted unpickler*: the only globals it resolves are the handful a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` and
the ``torch.*Storage`` types), each mapped to a local numpy implementation. Anything else -- a
``__reduce__`` naming ``os.system``, ``builtins.eval``, a pickled module or class -- makes the
read fail with ``InputError`` *before* the object is built, so no code from the file runs. This
is the same policy as ``torch.load(weights_only=True)``, but it needs no torch install.

Sizes are checked before anything is allocated: a storage must fit in the bytes the file (or
its zip member) actually holds, every tensor must lie inside its storage, and the tensors
together may not expand to more than twice the file's storage bytes plus 64 MiB (so a header
claiming a 200000x200000 tensor on a 4-byte storage is refused instead of allocated). Every
failure -- a truncated or corrupt file, a size that does not fit -- is one ``InputError`` line
naming the file and the tensor key or storage.

Nested containers are kept: a BasicSR checkpoint ``{'params': {...}}`` or
``{'params_ema': {...}}`` is returned as a dict of dicts; ``select_state_dict`` picks the weights.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pathlib
import pickle
import struct
import zipfile
import zlib
from typing import Any, Callable

import numpy as np

from jaxsr.convert import safetensors_io
from jaxsr.errors import InputError

__all__ = ["read_state_dict", "select_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_SLACK_BYTES = 64 << 20  # tensors may expand beyond the file's storages by this much (and 2x)

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}

# What a damaged file makes the unpickler, zipfile, zlib or numpy raise.
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, zlib.error,
            OverflowError, NotImplementedError, RuntimeError)


def _np_dtype(name: str):
  dt = _STORAGE_DTYPES[name]
  if dt == "bfloat16":
    import ml_dtypes  # pylint: disable=g-import-not-at-top  (a jax dependency)
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(dt)


def _human(n: int) -> str:
  """``n`` bytes as ``'4 bytes'``, ``'1.5 KiB'`` ... ``'149.0 GiB'``."""
  if n < 1024:
    return f"{n} bytes"
  for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
    n /= 1024
    if n < 1024 or unit == "PiB":
      return f"{n:.1f} {unit}"
  raise AssertionError("unreachable")


def _is_count(v: Any) -> bool:
  return isinstance(v, int) and not isinstance(v, bool) and v >= 0


class _StorageType:
  """Stands in for ``torch.FloatStorage`` etc.: only carries the dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _np_dtype(name)


class _Storage:
  """A flat buffer as the pickle declares it; ``data`` is filled from the file later."""

  def __init__(self, key: str, dtype: np.dtype, numel: int):
    self.key, self.dtype, self.numel = key, dtype, numel
    self.data: np.ndarray | None = None

  @property
  def nbytes(self) -> int:
    return self.numel * self.dtype.itemsize


class _View:
  """A legacy-format storage view: elements ``[offset, offset + numel)`` of ``base``."""

  def __init__(self, base: _Storage, offset: int, numel: int):
    self.base, self.offset, self.numel = base, offset, numel


class _TensorRef:
  """A tensor as declared by the pickle: storage, element offset, size and stride."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, offset
    self.size, self.stride = tuple(size), tuple(stride)

  @property
  def base(self) -> _Storage:
    return self.storage.base if isinstance(self.storage, _View) else self.storage

  def check(self) -> None:
    """Raises ``InputError`` (no path, no key) unless the tensor lies inside its storage."""
    if not isinstance(self.storage, (_Storage, _View)):
      raise InputError(f"tensor without a storage ({type(self.storage).__name__})")
    if not (_is_count(self.offset) and all(map(_is_count, self.size))
            and all(map(_is_count, self.stride)) and len(self.size) == len(self.stride)):
      raise InputError(f"tensor with an invalid offset {self.offset!r}, size {self.size!r} or "
                       f"stride {self.stride!r} (corrupt file)")
    if math.prod(self.size) == 0:
      return
    avail = self.storage.numel
    extent = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride))
    if extent > avail:
      raise InputError(f"size {self.size} (stride {self.stride}, offset {self.offset}) "
                       f"reaches element {extent} of a {avail}-element storage (truncated or "
                       f"corrupt file)")

  @property
  def nbytes(self) -> int:
    return math.prod(self.size) * self.base.dtype.itemsize

  def materialise(self) -> np.ndarray:
    """A contiguous copy (call ``check`` first; the storage's ``data`` must be loaded)."""
    base = self.base
    offset = self.offset + (self.storage.offset if isinstance(self.storage, _View) else 0)
    if math.prod(self.size) == 0:
      return np.zeros(self.size, base.dtype)
    item = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(base.data[offset:], shape=self.size,
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


class _RestrictedUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
  """Resolves only the globals of ``_ALLOWED`` and the storage types; refuses everything else.

  The pure-Python unpickler, not the C one: the C unpickler sizes its memo table from the index
  an opcode names (``LONG_BINPUT 1902471009`` makes it allocate and zero 15 GB), and allocates
  the declared length of a bytes object before reading it. Here the memo is a dict and reads
  are bounded by the bytes present; state-dict pickles are small, so the speed does not matter.
  """

  def _refuse_bytearray(self):
    # The pure unpickler allocates the declared length first; a state dict has no bytearray.
    raise pickle.UnpicklingError("a bytearray, which a state dict does not hold")

  def _load_global(self):
    # As pickle's, but a name cut short by the end of the file is a truncation, not a
    # reference to some other (refused) global.
    module, name = self.readline(), self.readline()
    if not (module.endswith(b"\n") and name.endswith(b"\n")):
      raise pickle.UnpicklingError("pickle data was truncated")
    self.append(self.find_class(module[:-1].decode("utf-8"), name[:-1].decode("utf-8")))

  dispatch = dict(pickle._Unpickler.dispatch)  # pylint: disable=protected-access
  dispatch[pickle.BYTEARRAY8[0]] = _refuse_bytearray
  dispatch[pickle.GLOBAL[0]] = _load_global

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


def _storage_id(path, pid, length: int) -> tuple:
  """``pid`` checked to be ``('storage', StorageType, key, location, numel[, view])``."""
  if not isinstance(pid, tuple) or len(pid) < length or pid[0] != "storage":
    raise InputError(f"{path}: refusing to load: unsupported persistent object {str(pid)[:80]}")
  if not isinstance(pid[1], _StorageType):
    raise InputError(f"{path}: refusing to load: unsupported storage type {pid[1]!r}")
  if not _is_count(pid[4]):
    raise InputError(f"{path}: storage {str(pid[2])!r} declares {pid[4]!r} elements (corrupt "
                     f"file)")
  return pid


# ----------------------------------------------------------------------------
# Tensors: every one checked, then the storages they use loaded, then copied out.


def _tensors(obj: Any, where: str, seen: set[int], out: list[tuple[str, _TensorRef]]) -> None:
  """Appends ``(key path, tensor)`` for each distinct tensor in ``obj`` (shared ones once)."""
  if id(obj) in seen:
    return
  if isinstance(obj, _TensorRef):
    seen.add(id(obj))
    out.append((where or "<top level>", obj))
  elif isinstance(obj, dict):
    seen.add(id(obj))
    for k, v in obj.items():
      _tensors(v, f"{where}/{k}" if where else str(k), seen, out)
  elif isinstance(obj, (list, tuple)):
    seen.add(id(obj))
    for i, v in enumerate(obj):
      _tensors(v, f"{where}/{i}" if where else str(i), seen, out)


def _rebuild(obj: Any, arrays: dict[int, np.ndarray], memo: dict[int, Any]) -> Any:
  """``obj`` with every tensor replaced by its array (shared containers rebuilt once)."""
  if isinstance(obj, _TensorRef):
    return arrays[id(obj)]
  if id(obj) in memo:
    return memo[id(obj)]
  if isinstance(obj, dict):
    out = memo[id(obj)] = {}
    for k, v in obj.items():
      out[k] = _rebuild(v, arrays, memo)
    return out
  if isinstance(obj, list):
    out = memo[id(obj)] = []
    out.extend(_rebuild(v, arrays, memo) for v in obj)
    return out
  if isinstance(obj, tuple):
    out = memo[id(obj)] = tuple(_rebuild(v, arrays, memo) for v in obj)
    return out
  return obj


def _materialise(obj: Any, path: pathlib.Path,
                 load: Callable[[_Storage, str], None] | None = None) -> Any:
  """Checks every tensor against its storage, loads the storages (``load(storage, key)`` for
  ones not loaded yet), checks the total against the bytes loaded, and copies the tensors."""
  refs: list[tuple[str, _TensorRef]] = []
  _tensors(obj, "", set(), refs)
  for where, ref in refs:
    try:
      ref.check()
    except InputError as e:
      raise InputError(f"{path}: tensor {where!r}: {e}") from None
    base = ref.base
    if base.data is None and load is not None:
      load(base, where)
    if base.data is None:
      raise InputError(f"{path}: tensor {where!r}: its storage {base.key!r} is missing from "
                       f"the file (truncated or corrupt file)")
  loaded = {id(ref.base): ref.base.nbytes for _, ref in refs}
  storage_bytes = sum(loaded.values())
  budget = 2 * storage_bytes + _SLACK_BYTES
  arrays: dict[int, np.ndarray] = {}
  for where, ref in refs:
    if ref.nbytes > budget:
      dtype = ref.base.dtype.name
      raise InputError(
          f"{path}: tensor {where!r} declares {'x'.join(map(str, ref.size))} {dtype} "
          f"({_human(ref.nbytes)}), more than the file's {_human(storage_bytes)} of tensor data "
          f"can fill (corrupt or crafted file)")
    budget -= ref.nbytes
    arrays[id(ref)] = ref.materialise()
  return _rebuild(obj, arrays, {})


# ----------------------------------------------------------------------------
# The two layouts.


def _read_zip(path: pathlib.Path) -> Any:
  with zipfile.ZipFile(path) as zf:
    infos = {info.filename: info for info in zf.infolist()}
    pkl = [n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
      raise InputError(f"{path}: not a torch.save archive (no single data.pkl)")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in infos:
      byteorder = zf.read(prefix + "byteorder").decode("ascii").strip() or "little"
    if byteorder not in ("little", "big"):
      raise InputError(f"{path}: unknown byte order {byteorder[:20]!r} (corrupt file)")
    storages: dict[str, _Storage] = {}

    def persistent_load(pid):
      _, stype, key, _, numel = _storage_id(path, pid, 5)[:5]
      key = str(key)
      if key not in storages:
        storages[key] = _Storage(key, stype.dtype, numel)
      elif storages[key].dtype != stype.dtype or storages[key].numel != numel:
        raise InputError(f"{path}: storage {key!r} is declared twice with different types or "
                         f"sizes (corrupt file)")
      return storages[key]

    def load(storage: _Storage, where: str) -> None:
      member = f"{prefix}data/{storage.key}"
      info = infos.get(member)
      if info is None:
        raise InputError(f"{path}: tensor {where!r}: its storage {member} is missing from the "
                         f"archive (truncated or corrupt file)")
      need = storage.nbytes
      if info.file_size < need:
        raise InputError(
            f"{path}: tensor {where!r}: storage {member} declares {storage.numel} "
            f"{storage.dtype.name} elements ({_human(need)}) but the archive holds "
            f"{_human(info.file_size)} (truncated or corrupt file)")
      with zf.open(info) as fh:
        raw = fh.read(need)
      if len(raw) != need:
        raise InputError(f"{path}: tensor {where!r}: storage {member} is truncated")
      dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
      storage.data = np.frombuffer(raw, dtype).astype(storage.dtype)

    obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path, persistent_load).load()
    return _materialise(obj, path, load)


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
    _, stype, key, _, numel, view = _storage_id(path, pid, 6)[:6]
    key = str(key)
    if key not in storages:
      storages[key] = _Storage(key, stype.dtype, numel)
    storage = storages[key]
    if view is None:
      return storage
    if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1])
            and _is_count(view[2]) and view[1] + view[2] <= storage.numel):
      raise InputError(f"{path}: storage {key!r}: invalid view {str(view)[:80]} of "
                       f"{storage.numel} elements (corrupt file)")
    return _View(storage, view[1], view[2])

  result = _RestrictedUnpickler(f, path, persistent_load).load()
  keys = plain_load()
  if not isinstance(keys, list):
    raise InputError(f"{path}: corrupt legacy weights file (no storage list)")
  # Name each storage by the first tensor that uses it.
  refs: list[tuple[str, _TensorRef]] = []
  _tensors(result, "", set(), refs)
  owner: dict[int, str] = {}
  for where, ref in refs:
    if isinstance(ref.storage, (_Storage, _View)):
      owner.setdefault(id(ref.base), where)
  for key in keys:
    storage = storages.get(str(key))
    if storage is None:
      raise InputError(f"{path}: corrupt legacy weights file (unknown storage {str(key)[:40]!r})")
    what = f"tensor {owner[id(storage)]!r}: storage {storage.key!r}" if id(storage) in owner \
        else f"storage {storage.key!r}"
    header = f.read(8)
    if len(header) != 8:
      raise InputError(f"{path}: {what}: missing from the file (truncated file)")
    numel = int.from_bytes(header, "little", signed=True)
    if numel != storage.numel:
      raise InputError(f"{path}: {what}: holds {numel} elements where the pickle declared "
                       f"{storage.numel} (corrupt file)")
    need, left = storage.nbytes, len(data) - f.tell()
    if need > left:
      raise InputError(f"{path}: {what}: declares {numel} {storage.dtype.name} elements "
                       f"({_human(need)}) but only {_human(left)} remain in the file (truncated "
                       f"or corrupt file)")
    raw = f.read(need)
    storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<")).astype(storage.dtype)
  return _materialise(result, path)


def _refuse_pid(path, pid):
  raise InputError(f"{path}: refusing to load: unexpected persistent object {str(pid)[:80]}")


def file_head(path: pathlib.Path, n: int) -> bytes:
  """The first ``n`` bytes of a weights file that exists, can be read and is not empty.

  Raises:
    InputError: the file is missing, unreadable or empty.
  """
  if not path.is_file():
    raise InputError(f"{path}: no such weights file")
  try:
    size = path.stat().st_size
    with open(path, "rb") as fh:
      head = fh.read(n)
  except OSError as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
  if size == 0:
    raise InputError(f"{path}: empty file (0 bytes)")
  return head


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
  """Reads a ``torch.save`` file into nested dicts of numpy arrays, never executing its code.

  Args:
    path: a ``.pth``/``.pt`` file (zip or legacy format), or a ``.safetensors`` file (read by
      :mod:`jaxsr.convert.safetensors_io`, recognised by its header, not its name).

  Returns:
    The saved object with every tensor as a numpy array (a ``dict``).

  Raises:
    InputError: a missing, empty, truncated, corrupt or unsupported file, a declared size that
      the file cannot hold, or one that references code.
  """
  path = pathlib.Path(path)
  head = file_head(path, 16)
  if safetensors_io.is_safetensors(head):
    return safetensors_io.read_safetensors(path)
  try:
    if head.startswith(b"PK"):
      if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: truncated or corrupt PyTorch weights file (a zip archive "
                         f"without its central directory)")
      obj = _read_zip(path)
    else:
      obj = _read_legacy(path)
  except InputError:
    raise
  except (PermissionError, FileNotFoundError) as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
  except (*_CORRUPT, OSError) as e:  # OSError here: a seek to a bad offset in a damaged zip
    detail = str(e).splitlines()[0] if str(e) else ""
    kind = type(e).__name__ if type(e).__name__ != "error" else f"{type(e).__module__}.error"
    raise InputError(f"{path}: truncated or corrupt PyTorch weights file ({kind}"
                     f"{': ' + detail[:120] if detail else ''})") from None
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
