"""Process-level settings for jaxsr's entry points (train.py, eval.py, the ``jaxsr`` command).

``configure_xla_cpu()`` turns off XLA:CPU's YNNPACK fusions, with which jax 0.10 runs every
convolution on one core; without them XLA's own kernels use all cores (1.2-1.6x faster
inference on 2 cores, BENCHMARKS.md). XLA reads ``XLA_FLAGS`` when its CPU client starts, so
this must run before the first JAX computation; it changes nothing if ``XLA_FLAGS`` already
names the option, if ``JAXSR_XLA_DEFAULTS=1`` is set, or on a jaxlib other than the 0.10 series
it was measured with (an unknown flag would abort XLA). Libraries never call it: importing
jaxsr leaves the process's settings alone.
"""

from __future__ import annotations

import os

__all__ = ["configure_xla_cpu"]

_FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def configure_xla_cpu() -> bool:
  """Adds the flag to ``XLA_FLAGS`` when appropriate; returns whether it did."""
  import jaxlib  # pylint: disable=g-import-not-at-top

  flags = os.environ.get("XLA_FLAGS", "")
  if (os.environ.get("JAXSR_XLA_DEFAULTS") == "1" or "xla_cpu_experimental_ynn_fusion_type" in flags
      or not jaxlib.__version__.startswith("0.10.")):
    return False
  os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}".strip()
  return True
