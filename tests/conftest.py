"""Shared test fixtures: where ../shared lives, and skips when it is absent."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("JAXSR_SHARED", REPO.parent / "shared"))
BENCHMARKS = SHARED / "data" / "benchmarks"


def shared_path(*parts: str) -> pathlib.Path:
  """Returns a path under ../shared, skipping the calling test when it is absent."""
  path = SHARED.joinpath(*parts)
  if not path.exists():
    pytest.skip(f"needs {path} (../shared data is absent)")
  return path
