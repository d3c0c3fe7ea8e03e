"""Orbax checkpoints that are verified on restore.

Contract:
  * A checkpoint directory holds Orbax steps ``<dir>/<step>/{state,meta}``. ``state`` is any
    pytree of arrays (a train state as a nested dict); ``meta`` is JSON: the caller's metadata
    (config, model name, scale, ...) plus ``checksums``, a sha256 per leaf of the state, keyed
    by the leaf's path, computed on the host from the exact bytes that are saved.
  * Saves are asynchronous (Orbax copies the arrays to the host, then writes in a background
    thread); killed saves leave no committed step and are ignored by Orbax.
  * ``restore`` returns the latest step whose arrays match their checksums. A step whose files
    are truncated, unreadable or whose bytes were corrupted (Orbax restores those silently with
    wrong values) is reported with a warning naming the step and the first bad leaf, and the
    previous step is tried. No good step at all raises ``CheckpointError``.
  * Rotation keeps the last ``max_to_keep`` steps and, besides them, the step marked with
    ``protect`` (the training loop marks the newest step whose following losses passed its
    guards): rotation never deletes it. The mark is kept in ``<dir>/protected_step.json`` and
    survives restarts; marking another step releases the previous one.
  * A save that cannot be written (a full disk, no permission) raises ``CheckpointError`` in
    one line naming the step, the directory and the last step already committed, which stays
    intact; the half-written temporary step is removed. ``save`` checks before writing that the
    disk has room for the step (its arrays' bytes plus a margin).
  * ``directory`` may be remote (``gs://bucket/run/checkpoints``): Orbax writes the arrays
    through tensorstore and the JSON through ``etils.epath``; the protected-step file, the
    clean-up of partial steps and quarantine go through ``etils.epath`` too. The free-space
    check and disk-full messages apply to local directories only. (tensorstore does not know
    TensorFlow's ``ram://``, so checkpoints cannot live there.) Orbax's ``gs://`` support needs
    the ``google-cloud-storage`` package; without it the manager raises ``CheckpointError``.
  * Arrays must be fully replicated (jaxsr's data-parallel states are), so every host can
    checksum its own copy.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil
import time
from typing import Any, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxsr import files

__all__ = ["CheckpointError", "CheckpointManager", "checksums", "params_sha256"]

_log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
  """No usable checkpoint (all corrupt), or a checkpoint that does not fit the run."""


def _leaf_key(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _leaf_bytes(leaf: Any) -> np.ndarray:
  return np.ascontiguousarray(np.asarray(jax.device_get(leaf)))


def checksums(tree: Any) -> dict[str, str]:
  """``{leaf path: sha256 of dtype, shape and bytes}`` for every leaf of ``tree``."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    array = _leaf_bytes(leaf)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    out[_leaf_key(path)] = digest.hexdigest()
  return out


def params_sha256(params: Any) -> str:
  """One sha256 over the parameters' bytes, leaves in sorted path order (for summaries)."""
  digest = hashlib.sha256()
  flat = {_leaf_key(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  for key in sorted(flat):
    digest.update(key.encode())
    digest.update(_leaf_bytes(flat[key]).tobytes())
  return digest.hexdigest()


_PROTECTED_FILE = "protected_step.json"
_FREE_MARGIN_BYTES = 1 << 20  # beyond a step's array bytes: metadata, JSON, file-system blocks


def is_disk_full(error: BaseException) -> bool:
  """Whether ``error`` or an exception it was raised from is ENOSPC / EDQUOT (any wrapping)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    text = str(error)
    if "No space left on device" in text or "Disk quota exceeded" in text:
      return True
    error = error.__cause__ or error.__context__
  return False


def _first_line(error: BaseException) -> str:
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


@dataclasses.dataclass
class _KeepProtected:
  """An Orbax preservation policy: keeps the one step in ``step`` (None: none)."""

  step: int | None = None

  def should_preserve(self, checkpoints: Sequence[Any], *, context: Any) -> list[bool]:
    del context
    return [c.step == self.step for c in checkpoints]


class CheckpointManager:
  """Saves and restores ``(state pytree, meta dict)`` per step, verifying checksums on restore.

  Args:
    directory: where steps are written (created if missing).
    max_to_keep: keep the last K steps (and the ``protect``-ed one).
    async_save: write in the background (``wait_until_finished`` to block).
  """

  def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3,
               async_save: bool = True):
    self.directory = (pathlib.Path(directory).absolute() if files.is_local(directory)
                      else files.as_path(directory))
    self._protected = _KeepProtected(self._read_protected())
    policy = ocp.checkpoint_managers.AnyPreservationPolicy(
        [ocp.checkpoint_managers.LatestN(n=max_to_keep), self._protected])
    try:
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(create=True, preservation_policy=policy,
                                               enable_async_checkpointing=async_save))
    except ImportError as e:  # Orbax's gs:// support imports google-cloud-storage
      if files.is_local(self.directory):
        raise
      raise CheckpointError(f"{self.directory}: Orbax needs another package for remote "
                            f"checkpoints ({_first_line(e)}); pip install "
                            "google-cloud-storage") from None
    self._saving: int | None = None  # the step of a save that may still be in flight

  def _read_protected(self) -> int | None:
    try:
      return int(json.loads((self.directory / _PROTECTED_FILE).read_text())["step"])
    except (files.io_errors() + (ValueError, KeyError, TypeError)):
      return None

  @property
  def protected_step(self) -> int | None:
    """The step rotation never deletes (``protect``), or None."""
    return self._protected.step

  def protect(self, step: int) -> None:
    """Keeps ``step`` out of rotation (releasing the previously protected step)."""
    if step == self._protected.step:
      return
    self._protected.step = int(step)
    if jax.process_index() == 0:
      try:
        files.write_atomic(self.directory / _PROTECTED_FILE,
                           lambda f: f.write(json.dumps({"step": int(step)}).encode()))
      except files.io_errors() as e:
        raise self._write_error(step, e, action="marking the last good step") from None

  def _last_committed(self, *, before: int | None = None) -> int | None:
    steps = [s for s in self.all_steps() if before is None or s < before]
    return steps[-1] if steps else None

  def _write_error(self, step: int, error: BaseException, *, action: str) -> "CheckpointError":
    good = self._last_committed(before=step)
    where = (f"the last good checkpoint is step {good} in {self.directory}" if good is not None
             else "no checkpoint had been saved yet")
    if is_disk_full(error) and files.is_local(self.directory):
      try:
        free = f", {shutil.disk_usage(self.directory).free} bytes free"
      except OSError:
        free = ""
      what = f"the disk is full{free}"
    else:
      what = _first_line(error)
    return CheckpointError(f"{action} step {step} in {self.directory} failed: {what}; {where}")

  def _remove_partial(self, step: int) -> None:
    """Deletes the temporary folders a failed save of ``step`` left (never a committed step)."""
    if jax.process_index() != 0:
      return
    try:
      for path in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
        if files.is_local(path):
          shutil.rmtree(path, ignore_errors=True)
        else:
          path.rmtree(missing_ok=True)
    except files.io_errors() as e:
      _log.warning("could not remove the partial step %d in %s: %s", step, self.directory,
                   _first_line(e))

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, *, meta: dict | None = None, force: bool = True) -> None:
    """Saves ``state`` at ``step`` with ``meta`` and the per-leaf checksums.

    Raises:
      CheckpointError: the disk has no room for the step, or writing it (or finishing the
        previous asynchronous save) failed; nothing of the failed step is left behind.
    """
    self.wait_until_finished()  # a failure of the previous save is reported as that step's
    meta = dict(meta or {})
    meta["checksums"] = checksums(state)
    needed = sum(_leaf_bytes(x).nbytes for x in jax.tree.leaves(state)) + _FREE_MARGIN_BYTES
    try:  # local only: an object store has no notion of free space
      free = shutil.disk_usage(self.directory).free if files.is_local(self.directory) else None
    except OSError:
      free = None
    if free is not None and free < needed:
      raise self._write_error(step, OSError(errno.ENOSPC, "No space left on device"),
                              action="saving") from None
    self._saving = step
    try:
      self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       meta=ocp.args.JsonSave(meta)), force=force)
    except Exception as e:  # pylint: disable=broad-except
      self._failed(step, e)

  def read_meta(self, step: int) -> dict:
    """The JSON metadata of one step (no array is read)."""
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def quarantine(self, step: int, *, reason: str = "corrupt") -> pathlib.Path | epath.Path | None:
    """Moves a step out of the way, kept for inspection, so the run can save that step again.

    The step goes to ``<directory>-corrupt/<step>-<reason>-<time>``; returns that path (None
    on processes other than 0, or when the step is not there).
    """
    source = self.directory / str(step)
    if jax.process_index() != 0 or not source.exists():
      return None
    dest_root = self.directory.parent / (self.directory.name + "-corrupt")
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / f"{step}-{reason}-{int(time.time())}"
    if files.is_local(source):
      shutil.move(str(source), str(dest))
    else:  # an object store renames object by object (tf.io.gfile copies a folder's objects)
      _move_tree(source, dest)
    self._manager.reload()
    return dest

  def restore(self, target: Any = None, *, step: int | None = None,
              quarantine: bool = True) -> tuple[int, Any, dict] | None:
    """Restores the latest good step (or ``step``), falling back past corrupt ones.

    Args:
      target: a pytree with the state's structure (arrays or ``ShapeDtypeStruct``), used to
        restore with the right shapes and shardings; None restores as saved.
      step: restore exactly this step (still verified); default: the latest good one.
    quarantine: when searching for the latest good step, move bad steps to
      ``<directory>-corrupt/<step>-<time>`` (so training can write that step again).

    Returns:
      ``(step, state, meta)``, or None when the directory holds no checkpoint.

    Raises:
      CheckpointError: checkpoints exist but none is intact.
    """
    steps = [step] if step is not None else sorted(self.all_steps(), reverse=True)
    if not steps:
      return None
    problems = []
    for s in steps:
      try:
        abstract = None
        if target is not None:
          abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self._manager.restore(
            s, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                       meta=ocp.args.JsonRestore()))
        state, meta = restored.state, dict(restored.meta)
      except Exception as e:  # pylint: disable=broad-except
        problem = f"step {s} in {self.directory} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
      else:
        want = meta.pop("checksums", None)
        got = checksums(state)
        bad = None if want is None else next(
            (k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)), None)
        if want is None:
          problem = f"step {s} in {self.directory} has no checksums"
        elif bad is not None:
          problem = f"step {s} in {self.directory} is corrupt (checksum mismatch in {bad})"
        else:
          if problems:
            _log.warning("restored step %d after skipping: %s", s, "; ".join(problems))
          return s, state, meta
      moved = self.quarantine(s) if quarantine and step is None else None
      if moved is not None:
        problem += f" (moved to {moved})"
      _log.warning("%s; trying an earlier step", problem)
      problems.append(problem)
    raise CheckpointError("no intact checkpoint: " + "; ".join(problems))

  def _failed(self, step: int, error: BaseException) -> None:
    self._saving = None
    try:  # let Orbax's background threads end before cleaning up after them
      self._manager.wait_until_finished()
    except Exception:  # pylint: disable=broad-except
      pass
    self._remove_partial(step)
    if isinstance(error, CheckpointError):
      raise error
    raise self._write_error(step, error, action="saving") from None

  def wait_until_finished(self) -> None:
    """Blocks until the asynchronous save is written.

    Raises:
      CheckpointError: it failed (one line: the step, why, and the last good step).
    """
    step, self._saving = self._saving, None
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if step is None:
        raise
      self._failed(step, e)

  def close(self) -> None:
    """Waits for the last save (raising ``CheckpointError`` if it failed) and closes."""
    try:
      self.wait_until_finished()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        pass


def _move_tree(source: epath.Path, dest: epath.Path) -> None:
  """Moves a remote folder: copies every object under ``source`` to ``dest``, then deletes it."""
  for root, _, names in source.walk():
    target = dest / root.relative_to(source) if root != source else dest
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
      (root / name).copy(target / name, overwrite=True)
  source.rmtree()


def save_model(directory: str | os.PathLike, variables: dict, *, model: str, scale: int,
               overrides: dict | None = None, extra: dict | None = None, step: int = 0) -> None:
  """Saves model variables (e.g. imported weights) as a jaxsr checkpoint ``load_model`` reads.

  Args:
    directory: checkpoint directory (Orbax layout, one step).
    variables: ``{'params': ..., ['batch_stats': ...]}``.
    model, scale, overrides: how ``jaxsr.models.get_model`` rebuilds the module.
    extra: more JSON metadata (e.g. the source file of imported weights).
    step: the step number to save under.
  """
  manager = CheckpointManager(directory, async_save=False)
  meta = {"model": {"name": model, "scale": int(scale), "overrides": dict(overrides or {})}}
  meta.update(extra or {})
  manager.save(step, dict(variables), meta=meta)
  manager.close()


def load_model(directory: str | os.PathLike, *, use_ema: bool = True):
  """Loads a model from a jaxsr checkpoint (imported weights or a training run's workdir).

  Training checkpoints hold ``params`` and, when EMA is on, ``ema_params``; ``use_ema`` picks
  the EMA weights when present (as published GAN models are evaluated).

  Returns:
    ``(module, variables, meta)``: the Flax module from the registry, ``{'params': ...,
    ['batch_stats': ...]}``, and the checkpoint's metadata (``meta['step']`` is the step).

  Raises:
    CheckpointError: no checkpoint in ``directory``, or none intact.
  """
  from jaxsr import models  # pylint: disable=g-import-not-at-top

  directory = (pathlib.Path(directory) if files.is_local(directory)
               else files.check_reachable(directory, field="checkpoint"))
  for candidate in (directory, directory / "checkpoints"):
    if candidate.is_dir() and CheckpointManager(candidate, async_save=False).all_steps():
      directory = candidate
      break
  else:
    raise CheckpointError(f"{directory}: no jaxsr checkpoint here")
  restored = CheckpointManager(directory, async_save=False).restore()
  step, state, meta = restored
  info = meta.get("model")
  if not info:
    raise CheckpointError(f"{directory}: checkpoint step {step} does not name its model")
  module = models.get_model(info["name"], scale=info["scale"], **info.get("overrides", {}))
  params = state["ema_params"] if use_ema and state.get("ema_params") else state["params"]
  variables = {"params": params}
  if state.get("batch_stats"):
    variables["batch_stats"] = state["batch_stats"]
  meta["step"] = step
  return module, variables, meta
