"""The training loop: any ``jaxsr.tasks`` task on all devices of all hosts, resumable.

Contract:
  * ``train_and_evaluate(config, workdir)`` trains the task ``config.task``
    (``jaxsr.tasks.make_task``) in ``workdir`` and returns the summary dict it also writes to
    ``workdir/summary.json``. It reads every setting as an attribute of ``config`` (the
    recipes of ``jaxsr.recipes`` hold the defaults); a missing field is a one-line
    ``InputError`` before anything runs.
  * The task's step is jit-compiled once over a 1-D ``data`` mesh of all devices of all hosts
    (``jaxsr.parallel``) with the state replicated and donated and the batch sharded. Batches
    ``{'lr': [B, p, p, C], 'hr': [B, s*p, s*p, C]}`` (float32 in [0, 1]; ``hr`` alone for a task
    whose ``needs_lr`` is False: it makes its LR on device) reach the devices in
    stacks of ``config.batches_per_transfer`` (``stack_batches``), the step picking its own
    (``step_on_stack``). No host-side Python runs per step inside it.
  * Guards, checked on the host at every log and checkpoint step before anything is saved: a
    non-finite metric (``FloatingPointError``), or a mean loss over ``config.divergence_factor``
    times the median of the last ``config.divergence_window`` logged means, seeded with the
    run's first loss (``DivergenceError``; the range is saved with each checkpoint, so it
    carries over a resume). Either stops the run; a saved step whose own loss was already bad
    is moved to ``checkpoints-corrupt/``; the message names the step, the loss and the last good
    checkpoint. Once the losses logged after a saved step pass the guards, that step is the
    protected one that checkpoint rotation never deletes (``CheckpointManager.protect``).
  * The work directory: created and checked writable first (``InputError`` naming it), then
    locked for the run (``workdir/train.lock``: an flock plus the owner's host and pid; taken by
    process 0 for all hosts of a run). A second run on it is refused; a lock left by a dead
    process on this host is taken over with a warning; a lock of another host is refused with
    the advice to delete the file if that run is gone.
  * Outputs: a failed write (full disk, permissions) of the TensorBoard events (asynchronous
    failures included, and a read-back of the events file at the end), ``summary.json``,
    ``eval_history.jsonl`` or ``comparison.png`` raises ``OutputError``, and of a checkpoint
    ``jaxsr.checkpoint.CheckpointError``; files are replaced or appended whole or not at all.
  * Resuming: the latest intact checkpoint in ``workdir/checkpoints`` (``jaxsr.checkpoint``)
    is restored and the input pipeline restarts at its step (batch k is a pure function of
    the seed and k), so a run killed at any point and restarted ends with exactly the
    parameters of an uninterrupted run. The topology may change in between: the global batch
    of a step does not depend on the number of processes or devices (``jaxsr.data.pipeline``),
    and the replicated state is restored on the host and placed on the new mesh, so a
    checkpoint of P processes x D devices resumes on any P' x D' whose device count divides
    ``config.batch_size`` (parameters then agree with an uninterrupted run to float rounding
    of the differently split gradient sums; tests/test_parallel.py); with
    ``config.data.order='host'`` (the earlier releases' per-host order) only on the same
    number of processes, any other is refused in one line. The input comes
    from ``config.dataset`` or ``config.data.hr_folder`` (+ ``lr_folder``), in memory or
    streamed (``config.data.mode``). Steps of another model are refused when the directory
    holds no step of this model; otherwise the newer ones are moved aside to
    ``checkpoints-corrupt/<step>-other-model-<time>`` and this model's newest step is used.
  * Preemption: on SIGTERM or SIGINT every host agrees on one step (JAX's preemption sync, the
    one Orbax's ``reached_preemption`` asks, when several processes run; the first step that
    ends after the signal in a single process), saves it synchronously, logs "preempted at
    step N" and raises ``Preempted`` (``jaxsr train`` / ``train.py`` then exit with status 143
    for SIGTERM, 130 for SIGINT). A restart resumes from that step and ends bit-identical to
    an uninterrupted run on the same topology. Further signals during that save are ignored
    until it is complete; a save cut short by SIGKILL is never committed, so never restored.
  * Paths: ``workdir``, ``config.checkpoint_dir`` (default ``<workdir>/checkpoints``) and the
    data folders may be remote (``gs://bucket/...``, anything ``etils.epath`` /
    ``tf.io.gfile`` know); TensorBoard events, ``summary.json``, ``eval_history.jsonl`` and
    ``comparison.png`` then go there through ``tf.io.gfile`` and the checkpoints through
    Orbax/tensorstore. An unreachable remote path is one ``InputError`` line (bounded by
    ``JAXSR_REMOTE_TIMEOUT``, ``jaxsr.files.check_reachable``). Purely local matters stay
    local: the work-directory lock and fsync (an object store has neither: a remote work
    directory is not locked) and free-space checks.
  * It logs with clu (TensorBoard scalars and images, steps/s and ETA) and evaluates
    periodically and at the end with ``jaxsr.eval_lib``.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import math
import os
import pathlib
import signal
import socket
import threading
import time
from typing import Callable, Iterable, Iterator

import jax
import ml_collections
import numpy as np
from etils import epath
from PIL import Image

from jaxsr import checkpoint as ckpt_lib
from jaxsr import data as jaxsr_data
from jaxsr import eval_lib
from jaxsr import files
from jaxsr import loading
from jaxsr import zoo
from jaxsr import parallel
from jaxsr import tasks
from jaxsr.errors import InputError

__all__ = ["DivergenceError", "OutputError", "PREEMPTED_EXIT_BASE", "Preempted", "stack_batches",
           "step_on_stack", "train_and_evaluate"]

_log = logging.getLogger(__name__)

Path = pathlib.Path | epath.Path  # a local work directory / a remote one (gs://)


# ----------------------------------------------------------------------------- loop helpers


_IDENTITY_FIELDS = ("model", "scale", "model_overrides")


def _identity(config: ml_collections.ConfigDict) -> dict:
  """What a checkpoint must agree on with the config to be resumed (JSON-compatible)."""
  return json.loads(json.dumps({"model": config.model, "scale": config.scale,
                                "model_overrides": dict(config.model_overrides or {})}))


def _mismatch(meta: dict, identity: dict) -> str | None:
  """How a checkpoint's identity differs from the config's ('scale: checkpoint 2 vs ...')."""
  saved = meta.get("identity")
  if saved is None or saved == identity:
    return None
  return ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {identity.get(k)!r}"
                   for k in _IDENTITY_FIELDS if saved.get(k) != identity.get(k))


def _check_resume(meta: dict, identity: dict, directory: Path) -> None:
  diff = _mismatch(meta, identity)
  if diff is not None:
    raise InputError(f"{directory}: refusing to resume a different model ({diff}); "
                     "use a new --workdir")


def _check_resume_order(meta: dict, order: str, directory: Path) -> None:
  """config.data.order='host' resumes only on the process count that wrote the checkpoint."""
  from jaxsr.data import pipeline  # pylint: disable=g-import-not-at-top
  try:
    pipeline.check_resume_order(order, process_count=jax.process_count(),
                                saved_process_count=(meta.get("data") or {}).get("process_count"))
  except InputError as e:
    raise InputError(f"{directory}: {e.message}", field=f"config.data.{e.field}") from None


def _eval_names(config: ml_collections.ConfigDict) -> list[str]:
  """``config.eval_datasets`` ('set5,set14'; '' for none) as a list."""
  return [d.strip() for d in str(config.eval_datasets or "").split(",") if d.strip()]


def _pipeline_kwargs(config: ml_collections.ConfigDict, *, channels: int,
                     with_lr: bool = True) -> dict:
  """``jaxsr.data.train_dataset``'s arguments but the start and number of steps.

  ``with_lr``: the task's ``needs_lr`` (False: HR crops only, the same ones).
  """
  data = config.data
  kwargs = dict(name=config.dataset, y_channel=channels == 1, with_lr=bool(with_lr),
                hr_rescales=tuple(config.hr_rescales), batch_size=int(config.batch_size),
                seed=int(config.seed), data_dir=config.data_dir, manual_dir=config.manual_dir,
                mode=str(data.mode), shards=int(data.shards) or None,
                order=str(data.get("order", "global")),
                hr_folder=data.hr_folder, lr_folder=data.lr_folder)
  if data.mode == "stream":
    kwargs.update(memory_limit_mb=float(data.memory_limit_mb),
                  shuffle_buffer=int(data.shuffle_buffer),
                  crops_per_image=int(data.crops_per_image))
  if config.train_scales:
    kwargs.update(scale=tuple(int(s) for s in config.train_scales),
                  hr_patch_size=int(config.hr_patch_size))
  else:
    kwargs.update(scale=int(config.scale), lr_patch_size=int(config.lr_patch_size))
  return kwargs


def step_on_stack(train_step: Callable) -> Callable:
  """``(state, batch) -> out`` as ``(state, stack, j) -> out`` on batch ``j`` of a stack.

  The stack is ``[k, B, ...]`` (``stack_batches``); ``j`` is an int32 array, so one
  compilation serves every ``j``.
  """

  def stacked_step(state, stack, j):
    batch = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, j, 0, keepdims=False), stack)
    return train_step(state, batch)

  return stacked_step


def stack_batches(batches: Iterable[dict[str, np.ndarray]],
                  k: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
  """Yields ``(stack, count)``: ``count`` <= k consecutive batches stacked as ``[k, B, ...]``.

  The last stack is padded with copies of its last batch, so every stack has one shape.
  """
  it = iter(batches)
  while group := list(itertools.islice(it, k)):
    count = len(group)
    group += group[-1:] * (k - count)
    yield {key: np.stack([b[key] for b in group]) for key in group[0]}, count


# ----------------------------------------------------------------------------- guards


class DivergenceError(FloatingPointError):
  """The logged loss left its recent range (``config.divergence_factor``); nothing was saved."""


class OutputError(RuntimeError):
  """A run's output (events, summary, history, image) could not be written completely."""


def _reason(error: BaseException) -> str:
  """A short, one-line reason for an OS or writer failure ('the disk is full', ...)."""
  if ckpt_lib.is_disk_full(error):
    return "the disk is full"
  while error.__cause__ is not None and not isinstance(error, OSError):
    error = error.__cause__
  if isinstance(error, OSError) and error.strerror:
    return error.strerror.lower()
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


def _check_workdir(workdir: Path) -> None:
  """Creates ``workdir`` and checks it is a directory this process can write into.

  Raises:
    InputError: one line naming the directory (not a directory, permission denied, an
      unreachable remote file system, ...).
  """
  try:
    if not files.is_local(workdir):
      files.check_reachable(workdir, field="workdir")
      if workdir.exists() and not workdir.is_dir():  # gfile's mkdir error names no errno
        raise FileExistsError(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
  except (FileExistsError, NotADirectoryError):
    raise InputError(f"{workdir}: not a directory (a file is in the way); use another "
                     "--workdir") from None
  except files.io_errors() as e:
    raise InputError(f"{workdir}: {_reason(e)}: cannot create the work directory; use another "
                     "--workdir") from None
  probe = workdir / f".write-test-{socket.gethostname()}-{os.getpid()}"
  try:
    probe.write_bytes(b"")
    probe.unlink()
  except files.io_errors() as e:
    raise InputError(f"{workdir}: permission denied ({_reason(e)}): cannot write into the work "
                     "directory; use another --workdir") from None


_LOCK_NAME = "train.lock"


def _process_start(pid: int) -> str | None:
  """The start time of process ``pid`` (Linux /proc), to tell a reused pid; None if unknown."""
  try:
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(owner: dict) -> bool:
  pid = owner.get("pid")
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # it exists, owned by another user
  start = owner.get("start")
  return start is None or _process_start(pid) in (None, start)


@contextlib.contextmanager
def _workdir_lock(workdir: Path, *, take: bool) -> Iterator[None]:
  """Holds ``workdir/train.lock`` (an flock plus the owner's host and pid) for one run.

  Local work directories only: a remote one (``gs://``) has no file locks and is not locked.

  Only the process that ``take``s it locks (process 0 of a multi-host run: all hosts share the
  run's work directory); in a multi-process run the outcome is broadcast, so every process of
  a refused run stops. A lock whose owner is gone on this host (the flock is free, or the pid is
  dead) is taken over with a warning; one from another host refuses the run and says to delete
  the file if that run is gone.
  """
  path = workdir / _LOCK_NAME
  fd = None
  error = None
  if take and not files.is_local(workdir):
    _log.info("%s: a remote work directory is not locked (no file locks on object stores); "
              "make sure one run at a time uses it", workdir)
    take = False
  if take:
    try:
      fd = _acquire_lock(path)
    except InputError as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    refused = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
    if int(refused) and error is None:
      error = InputError(f"{path}: process 0 could not lock the work directory (see its error)")
  if error is not None:
    raise error
  try:
    yield
  finally:
    if fd is not None:
      try:
        path.unlink()
      except OSError:
        pass
      os.close(fd)


def _acquire_lock(path: pathlib.Path) -> int:
  host = socket.gethostname()
  for _ in range(3):
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise InputError(f"{path.parent}: permission denied ({_reason(e)}): cannot create "
                       f"{path.name}; use another --workdir") from None
    try:
      owner = json.loads(os.read(fd, 4096) or b"{}")
      owner = owner if isinstance(owner, dict) else {}
    except ValueError:
      owner = {}
    who = f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}"
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      os.close(fd)
      raise InputError(f"{path.parent}: another training run ({who}) is using this work "
                       "directory; wait for it to end, or use another --workdir") from None
    if os.fstat(fd).st_ino != getattr(_stat(path), "st_ino", None):
      os.close(fd)  # the holder removed the file as we opened it: try again
      continue
    if owner.get("host") not in (None, host) and owner.get("pid") is not None:
      os.close(fd)
      raise InputError(f"{path}: the work directory is locked by a training run on host "
                       f"{owner.get('host')} (pid {owner.get('pid')}); if that run is gone, "
                       "delete this file and start again")
    if owner.get("pid") is not None:
      state = "still running but not holding the lock" if _alive(owner) else "gone"
      _log.warning("%s: taking over the lock of an earlier run (%s, %s)", path, who, state)
    record = {"host": host, "pid": os.getpid(), "start": _process_start(os.getpid()),
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return fd
  raise InputError(f"{path.parent}: could not lock the work directory (it kept changing)")


def _stat(path: pathlib.Path):
  try:
    return path.stat()
  except OSError:
    return None


def _set_aside_other_models(manager: ckpt_lib.CheckpointManager, identity: dict) -> None:
  """Moves steps of another model newer than the newest step of this one out of the way.

  A work directory whose steps are all of another model is refused (``_check_resume``): it is
  another run's. When an intact-looking step of this model exists, newer steps that name
  another model are moved to ``checkpoints-corrupt/<step>-other-model-<time>`` (kept, not
  deleted) with a warning, and the run resumes from this model's newest step.
  """
  metas = {}
  for s in manager.all_steps():
    try:
      metas[s] = manager.read_meta(s)
    except Exception:  # pylint: disable=broad-except
      continue  # an unreadable step; restore() reports it
  ours = [s for s, m in metas.items() if _mismatch(m, identity) is None]
  others = sorted(s for s, m in metas.items() if _mismatch(m, identity) is not None)
  if others and not ours:
    _check_resume(metas[others[-1]], identity, manager.directory)
  for s in others:
    if s > max(ours):
      moved = manager.quarantine(s, reason="other-model")
      _log.warning("step %d in %s is of another model (%s); moved to %s, resuming from step %d",
                   s, manager.directory, _mismatch(metas[s], identity), moved, max(ours))


class _CheckedWriter:
  """A clu metric writer whose failures (asynchronous ones included) raise ``OutputError``."""

  def __init__(self, writer, *, workdir: Path, last_good: Callable[[], str]):
    self._writer = writer
    self._workdir = workdir
    self._last_good = last_good

  def _fail(self, error: BaseException) -> OutputError:
    return OutputError(f"{self._workdir}: writing the TensorBoard events failed "
                       f"({_reason(error)}); {self._last_good()}")

  def __getattr__(self, name: str):
    method = getattr(self._writer, name)

    def checked(*args, **kwargs):
      try:
        return method(*args, **kwargs)
      except Exception as e:  # pylint: disable=broad-except
        raise self._fail(e) from None

    return checked

  def verify(self, *, since: float) -> None:
    """Reads back this process's events files written since ``since``: all records whole."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    for path in self._workdir.glob(f"events.out.tfevents.*.{os.getpid()}.*"):
      stat = path.stat()  # os.stat_result locally; epath's StatResult (whole seconds) remotely
      if (stat.st_mtime < since) if files.is_local(path) else (stat.mtime < int(since)):
        continue
      try:
        for _ in tf.data.TFRecordDataset(str(path)):
          pass
      except Exception as e:  # pylint: disable=broad-except
        raise OutputError(f"{path}: the TensorBoard events file is incomplete "
                          f"({_reason(e)}); {self._last_good()}") from None


def _replace(path: Path, write: Callable, *, last_good: Callable[[], str]) -> None:
  """Writes ``path`` whole or not at all (``files.write_atomic``; ``write(binary file)``)."""
  try:
    files.write_atomic(path, write, sync=True)
  except files.io_errors() as e:
    raise OutputError(f"{path}: writing failed ({_reason(e)}); {last_good()}") from None


def _append(path: Path, text: str, *, last_good: Callable[[], str]) -> None:
  """Appends ``text`` to ``path`` whole, or not at all (cut back on failure).

  A remote file (object stores cannot append) is rewritten whole with the text added.
  """
  if not files.is_local(path):
    try:
      old = path.read_bytes() if path.exists() else b""
      files.write_atomic(path, lambda f: f.write(old + text.encode()))
    except files.io_errors() as e:
      raise OutputError(f"{path}: writing failed ({_reason(e)}); {last_good()}") from None
    return
  size = path.stat().st_size if path.exists() else 0
  try:
    with open(path, "a") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    try:
      os.truncate(path, size)
    except OSError:
      pass
    raise OutputError(f"{path}: writing failed ({_reason(e)}); {last_good()}") from None


# ----------------------------------------------------------------------------- preemption


PREEMPTED_EXIT_BASE = 128
"""``jaxsr train`` / ``train.py`` exit with ``PREEMPTED_EXIT_BASE + signal number`` when
preempted: 143 for SIGTERM, 130 for SIGINT (what a shell reports for a process the signal ended)."""


class Preempted(Exception):
  """The run stopped on SIGTERM/SIGINT after saving step ``step`` synchronously.

  Attributes:
    step: the step every host agreed on and saved; a restart resumes from it.
    signum: the signal that asked the run to stop (``signal.SIGTERM`` or ``signal.SIGINT``).
    exit_status: ``PREEMPTED_EXIT_BASE + signum`` (143 for SIGTERM, 130 for SIGINT).
  """

  def __init__(self, step: int, signum: int, directory: Path):
    self.step = int(step)
    self.signum = int(signum)
    self.exit_status = PREEMPTED_EXIT_BASE + self.signum
    name = signal.Signals(self.signum).name
    super().__init__(f"preempted at step {self.step} ({name}): checkpoint saved in {directory}; "
                     "run the same command again to resume")


class _PreemptionWatch:
  """Turns SIGTERM and SIGINT into a step at which every host saves and stops.

  One process (no ``jax.distributed`` client): Python handlers only record the signal; the
  loop asks ``reached(step)`` after every step, which is True from the first step that ends
  after a signal. Several processes: JAX's preemption sync manager (the one Orbax's
  ``reached_preemption`` asks) catches SIGTERM on any host and agrees on one step for all,
  which ``multihost_utils.reached_preemption_sync_point`` reports; SIGINT is passed on to it as
  a SIGTERM. Handlers are installed only in the main thread and restored on ``close``. Further
  signals while the checkpoint is written are counted and otherwise ignored, so a second
  SIGTERM cannot cut the save short (a SIGKILL still can: Orbax then never commits the step).
  """

  def __init__(self):
    self.signum: int | None = None
    self.extra = 0  # signals after the first
    self._previous: dict[int, object] = {}
    self._multihost = False
    if jax.process_count() > 1:
      from jax._src import distributed  # pylint: disable=g-import-not-at-top
      if getattr(distributed.global_state, "preemption_sync_manager", None) is None:
        _log.warning("JAX's preemption service is off: SIGTERM/SIGINT end the run without a "
                     "checkpoint (set jax_enable_preemption_service)")
        return
      self._multihost = True
    if threading.current_thread() is not threading.main_thread():
      return
    wanted = (signal.SIGINT,) if self._multihost else (signal.SIGTERM, signal.SIGINT)
    for signum in wanted:
      self._previous[signum] = signal.signal(signum, self._handle)

  def _handle(self, signum: int, frame) -> None:
    del frame  # only records: logging here could deadlock on the logging lock
    if self._multihost:
      self.signum = signal.SIGTERM if self.signum is None else self.signum
      signal.raise_signal(signal.SIGTERM)  # JAX's notifier takes it from here
    elif self.signum is None:
      self.signum = signum
    else:
      self.extra += 1

  def reached(self, step: int) -> bool:
    """Whether all hosts stop after ``step`` (to be asked after every step, on every host)."""
    if self._multihost:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = self.signum or signal.SIGTERM
        return True
      return False
    return self.signum is not None

  def close(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()


# ----------------------------------------------------------------------------- the loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming if possible) and returns the summary dict.

  The summary: ``step``, ``train_loss`` (mean of the last logged steps), ``eval`` (the
  ``jaxsr.eval_lib.evaluate`` entries of ``config.eval_datasets``) and ``params_sha256`` of
  the evaluated parameters.

  Raises:
    InputError: a missing or invalid config field, a checkpoint of another model only, a work
      directory that is not writable or is in use by another run.
    FloatingPointError: non-finite training metrics, or ``DivergenceError`` (a subclass): a
      diverging loss (nothing is saved after them).
    OutputError: an output file could not be written.
    jaxsr.checkpoint.CheckpointError: no intact checkpoint, or a checkpoint save failed.
    Preempted: SIGTERM or SIGINT stopped the run after saving its ``step``.
  """
  with tasks.config_fields_required():
    return _train_and_evaluate(config, files.to_path(workdir, field="workdir"))


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: Path) -> dict:
  started = time.time()  # eval_history's elapsed_s: wall time since this process began the run
  task = tasks.make_task(config)
  # Every other setting, read before anything runs.
  settings = dict(
      num_steps=int(config.num_train_steps), batch_size=int(config.batch_size),
      seed=int(config.seed), per_transfer=int(config.batches_per_transfer),
      log_every=int(config.log_every_steps), ckpt_every=int(config.checkpoint_every_steps),
      eval_every=int(config.eval_every_steps or 0), keep_checkpoints=int(config.keep_checkpoints),
      divergence_factor=float(config.divergence_factor),
      divergence_window=int(config.divergence_window))
  if settings["per_transfer"] < 1:
    raise InputError("config.batches_per_transfer: expected an integer >= 1, got "
                     f"{settings['per_transfer']}")
  if settings["divergence_factor"] < 0 or not math.isfinite(settings["divergence_factor"]):
    raise InputError("config.divergence_factor: expected 0 (off) or a factor > 0, got "
                     f"{config.divergence_factor}")
  if settings["divergence_window"] < 1:
    raise InputError("config.divergence_window: expected an integer >= 1, got "
                     f"{settings['divergence_window']}")
  is_main = jax.process_index() == 0
  _check_workdir(workdir)
  with _workdir_lock(workdir, take=is_main):
    return _run(config, workdir, task=task, started=started, is_main=is_main, **settings)


def _run(config: ml_collections.ConfigDict, workdir: Path, *, task: tasks.Task,
         started: float, is_main: bool, num_steps: int, batch_size: int, seed: int,
         per_transfer: int, log_every: int, ckpt_every: int, eval_every: int,
         keep_checkpoints: int, divergence_factor: float, divergence_window: int) -> dict:
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  from clu import parameter_overview
  from clu import periodic_actions

  model = task.model
  channels = getattr(model, "channels", 3)
  init_from = config.init_from
  identity = _identity(config)
  pipeline_kwargs = _pipeline_kwargs(config, channels=channels, with_lr=task.needs_lr)
  eval_datasets = _eval_names(config)
  scale = int(config.scale)
  eval_data_dir = config.eval_data_dir
  eval_protocol = config.eval_protocol or None
  meta = {"identity": identity, "config": json.loads(config.to_json_best_effort()),
          # what checkpoint.load_model rebuilds the generator from (eval.py --checkpoint,
          # init_from, jaxsr upscale)
          "model": {"name": config.model, "scale": scale,
                    "overrides": identity["model_overrides"]},
          # the input order and the process count it depends on ('host' order)
          "data": {"order": pipeline_kwargs["order"], "process_count": jax.process_count()}}

  mesh = parallel.make_mesh()
  if batch_size % mesh.size:
    raise InputError(f"config.batch_size: {batch_size} does not divide over {mesh.size} devices")
  checkpoint_dir = workdir / "checkpoints"
  if config.get("checkpoint_dir"):
    checkpoint_dir = files.to_path(config.checkpoint_dir, field="config.checkpoint_dir")
    files.check_reachable(checkpoint_dir, field="config.checkpoint_dir")
  try:
    manager = ckpt_lib.CheckpointManager(checkpoint_dir, max_to_keep=keep_checkpoints)
  except (files.io_errors() + (ValueError,)) as e:
    if files.is_local(checkpoint_dir):
      raise
    raise InputError(f"{checkpoint_dir}: cannot open the checkpoint directory ({_reason(e)})",
                     field="config.checkpoint_dir") from None

  def last_good() -> str:
    good = manager.latest_step()
    return (f"the last good checkpoint is step {good} in {manager.directory}" if good is not None
            else "no checkpoint had been saved yet")

  try:
    writer = _CheckedWriter(
        metric_writers.create_default_writer(str(workdir), just_logging=not is_main),
        workdir=workdir, last_good=last_good)
  except Exception as e:  # pylint: disable=broad-except
    raise OutputError(f"{workdir}: cannot create the TensorBoard writer ({_reason(e)})") from None
  watch = _PreemptionWatch()  # from here on SIGTERM/SIGINT save a step and stop the run
  try:
    state = task.init_state(key=jax.random.key(seed))
    _set_aside_other_models(manager, identity)
    restored = manager.restore(task.state_dict(state))
    history: list[float] = []  # the recent logged loss means (the divergence guard's range)
    unverified: list[int] = []  # saved steps whose following losses are not checked yet
    if restored is not None:
      step0, saved, saved_meta = restored
      _check_resume(saved_meta, identity, manager.directory)
      _check_resume_order(saved_meta, pipeline_kwargs["order"], manager.directory)
      state = task.restore_state(state, saved)
      history = [float(x) for x in (saved_meta.get("guard") or {}).get("loss_means", [])]
      unverified.append(step0)
      _log.info("resumed from step %d in %s", step0, manager.directory)
    elif init_from:
      try:
        if str(init_from).startswith("zoo:"):  # a named pretrained model (jaxsr.zoo)
          loaded = zoo.load(str(init_from)[len("zoo:"):])
        else:
          loaded = loading.load_model(checkpoint=init_from, use_ema=True)
      except InputError as e:
        raise InputError(e.message, field="config.init_from") from None
      state = task.init_from(state, loaded.variables)
      _log.info("initialised parameters from %s (step %s)", init_from, loaded.meta.get("step"))
    start_step = int(jax.device_get(state.step))
    if is_main and start_step == 0:
      parameter_overview.log_parameter_overview(task.eval_variables(state)["params"])
      writer.write_hparams({k: v for k, v in config.to_dict().items()
                            if isinstance(v, (int, float, str, bool))})
    state = parallel.replicate(state, mesh)
    state_sharding = jax.tree.map(lambda _: parallel.replicated(mesh), state)
    # Batches travel to the devices in stacks of k (one transfer per k steps: on a 2-core CPU a
    # transfer per step cost ~10% of ESPCN's step rate); the step picks batch j of the stack.
    train_step = jax.jit(step_on_stack(task.train_step), donate_argnums=0,
                         out_shardings=(state_sharding, parallel.replicated(mesh)))
    stack_index = [parallel.replicate(np.int32(j), mesh) for j in range(per_transfer)]

    progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                               every_steps=log_every)
    pending: list[dict] = []
    last_loss = float("nan")

    def stop_before(bad_state: int) -> str:
      """Sets aside saved steps from ``bad_state`` on; the 'last good checkpoint' clause."""
      manager.wait_until_finished()
      for s in manager.all_steps():
        if s >= bad_state:
          moved = manager.quarantine(s, reason="diverged")
          _log.warning("step %d gave a bad loss at once; moved to %s", s, moved)
      return last_good()

    def flush(step: int) -> None:
      nonlocal last_loss
      if not pending:
        return
      values = [{k: float(v) for k, v in m.items()} for m in jax.device_get(pending)]
      pending.clear()
      first = step - len(values) + 1  # values[i] is the loss of the state after step first-1+i
      mean = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
      recent = history[-divergence_window:] or [values[0]["loss"]]
      median = float(np.median(recent))
      limit = divergence_factor * median if divergence_factor > 0 and median > 0 else math.inf
      finite = all(math.isfinite(v) for v in mean.values())
      if not finite or mean["loss"] > limit:
        bad = next((i for i, v in enumerate(values)
                    if not all(math.isfinite(x) for x in v.values()) or v["loss"] > limit), 0)
        where = stop_before(first - 1 + bad)
        if not finite:
          raise FloatingPointError(
              f"non-finite training metrics before step {step} ({mean}); stopped without saving; "
              f"{where}")
        raise DivergenceError(
            f"training diverged before step {step}: the mean loss {mean['loss']:.4g} of steps "
            f"{first}-{step} is over config.divergence_factor={divergence_factor:g} times the "
            f"median {median:.4g} of the recent logged losses (range {min(recent):.4g} to "
            f"{max(recent):.4g}; first bad step {first + bad}, loss {values[bad]['loss']:.4g}); "
            f"stopped without saving; {where} (lower the learning rate, or set "
            "config.divergence_factor=0 to turn this check off)")
      history.append(mean["loss"])
      del history[:-divergence_window]
      # Every saved step before this window has now given losses that passed the guards.
      if (verified := [s for s in unverified if s < step]):
        manager.protect(max(verified))
        unverified[:] = [s for s in unverified if s >= step]
      last_loss = mean["loss"]
      writer.write_scalars(step, mean)

    def run_eval(step: int) -> list[dict]:
      variables = task.eval_variables(state)
      results = eval_lib.evaluate_model(model, variables, datasets=eval_datasets, scale=scale,
                                        protocol=eval_protocol, data_dir=eval_data_dir)
      scalars = {f"eval/{r['dataset']}_x{r['scale']}_{k}": r[k] for r in results for k in ("psnr", "ssim")}
      if scalars:
        writer.write_scalars(step, scalars)
        _log.info("step %d eval: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
        if is_main:  # appended at once, so a killed run keeps its curve
          line = json.dumps({"step": step, "time": time.time(),
                             "elapsed_s": time.time() - started, **scalars}) + "\n"
          _append(workdir / "eval_history.jsonl", line, last_good=last_good)
      if eval_datasets:
        panel = eval_lib.comparison_panel(model, variables, dataset=eval_datasets[0], scale=scale,
                                          data_dir=eval_data_dir)
        writer.write_images(step, {"lr_bicubic_sr_hr": panel[None]})
        if is_main:
          image = Image.fromarray(np.round(panel * 255).astype(np.uint8))
          _replace(workdir / "comparison.png", lambda f: image.save(f, format="PNG"),
                   last_good=last_good)
      return results

    def save(step: int) -> None:
      flush(step)
      writer.flush()  # a failed events write stops the run before the checkpoint
      manager.save(step, task.state_dict(state),
                   meta={**meta, "guard": {"loss_means": history[-divergence_window:]}})
      unverified.append(step)

    def preempt(step: int) -> None:
      """Saves ``step`` synchronously (unless saved already) and stops the run."""
      if manager.latest_step() != step:
        save(step)
      manager.wait_until_finished()
      if watch.extra:
        _log.warning("%d more stop signal(s) arrived before step %d was saved completely; ignored "
                     "until it was", watch.extra, step)
      _log.warning("preempted at step %d (%s); checkpoint saved in %s", step,
                   signal.Signals(watch.signum).name, manager.directory)
      raise Preempted(step, watch.signum, manager.directory)

    try:  # batch k is a function of (seed, k): the same on any topology (jaxsr.data.pipeline)
      data = (jaxsr_data.train_dataset(start_step=start_step, num_steps=num_steps - start_step,
                                       **pipeline_kwargs)
              if start_step < num_steps else iter(()))
    except InputError as e:
      where = "config" if e.field == "hr_rescales" else "config.data"
      raise InputError(e.message, field=e.field and f"{where}.{e.field}") from None
    step = start_step
    with jax.set_mesh(mesh):
      for stack, count in stack_batches(data, per_transfer):
        stack = parallel.shard_batch(stack, mesh, batch_axis=1)
        for j in range(count):
          state, metrics = train_step(state, stack, stack_index[j])
          pending.append(metrics)
          step += 1
          progress(step)
          if step % log_every == 0 or step == num_steps:
            flush(step)
          if step % ckpt_every == 0 and step != num_steps:
            save(step)
          if eval_every and step % eval_every == 0 and step != num_steps:
            run_eval(step)
          if watch.reached(step):
            preempt(step)
    watch.close()
    if manager.latest_step() != step:
      save(step)
    manager.wait_until_finished()
    results = run_eval(step)
    summary = {
        "step": step,
        "train_loss": last_loss,
        "eval": results,
        "params_sha256": ckpt_lib.params_sha256(task.eval_variables(state)["params"]),
    }
    if is_main:
      _replace(workdir / "summary.json", lambda f: f.write(json.dumps(summary, indent=1).encode()),
               last_good=last_good)
      if results:  # the table, and the baseline beside it: same sets, scale and protocol
        print(eval_lib.format_table(results, model=config.model))
        baseline = [eval_lib.evaluate(eval_lib.bicubic(r["scale"]),
                                      jaxsr_data.load_eval_set(spec, data_dir=eval_data_dir)[1],
                                      scale=r["scale"], protocol=r["protocol"], dataset=r["dataset"])
                    for spec, r in zip(eval_datasets, results)]
        print("\n".join(eval_lib.format_table(baseline, model="bicubic").splitlines()[1:]))
        print(f"comparison image (LR | bicubic | {config.model} | HR): {workdir / 'comparison.png'}")
    writer.close()
    if is_main:
      writer.verify(since=started)
    manager.close()
    return summary
  except BaseException:
    # The error is the one line the caller shows: wind down without adding more.
    for close in (watch.close, writer.close, manager.close):
      try:
        close()
      except Exception:  # pylint: disable=broad-except
        pass
    raise
