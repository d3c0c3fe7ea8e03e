"""jaxsr: deep-learning single-image super-resolution in JAX/Flax.

Images are NHWC float32 in [0, 1] at every model, loss and metric boundary; uint8 appears only at
file I/O. Import the pieces you need (README "Layout" lists the layers):

* core (no TensorFlow): ``jaxsr.models`` (the zoo and its registry), ``jaxsr.inference``
  (whole-image upscaling), ``jaxsr.losses``, ``jaxsr.metrics`` (PSNR/SSIM), ``jaxsr.color``
  (RGB/YCbCr), ``jaxsr.imresize`` (MATLAB bicubic), ``jaxsr.degradations`` (the protocols' LR),
  ``jaxsr.load_model`` (a checkpoint or published weights file as module and variables),
  ``jaxsr.optim``, ``jaxsr.parallel``, ``jaxsr.checkpoint``, ``jaxsr.convert``,
  ``jaxsr.realworld`` (Real-ESRGAN's degradations on device), ``jaxsr.load_pretrained`` /
  ``jaxsr.list_pretrained`` (named pretrained models, ``jaxsr.zoo``);
* with the ``data`` / ``train`` extras: ``jaxsr.data`` (datasets and pipelines),
  ``jaxsr.eval_lib`` (the evaluation protocols), ``jaxsr.tasks``, ``jaxsr.train_lib`` and
  ``jaxsr.export`` (StableHLO, SavedModel, TFLite, ONNX).
"""

from jaxsr import color
from jaxsr import degradations
from jaxsr import imresize
from jaxsr import inference
from jaxsr import losses
from jaxsr import metrics
from jaxsr import models
from jaxsr.color import rgb_to_y
from jaxsr.errors import InputError
from jaxsr.loading import LoadedModel, load_model
from jaxsr.metrics import crop_border, psnr, quantize, ssim
from jaxsr.models import get_model, list_models
from jaxsr.zoo import list_pretrained, load_pretrained

__version__ = "0.1.0"

__all__ = [
    "InputError", "LoadedModel", "color", "crop_border", "degradations", "get_model", "imresize",
    "inference", "list_models", "list_pretrained", "load_model", "load_pretrained", "losses",
    "metrics", "models", "psnr", "quantize", "rgb_to_y", "ssim",
]
