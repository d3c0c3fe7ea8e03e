"""Real-ESRGAN's second-order degradation model as pure, jit-able, per-sample-keyed JAX functions.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
ICCVW 2021. Images are NHWC float32 in [0, 1]. ``degrade_batch(key, hr, scale=...)`` turns a batch
of HR crops into LR inputs on device; every sample draws its own kernels, scales, modes, noise and
JPEG qualities from its own fold of ``key``. The lower-level functions take explicit parameters so
they can be compared with BasicSR op by op (tests/test_realworld.py).
"""

from jaxsr.realworld.options import KERNEL_TYPES, RealESRGANOptions
from jaxsr.realworld.kernels import (circular_lowpass_kernel, gaussian_kernel,
                                     generalized_gaussian_kernel, plateau_kernel, pad_kernel,
                                     filter2d, random_kernel, random_sinc_kernel,
                                     identity_kernel)
from jaxsr.realworld.resampling import MODES, resize, resize_valid, resize_matrix
from jaxsr.realworld.noise import (add_gaussian_noise, add_poisson_noise, gaussian_noise,
                                   poisson_noise)
from jaxsr.realworld.jpeg_codec import jpeg, quality_to_factor
from jaxsr.realworld.sharpen import usm_sharpen, gaussian_kernel_cv2
from jaxsr.realworld.pipeline import (Draws, buffer_shapes, degrade, degrade_batch, draw_params,
                                      paired_random_crop)

__all__ = [
    "KERNEL_TYPES", "RealESRGANOptions", "circular_lowpass_kernel", "gaussian_kernel",
    "generalized_gaussian_kernel", "plateau_kernel", "pad_kernel", "filter2d", "random_kernel",
    "random_sinc_kernel", "resize", "resize_valid", "resize_matrix", "add_gaussian_noise",
    "add_poisson_noise", "gaussian_noise", "poisson_noise", "jpeg", "quality_to_factor",
    "usm_sharpen", "gaussian_kernel_cv2", "Draws", "draw_params", "degrade", "degrade_batch",
    "identity_kernel", "MODES", "buffer_shapes", "paired_random_crop",
]
