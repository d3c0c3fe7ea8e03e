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
  * Arrays must be fully replicated (jaxsr's data-parallel states are), so every host can
    checksum its own copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

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


class CheckpointManager:
  """Saves and restores ``(state pytree, meta dict)`` per step, verifying checksums on restore.

  Args:
    directory: where steps are written (created if missing).
    max_to_keep: keep the last K steps.
    async_save: write in the background (``wait_until_finished`` to block).
  """

  def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3,
               async_save: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=async_save))

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, *, meta: dict | None = None, force: bool = True) -> None:
    """Saves ``state`` at ``step`` with ``meta`` and the per-leaf checksums."""
    meta = dict(meta or {})
    meta["checksums"] = checksums(state)
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     meta=ocp.args.JsonSave(meta)), force=force)

  def read_meta(self, step: int) -> dict:
    """The JSON metadata of one step (no array is read)."""
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def _quarantine(self, step: int) -> pathlib.Path | None:
    """Moves a bad step out of the way (kept for inspection) so the run can save it again."""
    source = self.directory / str(step)
    if jax.process_index() != 0 or not source.exists():
      return None
    dest_root = self.directory.parent / (self.directory.name + "-corrupt")
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / f"{step}-{int(time.time())}"
    shutil.move(str(source), str(dest))
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
      moved = self._quarantine(s) if quarantine and step is None else None
      if moved is not None:
        problem += f" (moved to {moved})"
      _log.warning("%s; trying an earlier step", problem)
      problems.append(problem)
    raise CheckpointError("no intact checkpoint: " + "; ".join(problems))

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


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

  directory = pathlib.Path(directory)
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
