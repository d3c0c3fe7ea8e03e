"""Process-level settings for jaxsr's entry points (train.py, eval.py, the ``jaxsr`` command).

``configure_xla_cpu()`` turns off XLA:CPU's YNNPACK fusions, with which jax 0.10 runs every
convolution on one core; without them XLA's own kernels use all cores (1.2-1.6x faster
inference on 2 cores, BENCHMARKS.md). XLA reads ``XLA_FLAGS`` when its CPU client starts, so
this must run before the first JAX computation; it changes nothing if ``XLA_FLAGS`` already
names the option, if ``JAXSR_XLA_DEFAULTS=1`` is set, or on a jaxlib other than the 0.10 series
it was measured with (an unknown flag would abort XLA).

``hide_accelerators_from_tensorflow()`` makes TensorFlow, which jaxsr uses only for tfds
input on the host, see no GPU, so it does not reserve accelerator memory that JAX needs. It
must run before TensorFlow initialises its devices (before the first tf.data work).

Libraries never call these: importing jaxsr leaves the process's settings alone; the entry
points do.
"""

from __future__ import annotations

import os

__all__ = ["configure_xla_cpu", "hide_accelerators_from_tensorflow", "xla_cpu_im2col_convolutions"]

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


def xla_cpu_im2col_convolutions() -> bool:
  """Whether XLA:CPU's YNNPACK fusions are off in this process (``configure_xla_cpu`` or the
  user's ``XLA_FLAGS``). XLA's own CPU convolutions then gather each convolution's input patches
  into one transient buffer of ``output pixels x kh x kw x C_in`` values, which XLA's memory
  analysis does not count (``jaxsr.inference`` adds it to its memory estimate)."""
  for flag in os.environ.get("XLA_FLAGS", "").split():
    if flag.startswith("--xla_cpu_experimental_ynn_fusion_type="):
      return flag.split("=", 1)[1] in ("", "none")
  return False


def hide_accelerators_from_tensorflow() -> bool:
  """Hides GPUs from TensorFlow; returns whether it did.

  Imports TensorFlow only when it is installed; without it, does nothing and returns False.
  Call it before TensorFlow's first use: once TensorFlow has set up its devices they cannot be
  changed, and this warns and returns False.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top

  if importlib.util.find_spec("tensorflow") is None:
    return False
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  try:
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError as e:  # TensorFlow's devices are already initialised
    warnings.warn(f"TensorFlow keeps its GPUs: {e}", stacklevel=2)
    return False
  return True
