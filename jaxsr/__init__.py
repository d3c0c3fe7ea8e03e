"""jaxsr: deep-learning single-image super-resolution in JAX/Flax.

Images are NHWC float32 in [0, 1] at every model, loss and metric boundary; uint8 appears only at
file I/O. Submodules can be imported piece by piece: ``jaxsr.imresize`` (MATLAB bicubic),
``jaxsr.metrics`` (PSNR/SSIM/Y), ``jaxsr.eval_lib`` (evaluation protocols), ``jaxsr.data``.
"""

from jaxsr import imresize
from jaxsr import metrics
from jaxsr.errors import InputError
from jaxsr.metrics import crop_border, psnr, quantize, rgb_to_y, ssim

__version__ = "0.1.0"

__all__ = [
    "InputError", "crop_border", "imresize", "metrics", "psnr", "quantize", "rgb_to_y", "ssim",
]
