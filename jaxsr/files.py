"""Paths that may be local or remote, and writing output files whole or not at all.

Contract:
  * ``as_path(p)``: ``str`` / ``os.PathLike`` / ``epath.Path`` -> ``epath.Path``. Local paths
    have ``~`` expanded; URIs (``gs://bucket/x``, ``s3://``, and any scheme registered with
    ``epath.register_path_cls``) are kept as they are and go through ``tf.io.gfile`` (or
    fsspec). An unknown scheme raises ``InputError`` in one line naming the path.
  * ``to_path(p)``: ``pathlib.Path`` for a local path (unchanged: no ``~`` expansion), else
    ``as_path(p)``: where the library kept ``pathlib.Path`` for local paths, it still does.
  * ``split_paths(text)``: an ``os.pathsep``-joined list (``$JAXSR_DATA_DIR``) split without
    breaking ``gs://`` URIs.
  * ``is_local(p)``: whether ``p`` is a path on this machine's file system (no ``scheme://``).
    Checks that only mean something locally (free disk space, ``os.access``, ``fsync``, errno
    texts, file locks) run only for local paths.
  * ``check_reachable(p, field=...)``: for a remote path, asks its file system whether ``p``
    exists, giving up after ``JAXSR_REMOTE_TIMEOUT`` seconds (default 60): TensorFlow's GCS
    client retries an unreachable ``gs://`` (no network, no credentials) for minutes, so an
    unanswered probe becomes one ``InputError`` line naming the path instead of a hang. Local
    paths return at once. Returns ``as_path(p)``.
  * ``write_atomic(path, write)`` calls ``write(f)`` on a binary file and makes the result
    visible whole or not at all. Local paths: the file is opened at a temporary sibling of
    ``path`` (a dot-name in the same folder, so the rename stays on one file system), then
    renamed over ``path``: a reader sees the old file or the new one, never a part; on any
    error the temporary file is removed and the error is raised as it is (callers turn it into
    their one-line message); ``sync=True`` also flushes the data to disk before the rename.
    Remote paths (object stores): ``write`` fills a memory buffer, then the object is written
    in one upload, which an object store publishes whole when it is closed (a failing
    ``write`` publishes nothing); ``sync`` has no meaning there. Returns ``path`` (a ``pathlib.Path`` for local input, as
    before; an ``epath.Path`` otherwise).
  * ``io_errors()``: the exception types a failed read or write raises (``OSError``, plus
    ``tf.errors.OpError`` once TensorFlow is loaded), for ``except files.io_errors():``.
  * ``save_png(path, image)``: a uint8 ``[H, W, 1|3]`` image as PNG, through ``write_atomic``.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import sys
import threading
from typing import BinaryIO, Callable

import numpy as np
from etils import epath

from jaxsr.errors import InputError

__all__ = ["as_path", "check_reachable", "io_errors", "is_local", "save_png", "split_paths", "to_path",
           "write_atomic"]

PathLike = str | os.PathLike | epath.Path

_TIMEOUT_ENV = "JAXSR_REMOTE_TIMEOUT"


def is_local(path: PathLike) -> bool:
  """Whether ``path`` names a file on this machine (no ``scheme://`` prefix)."""
  return "://" not in os.fspath(path)


def as_path(path: PathLike, *, field: str | None = None) -> epath.Path:
  """``path`` as an ``epath.Path`` (``~`` expanded for local paths).

  Raises:
    InputError: the path has a scheme no file system here knows (``field`` names the option).
  """
  if isinstance(path, epath.Path) and not is_local(path):
    return path
  text = os.fspath(path)
  if is_local(text):
    return epath.Path(os.path.expanduser(text))
  try:
    return epath.Path(text)
  except (KeyError, NotImplementedError, TypeError):
    scheme = text.split("://", 1)[0]
    raise InputError(f"{text}: unknown file system '{scheme}://' (local paths and gs:// "
                     "are supported)", field=field) from None


def to_path(path: PathLike, *, field: str | None = None) -> pathlib.Path | epath.Path:
  """A local path as ``pathlib.Path`` (exactly as before: no ``~`` expansion), a remote one as
  ``epath.Path`` (``InputError`` for an unknown scheme)."""
  return pathlib.Path(path) if is_local(path) else as_path(path, field=field)


def split_paths(text: str) -> list[str]:
  """A list of paths joined by ``os.pathsep`` (an environment variable), keeping the ``:`` of
  ``scheme://`` URIs: ``'gs://b/x:/data'`` -> ``['gs://b/x', '/data']``."""
  if os.pathsep != ":":
    return text.split(os.pathsep)
  return re.split(r":(?!//)", text)


def _timeout() -> float:
  try:
    return max(0.1, float(os.environ.get(_TIMEOUT_ENV, "60")))
  except ValueError:
    return 60.0


def check_reachable(path: PathLike, *, field: str | None = None) -> epath.Path:
  """Fails fast, in one line, when a remote ``path``'s file system does not answer.

  Raises:
    InputError: an unknown scheme, an error from the file system (credentials, a missing
      bucket), or no answer within ``JAXSR_REMOTE_TIMEOUT`` seconds.
  """
  p = as_path(path, field=field)
  if is_local(p):
    return p
  result: list = []

  def probe():
    try:
      result.append(p.exists())
    except BaseException as e:  # pylint: disable=broad-except
      result.append(e)

  thread = threading.Thread(target=probe, name=f"jaxsr-probe-{p}", daemon=True)
  thread.start()
  thread.join(_timeout())
  if not result:
    raise InputError(f"{p}: no answer from its file system within {_timeout():g} s (no network "
                     f"or no credentials? set {_TIMEOUT_ENV} to wait longer)", field=field)
  if isinstance(result[0], BaseException):
    e = result[0]
    lines = str(e).strip().splitlines()
    raise InputError(f"{p}: cannot reach it ({type(e).__name__}: {lines[0][:200] if lines else ''})",
                     field=field)
  return p


def io_errors() -> tuple[type[BaseException], ...]:
  """The exception types a failed read/write raises: ``OSError`` and, once TensorFlow is
  loaded (remote paths go through ``tf.io.gfile``), ``tf.errors.OpError``.

  Use as ``except files.io_errors() as e:``; TensorFlow is not imported here.
  """
  tf = sys.modules.get("tensorflow")
  op_error = getattr(getattr(tf, "errors", None), "OpError", None)
  return (OSError, op_error) if isinstance(op_error, type) else (OSError,)


def write_atomic(path: PathLike, write: Callable[[BinaryIO], object], *,
                 sync: bool = False) -> pathlib.Path | epath.Path:
  """Writes ``path`` whole or not at all (see the module contract); returns ``path``."""
  if not is_local(path):
    target = as_path(path)
    buffer = io.BytesIO()  # a failing ``write`` must not publish a partial object
    write(buffer)
    target.write_bytes(buffer.getvalue())
    return target
  path = pathlib.Path(path)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      write(f)
      if sync:
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise
  return path


def save_png(path: PathLike, image: np.ndarray) -> pathlib.Path | epath.Path:
  """Writes a uint8 ``[H, W, 1|3]`` image as a PNG file, whole or not at all."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  return write_atomic(path, lambda f: pil.save(f, format="PNG"))
