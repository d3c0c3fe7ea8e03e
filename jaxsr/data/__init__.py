"""Data: image files, the embedded default images, and evaluation sets by name or folder.

Images leave this package as uint8 ``[H, W, C]`` numpy arrays (C = 1 or 3); conversion to float
``[0, 1]`` happens at the model/metric boundary.
"""

from jaxsr.data.eval_sets import EvalImage, list_eval_sets, load_eval_set
from jaxsr.data.images import IMAGE_EXTENSIONS, list_images, read_image

__all__ = [
    "EvalImage", "IMAGE_EXTENSIONS", "list_eval_sets", "list_images", "load_eval_set", "read_image",
]
