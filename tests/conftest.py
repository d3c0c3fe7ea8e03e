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


@pytest.fixture(scope="module")
def persistent_compilation_cache(tmp_path_factory):
  """A persistent XLA cache for one test module (``pytestmark = pytest.mark.usefixtures(...)``):
  a resumed and a straight training run reuse the first run's compilations."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax._src import compilation_cache as cc  # pylint: disable=g-import-not-at-top
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  old = {n: getattr(jax.config, n) for n in names}
  jax.config.update(names[0], str(tmp_path_factory.mktemp("xla_cache")))
  jax.config.update(names[1], 0)
  jax.config.update(names[2], 0)
  cc.reset_cache()
  yield
  for n, v in old.items():
    jax.config.update(n, v)
  cc.reset_cache()
