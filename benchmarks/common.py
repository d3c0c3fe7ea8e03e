"""Helpers shared by the benchmark scripts: timing, machine description, JSON output."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the BasicSR oracle loader lives beside the tests
sys.path.insert(0, str(REPO))  # configs/


def median_time(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
  """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def machine() -> dict:
  """CPU model, core count and versions, for the record beside the figures."""
  cpu = platform.processor()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
  for name in ("jax", "numpy", "torch"):
    try:
      info[name] = __import__(name).__version__
    except ImportError:
      pass
  return info


def write_json(path: str | None, payload: dict) -> None:
  if path:
    pathlib.Path(path).write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
