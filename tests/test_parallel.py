"""Data parallelism: 1 device, 8 forced CPU devices and 2 processes x 2 devices agree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np

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
