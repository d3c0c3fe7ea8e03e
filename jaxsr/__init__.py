"""jaxsr: deep-learning single-image super-resolution in JAX/Flax.

Images are NHWC float32 in [0, 1] at every model, loss and metric boundary; uint8 appears only at
file I/O. Import the pieces you need: ``jaxsr.models`` (the zoo and its registry),
``jaxsr.inference`` (whole-image upscaling), ``jaxsr.losses``, ``jaxsr.metrics`` (PSNR/SSIM/Y),
``jaxsr.imresize`` (MATLAB bicubic), ``jaxsr.eval_lib`` (the evaluation protocols),
``jaxsr.data`` (datasets and pipelines), ``jaxsr.train_lib``, ``jaxsr.parallel``,
``jaxsr.checkpoint`` and ``jaxsr.convert`` (published weights).
"""

from jaxsr import imresize
from jaxsr import inference
from jaxsr import losses
from jaxsr import metrics
from jaxsr import models
from jaxsr.errors import InputError
from jaxsr.metrics import crop_border, psnr, quantize, rgb_to_y, ssim
from jaxsr.models import get_model, list_models

__version__ = "0.1.0"

__all__ = [
    "InputError", "crop_border", "get_model", "imresize", "inference", "list_models", "losses",
    "metrics", "models", "psnr", "quantize", "rgb_to_y", "ssim",
]
