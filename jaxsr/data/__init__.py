"""Data: image files, the embedded default, evaluation sets, tfds builders and the pipelines.

Images leave this package as uint8 ``[H, W, C]`` numpy arrays (C = 1 or 3) or, from the training
pipeline, as float32 NHWC batches in [0, 1] with keys ``lr`` and ``hr`` (in memory or streamed from
disk; the batch of a step is the same on any topology). ``builders``, ``sources`` and
``pipeline`` import TensorFlow; they load on first use so that evaluation starts quickly.
"""

import importlib

from jaxsr.data.eval_sets import EvalImage, list_eval_sets, load_eval_set
from jaxsr.data.images import IMAGE_EXTENSIONS, list_images, read_image

_LAZY = {
    "builders": "jaxsr.data.builders",
    "pipeline": "jaxsr.data.pipeline",
    "load": ("jaxsr.data.builders", "load"),
    "builder_names": ("jaxsr.data.builders", "builder_names"),
    "tfds_eval_images": ("jaxsr.data.builders", "tfds_eval_images"),
    "sources": "jaxsr.data.sources",
    "TrainPipeline": ("jaxsr.data.pipeline", "TrainPipeline"),
    "StreamPipeline": ("jaxsr.data.pipeline", "StreamPipeline"),
    "make_pipeline": ("jaxsr.data.pipeline", "make_pipeline"),
    "train_dataset": ("jaxsr.data.pipeline", "train_dataset"),
    "eval_dataset": ("jaxsr.data.pipeline", "eval_dataset"),
}

__all__ = [
    "EvalImage", "IMAGE_EXTENSIONS", "list_eval_sets", "list_images", "load_eval_set", "read_image",
    *_LAZY,
]


def __getattr__(name: str):
  target = _LAZY.get(name)
  if target is None:
    raise AttributeError(f"module 'jaxsr.data' has no attribute {name!r}")
  if isinstance(target, str):
    return importlib.import_module(target)
  return getattr(importlib.import_module(target[0]), target[1])
