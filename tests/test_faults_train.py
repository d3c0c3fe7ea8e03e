"""The training fault matrix (issue 20): each fault ends in one line and loses nothing.

Rows: 1 divergence without NaN (guard, protected step), 2 failed writes of the run's outputs,
4 two runs on one work directory, 5 an unwritable work directory, 6 a full disk during a
checkpoint save, 12 a newer checkpoint of another model beside good steps of this one.
Fast tests go through ``train_lib``; the slow ones run the real ``train.py``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxsr import checkpoint as ckpt_lib
from jaxsr import train_lib
from jaxsr.errors import InputError
from conftest import REPO
from configs import test as test_config


def _config(**overrides):
  config = test_config.get_config()
  config.update({"eval_datasets": "", **overrides})
  return config


def _train(workdir, **overrides):
  return train_lib.train_and_evaluate(_config(**overrides), str(workdir))


def _cli(workdir, *extra, steps=4):
  return [sys.executable, str(REPO / "train.py"), "--config", str(REPO / "configs" / "test.py"),
          "--workdir", str(workdir), f"--config.num_train_steps={steps}",
          "--config.eval_datasets=", "--verbosity=-1", *extra]


def _one_line_error(proc: subprocess.CompletedProcess, pattern: str) -> None:
  """Exit status 2, no traceback, and one line on stderr besides absl's log records."""
  import re
  lines = [line for line in proc.stderr.splitlines()
           if line.strip() and not re.match(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", line)]
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
  assert re.search(pattern, lines[0]), lines[0]


@contextlib.contextmanager
def _tmpfs(path: pathlib.Path, *options: str):
  """A small tmpfs at ``path`` (root only); skips the test when mounting is not permitted."""
  path.mkdir(parents=True, exist_ok=True)
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                           capture_output=True, text=True)
  if mounted.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


# ----------------------------------------------------------------------------- 1: divergence


def test_divergence_without_nan_stops_before_saving_and_keeps_the_good_steps(tmp_path):
  _train(tmp_path, num_train_steps=8)
  manager = ckpt_lib.CheckpointManager(tmp_path / "checkpoints")
  assert manager.all_steps() == [4, 8] and manager.protected_step == 4
  # Resumed with a learning rate that blows the loss up to ~1e21 without NaN/inf.
  with pytest.raises(train_lib.DivergenceError,
                     match=r"diverged before step 12: the mean loss .*e\+\d\d of steps 9-12 .*"
                           r"median .* \(range .* to .*; first bad step 10.*\); stopped without "
                           r"saving; the last good checkpoint is step 8 in ") as e:
    _train(tmp_path, num_train_steps=16, learning_rate=1e9)
  assert "\n" not in str(e.value)
  manager = ckpt_lib.CheckpointManager(tmp_path / "checkpoints")
  assert manager.all_steps() == [4, 8]
  step, _, meta = manager.restore()
  assert step == 8 and len(meta["guard"]["loss_means"]) == 2  # the range survives the resume
  # The same run with the guard off goes on saving: the guard is what stopped it.
  summary = _train(tmp_path / "off", num_train_steps=8, learning_rate=1e9, divergence_factor=0.0)
  assert summary["step"] == 8 and summary["train_loss"] > 1e6
  with pytest.raises(InputError, match="config.divergence_factor: expected 0 .* got -1"):
    _train(tmp_path / "bad", divergence_factor=-1.0)


def test_rotation_never_deletes_the_protected_step(tmp_path):
  manager = ckpt_lib.CheckpointManager(tmp_path, max_to_keep=2, async_save=False)
  for step in range(1, 6):
    manager.save(step, {"w": np.full(4, step, np.float32)})
    if step == 2:
      manager.protect(2)
  manager.close()
  again = ckpt_lib.CheckpointManager(tmp_path, max_to_keep=2, async_save=False)
  assert again.all_steps() == [2, 4, 5] and again.protected_step == 2  # kept across restarts
  again.protect(5)  # a newer good step releases the older one
  again.save(6, {"w": np.zeros(4, np.float32)})
  again.save(7, {"w": np.zeros(4, np.float32)})
  assert again.all_steps() == [5, 6, 7]


# ----------------------------------------------------------------------------- 2: failed writes


def test_a_truncated_events_file_is_an_error(tmp_path):
  from clu import metric_writers
  writer = metric_writers.create_default_writer(str(tmp_path))
  for step in range(20):
    writer.write_scalars(step, {"loss": float(step)})
  writer.close()
  checked = train_lib._CheckedWriter(writer, workdir=tmp_path, last_good=lambda: "no checkpoint")
  checked.verify(since=0)  # whole: fine
  (events,) = tmp_path.glob("events.out.tfevents.*")
  os.truncate(events, events.stat().st_size - 7)
  with pytest.raises(train_lib.OutputError, match=r"events file is incomplete .*; no checkpoint"):
    checked.verify(since=0)


def test_an_events_write_failure_stops_the_run_before_the_next_checkpoint(tmp_path, monkeypatch):
  from clu import asynclib
  from clu import metric_writers

  real = metric_writers.create_default_writer

  def failing_writer(*args, **kwargs):
    writer = real(*args, **kwargs)
    write_scalars = writer.write_scalars

    def write(step, scalars):
      if step >= 8:  # what clu raises when TensorFlow's flush hits a full disk
        try:
          raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
          raise asynclib.AsyncError("Error occurred ASYNCHRONOUSLY.") from e
      write_scalars(step, scalars)

    writer.write_scalars = write
    return writer

  monkeypatch.setattr(metric_writers, "create_default_writer", failing_writer)
  with pytest.raises(train_lib.OutputError,
                     match=r"writing the TensorBoard events failed \(the disk is full\); the last "
                           r"good checkpoint is step 4 in "):
    _train(tmp_path, num_train_steps=12)
  assert ckpt_lib.CheckpointManager(tmp_path / "checkpoints").all_steps() == [4]


def test_failed_summary_write_leaves_no_half_file(tmp_path, monkeypatch):
  real_fsync = os.fsync

  def fsync(fd):
    if os.readlink(f"/proc/self/fd/{fd}").endswith(f".summary.json.tmp-{os.getpid()}"):
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_fsync(fd)

  monkeypatch.setattr(os, "fsync", fsync)
  with pytest.raises(train_lib.OutputError, match=r"summary.json: writing failed \(the disk is "
                                                  r"full\); the last good checkpoint is step 4"):
    _train(tmp_path, num_train_steps=4)
  assert not list(tmp_path.glob("*summary*"))


@pytest.mark.slow
def test_full_disk_run_is_one_line_not_a_silent_truncation(tmp_path):
  # The case: ~1.7 MB of room, a run with evaluation (events with images, a PNG).
  with _tmpfs(tmp_path / "small", "size=1700k") as small:
    proc = subprocess.run(_cli(small / "w", "--config.eval_datasets=embedded", steps=12),
                          capture_output=True, text=True, timeout=600)
    _one_line_error(proc, r"^train.py: error: .*the disk is full.*(last good checkpoint is step "
                          r"\d+|no checkpoint had been saved yet)")
    assert not (small / "w" / "summary.json").exists()


# ----------------------------------------------------------------------------- 4: two runs


def test_a_second_run_on_a_busy_workdir_is_refused_at_once(tmp_path):
  with train_lib._workdir_lock(tmp_path, take=True):
    owner = json.loads((tmp_path / "train.lock").read_text())
    assert owner["pid"] == os.getpid() and owner["host"]
    with pytest.raises(InputError, match=rf"another training run \(pid {os.getpid()} on host "
                                         r".*\) is using this work directory; wait for it"):
      _train(tmp_path, num_train_steps=4)
  assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "train.lock").exists()


def test_a_stale_lock_is_taken_over_and_a_foreign_one_refused(tmp_path, caplog):
  dead = subprocess.Popen(["true"])
  dead.wait()
  lock = tmp_path / "train.lock"
  import socket
  lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
  caplog.set_level("WARNING")
  with train_lib._workdir_lock(tmp_path, take=True):
    assert json.loads(lock.read_text())["pid"] == os.getpid()
  assert f"taking over the lock of an earlier run (pid {dead.pid}" in caplog.text
  assert "gone" in caplog.text and not lock.exists()
  lock.write_text(json.dumps({"host": "elsewhere-7", "pid": 4242}))
  with pytest.raises(InputError, match=r"locked by a training run on host elsewhere-7 \(pid "
                                       r"4242\); if that run is gone, delete this file"):
    with train_lib._workdir_lock(tmp_path, take=True):
      pass
  assert lock.exists()  # not ours to remove
  with train_lib._workdir_lock(tmp_path, take=False):  # hosts other than process 0
    pass


@pytest.mark.slow
def test_two_train_processes_on_one_workdir(tmp_path):
  first = subprocess.Popen(_cli(tmp_path, "--config.checkpoint_every_steps=100", steps=100000),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "train.lock").exists():
      time.sleep(0.1)
    second = subprocess.run(_cli(tmp_path), capture_output=True, text=True, timeout=600)
    _one_line_error(second, rf"^train.py: error: {tmp_path}: another training run \(pid "
                            rf"{first.pid} on host .*\) is using this work directory")
    assert first.poll() is None  # the first run goes on
  finally:
    first.kill()
    first.wait()


# ----------------------------------------------------------------------------- 5: unwritable


def test_an_unwritable_workdir_is_one_line(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(InputError, match=r"file/sub: not a directory \(a file is in the way\)"):
    _train(tmp_path / "file" / "sub")
  with _tmpfs(tmp_path / "ro", "ro", "size=64k") as ro:
    with pytest.raises(InputError, match=rf"^{ro}/w: read-only file system: cannot create"):
      _train(ro / "w")
    with pytest.raises(InputError, match=rf"^{ro}: permission denied \(read-only file system\)"):
      _train(ro)


@pytest.mark.slow
def test_an_unwritable_workdir_through_train_py(tmp_path):
  (tmp_path / "file").write_text("x")
  proc = subprocess.run(_cli(tmp_path / "file" / "sub"), capture_output=True, text=True,
                        timeout=600)
  _one_line_error(proc, rf"^train.py: error: {tmp_path}/file/sub: not a directory")
  with _tmpfs(tmp_path / "ro", "ro", "size=64k") as ro:
    proc = subprocess.run(_cli(ro), capture_output=True, text=True, timeout=600)
    _one_line_error(proc, rf"^train.py: error: {ro}: permission denied")


# ----------------------------------------------------------------------------- 6: full disk


def test_a_full_disk_before_a_save_is_one_line_and_keeps_the_last_step(tmp_path, monkeypatch):
  real = shutil.disk_usage
  calls = []

  def disk_usage(path):
    usage = real(path)
    calls.append(path)
    if len(calls) >= 2:  # room for step 4, none for step 8
      return usage._replace(free=1000)
    return usage

  monkeypatch.setattr(ckpt_lib.shutil, "disk_usage", disk_usage)
  with pytest.raises(ckpt_lib.CheckpointError,
                     match=r"^saving step 8 in .*checkpoints failed: the disk is full, 1000 bytes "
                           r"free; the last good checkpoint is step 4 in "):
    _train(tmp_path, num_train_steps=12)
  monkeypatch.undo()
  manager = ckpt_lib.CheckpointManager(tmp_path / "checkpoints")
  assert manager.all_steps() == [4] and manager.restore()[0] == 4


def test_a_failing_write_during_a_save_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
  import orbax.checkpoint as ocp
  real = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == 8:
      (pathlib.Path(self.directory) / "8.orbax-checkpoint-tmp-1").mkdir()
      raise ValueError("tensorstore: writing: No space left on device [errno 28]")
    return real(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  with pytest.raises(ckpt_lib.CheckpointError,
                     match=r"^saving step 8 in .* failed: the disk is full.*; the last good "
                           r"checkpoint is step 4 in "):
    _train(tmp_path, num_train_steps=12)
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()
                if not p.name.endswith(".json")) == ["4"]


@pytest.mark.slow
def test_a_full_disk_during_saves_through_train_py(tmp_path):
  # Room for two steps (each save needs the state's bytes plus 1 MiB free).
  with _tmpfs(tmp_path / "small", "size=2000k") as small:
    proc = subprocess.run(_cli(small / "w", "--config.keep_checkpoints=10", steps=40),
                          capture_output=True, text=True, timeout=600)
    _one_line_error(proc, r"^train.py: error: saving step (\d+) in .* failed: the disk is full"
                          r".*; the last good checkpoint is step \d+ in ")
    steps = ckpt_lib.CheckpointManager(small / "w" / "checkpoints").all_steps()
    assert steps and ckpt_lib.CheckpointManager(small / "w" / "checkpoints").restore()[0] == steps[-1]


# ----------------------------------------------------------------------------- 12: other model


def test_a_newer_step_of_another_model_is_set_aside_for_this_models_step(tmp_path, caplog):
  straight = _train(tmp_path / "straight", num_train_steps=8)
  _train(tmp_path / "run", num_train_steps=4)
  _train(tmp_path / "x2", num_train_steps=8, scale=2)
  shutil.copytree(tmp_path / "x2" / "checkpoints" / "8", tmp_path / "run" / "checkpoints" / "8")
  caplog.set_level("WARNING")
  resumed = _train(tmp_path / "run", num_train_steps=8)
  assert "step 8 in" in caplog.text and "of another model (scale: checkpoint 2 vs config 3)" \
      in caplog.text and "resuming from step 4" in caplog.text
  assert resumed["params_sha256"] == straight["params_sha256"]
  (aside,) = (tmp_path / "run" / "checkpoints-corrupt").iterdir()
  assert aside.name.startswith("8-other-model-")
  # Only steps of another model: still refused (the directory is another run's).
  with pytest.raises(InputError, match="refusing to resume a different model.*scale"):
    _train(tmp_path / "x2", num_train_steps=12)


# ----------------------------------------------------------------------------- preemption


def _signal_at(monkeypatch, at_step: int, *signums: int) -> None:
  """Sends ``signums`` to this process as the loop asks whether to stop after ``at_step``."""
  real = train_lib._PreemptionWatch.reached

  def reached(self, step):
    if step == at_step:
      for signum in signums:
        os.kill(os.getpid(), signum)
    return real(self, step)

  monkeypatch.setattr(train_lib._PreemptionWatch, "reached", reached)


def test_sigint_saves_the_agreed_step_and_the_restart_is_bit_identical(tmp_path, monkeypatch,
                                                                        caplog):
  import signal
  straight = _train(tmp_path / "straight", num_train_steps=12)
  caplog.set_level("WARNING")
  _signal_at(monkeypatch, 6, signal.SIGINT)
  with pytest.raises(train_lib.Preempted, match=r"^preempted at step 6 \(SIGINT\): checkpoint "
                                                r"saved in .*; run the same command again") as e:
    _train(tmp_path / "run", num_train_steps=12)
  assert e.value.step == 6 and e.value.exit_status == 130
  assert "preempted at step 6 (SIGINT)" in caplog.text
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
  monkeypatch.undo()
  manager = ckpt_lib.CheckpointManager(tmp_path / "run" / "checkpoints")
  assert manager.all_steps() == [4, 6] and manager.restore()[0] == 6
  assert not (tmp_path / "run" / "summary.json").exists()
  resumed = _train(tmp_path / "run", num_train_steps=12)
  assert resumed["params_sha256"] == straight["params_sha256"]


def test_a_second_sigterm_during_the_save_cannot_cut_it_short(tmp_path, monkeypatch, caplog):
  import signal
  real_save = ckpt_lib.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    real_save(self, step, *args, **kwargs)
    if step == 6:  # the preemption's save is in flight: the scheduler insists
      os.kill(os.getpid(), signal.SIGTERM)
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(ckpt_lib.CheckpointManager, "save", save)
  _signal_at(monkeypatch, 6, signal.SIGTERM)
  caplog.set_level("WARNING")
  with pytest.raises(train_lib.Preempted, match=r"preempted at step 6 \(SIGTERM\)") as e:
    _train(tmp_path, num_train_steps=12)
  assert e.value.exit_status == 143
  assert "2 more stop signal(s) arrived before step 6 was saved completely" in caplog.text
  monkeypatch.undo()
  manager = ckpt_lib.CheckpointManager(tmp_path / "checkpoints")
  assert manager.all_steps() == [4, 6] and manager.restore()[0] == 6
  assert not list((tmp_path / "checkpoints").glob("*tmp*"))


@pytest.mark.slow
def test_sigterm_through_train_py_exits_143_and_resumes_bit_identically(tmp_path):
  import re
  import signal
  steps = 400
  cmd = lambda w: _cli(w, "--config.checkpoint_every_steps=50", "--config.log_every_steps=50",
                       steps=steps)[:-1] + ["--verbosity=0"]
  straight = subprocess.run(cmd(tmp_path / "straight"), capture_output=True, text=True,
                            timeout=600)
  assert straight.returncode == 0, straight.stderr[-2000:]
  run = tmp_path / "run"
  with open(tmp_path / "stderr", "w") as err:
    proc = subprocess.Popen(cmd(run), stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "checkpoints" / "100").exists():
      time.sleep(0.01)
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGTERM)  # a second one, as the save starts: ignored
    assert proc.wait(timeout=300) == 143
  stderr = (tmp_path / "stderr").read_text()
  step = int(re.search(r"preempted at step (\d+) \(SIGTERM\); checkpoint saved", stderr)[1])
  assert stderr.splitlines()[-1].startswith(f"train.py: preempted at step {step} (SIGTERM)")
  assert 100 <= step < steps and not (run / "summary.json").exists()
  assert ckpt_lib.CheckpointManager(run / "checkpoints").latest_step() == step
  restarted = subprocess.run(cmd(run), capture_output=True, text=True, timeout=600)
  assert restarted.returncode == 0, restarted.stderr[-2000:]
  assert f"resumed from step {step}" in restarted.stderr
  a = json.loads((tmp_path / "straight" / "summary.json").read_text())
  b = json.loads((run / "summary.json").read_text())
  assert b["step"] == steps and a["params_sha256"] == b["params_sha256"]
