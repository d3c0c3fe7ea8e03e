"""Data parallelism: 1 device, 8 forced CPU devices and 2 processes x 2 devices agree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

WORKER = REPO / "tests" / "parallel_worker.py"


def _env(devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return env


def _losses(output: str) -> dict:
  return json.loads(output.strip().splitlines()[-1])


def test_eight_devices_match_one_device():
  one = subprocess.run([sys.executable, str(WORKER)], env=_env(1), capture_output=True, text=True,
                       timeout=300, check=True)
  eight = subprocess.run([sys.executable, str(WORKER)], env=_env(8), capture_output=True,
                         text=True, timeout=300, check=True)
  a, b = _losses(one.stdout), _losses(eight.stdout)
  assert a["devices"] == 1 and b["devices"] == 8
  np.testing.assert_allclose(b["losses"], a["losses"], atol=1e-5, rtol=0)
  np.testing.assert_allclose(b["stacked_losses"], a["losses"], atol=1e-5, rtol=0)


def test_two_processes_with_two_devices_each_match_one_device():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  args = [sys.executable, str(WORKER), "--coordinator", f"127.0.0.1:{port}", "--num_processes", "2"]
  procs = [subprocess.Popen(args + ["--process_id", str(i)], env=_env(2), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
  one = subprocess.run([sys.executable, str(WORKER)], env=_env(1), capture_output=True, text=True,
                       timeout=300, check=True)
  ref = _losses(one.stdout)
  for out, _ in outs:
    got = _losses(out)
    assert got["devices"] == 4 and got["processes"] == 2
    np.testing.assert_allclose(got["losses"], ref["losses"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["stacked_losses"], ref["losses"], atol=1e-5, rtol=0)


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _train(workdir, steps: int, *, processes: int, devices: int, data_dir, params_out=None):
  """Runs parallel_worker.py --train on ``processes`` x ``devices``; the outputs by process."""
  args = [sys.executable, str(WORKER), "--train", str(workdir), "--steps", str(steps),
          "--data_dir", str(data_dir)] + (["--params_out", str(params_out)] if params_out else [])
  if processes > 1:
    args += ["--coordinator", f"127.0.0.1:{_port()}", "--num_processes", str(processes)]
  procs = [subprocess.Popen(args + (["--process_id", str(i)] if processes > 1 else []),
                            env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for i in range(processes)]
  outs = [p.communicate(timeout=600) for p in procs]
  assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
  return [_losses(out) for out, _ in outs]


def _global_digests(outs) -> dict:
  """{step: [digest of global slot j]} assembled from every process's slots."""
  merged = {}
  for out in outs:
    for step, digests in out["digests"].items():
      row = merged.setdefault(int(step), {})
      row.update(zip(out["slots"], digests))
  return {step: [row[j] for j in sorted(row)] for step, row in merged.items()}


@pytest.mark.slow
def test_resume_on_another_topology(tmp_path):
  """2 processes x 2 devices -> 1 x 4 -> 1 x 1 ends as an uninterrupted 1 x 1 run.

  The input batches are identical at every step (the same digests per global slot) and the
  parameters agree within 1e-5 (float32 sums over a different number of devices round
  differently; nothing else differs).
  """
  data_dir = tmp_path / "tfds"
  ref = _train(tmp_path / "ref", 6, processes=1, devices=1, data_dir=data_dir,
               params_out=tmp_path / "ref.npz")
  work = tmp_path / "run"
  first = _train(work, 2, processes=2, devices=2, data_dir=data_dir)
  assert [o["processes"] for o in first] == [2, 2] and first[0]["devices"] == 4
  second = _train(work, 4, processes=1, devices=4, data_dir=data_dir)
  assert second[0]["devices"] == 4 and second[0]["processes"] == 1
  third = _train(work, 6, processes=1, devices=1, data_dir=data_dir,
                 params_out=tmp_path / "run.npz")
  want = _global_digests(ref)
  for outs in (first, second, third):
    got = _global_digests(outs)
    assert got == {step: want[step] for step in got}
  assert sorted(_global_digests(first)) == list(range(2))
  a, b = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "run.npz")
  assert sorted(a.files) == sorted(b.files) and a.files
  print("max |difference| of the parameters:",
        max(float(np.abs(b[k] - a[k]).max()) for k in a.files))
  for key in a.files:
    np.testing.assert_allclose(b[key], a[key], atol=1e-5, rtol=0, err_msg=key)
