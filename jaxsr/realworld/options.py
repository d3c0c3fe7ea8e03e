"""Configuration of the Real-ESRGAN second-order degradation (defaults: Real-ESRGAN x4plus).

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
ICCVW 2021. The defaults are the values of the published ``train_realesrgan_x4plus.yml`` recipe.
Every range is a closed ``(low, high)`` pair drawn uniformly per sample; every probability is in
[0, 1]. Kernel types are named as in BasicSR: ``iso``, ``aniso`` (Gaussian), ``generalized_iso``,
``generalized_aniso`` (generalised Gaussian), ``plateau_iso``, ``plateau_aniso``.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["KERNEL_TYPES", "RealESRGANOptions"]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso")
_DEFAULT_PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


@dataclasses.dataclass(frozen=True)
class RealESRGANOptions:
  """Real-ESRGAN's degradation recipe; hashable, so it can be a static jit argument.

  Attributes:
    kernel_sizes: the odd blur kernel sizes drawn uniformly (7..21); every kernel is built at
      ``max(kernel_sizes)`` with zeros around the drawn size.
    kernel_probs: probabilities of ``KERNEL_TYPES`` for the first blur.
    sinc_prob: probability that the first blur is a 2-D sinc (circular low-pass) filter instead.
    blur_sigma: range of the Gaussian standard deviations (pixels) of the first blur, both axes.
    betag_range: shape range of the generalised Gaussian (first blur); half the draws are below 1.
    betap_range: shape range of the plateau kernel (first blur); half the draws are below 1.
    resize_probs: probabilities of (up, down, keep) for the first resize.
    resize_range: (smallest down, largest up) scale of the first resize.
    gaussian_noise_prob: probability of Gaussian noise (else Poisson) in the first stage.
    noise_range: Gaussian noise standard deviation range, in 0..255 units (first stage).
    poisson_scale_range: Poisson noise scale range (first stage).
    gray_noise_prob: probability that the first-stage noise is the same in all channels.
    jpeg_range: JPEG quality range of the first stage.
    second_blur_prob: probability that the second stage blurs at all.
    kernel_probs2, sinc_prob2, blur_sigma2, betag_range2, betap_range2: the second blur.
    resize_probs2, resize_range2: the second resize, relative to the LR size ``H / scale``.
    gaussian_noise_prob2, noise_range2, poisson_scale_range2, gray_noise_prob2: second noise.
    jpeg_range2: JPEG quality range of the second stage.
    final_sinc_prob: probability of the final sinc filter (else an identity kernel).
    final_sinc_omega: cutoff range (radians) of the final sinc filter.
    resize_modes: interpolation modes drawn uniformly at every resize (PyTorch's
      ``F.interpolate``: ``area``, ``bilinear``, ``bicubic``, no antialiasing).
    sharpen_input: degrade the USM-sharpened HR (as BasicSR's ``RealESRGANModel`` does).
    sharpen_target: the trainer may USM-sharpen its targets at all (the master switch; which
      loss sees a sharpened target is the trainer's choice, see ``jaxsr.tasks.realesrgan``;
      ``degrade_batch`` ignores it).
    usm_weight, usm_radius, usm_threshold: the unsharp-mask parameters (``usm_sharpen``).
  """
  kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
  kernel_probs: tuple[float, ...] = _DEFAULT_PROBS
  sinc_prob: float = 0.1
  blur_sigma: tuple[float, float] = (0.2, 3.0)
  betag_range: tuple[float, float] = (0.5, 4.0)
  betap_range: tuple[float, float] = (1.0, 2.0)
  resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
  resize_range: tuple[float, float] = (0.15, 1.5)
  gaussian_noise_prob: float = 0.5
  noise_range: tuple[float, float] = (1.0, 30.0)
  poisson_scale_range: tuple[float, float] = (0.05, 3.0)
  gray_noise_prob: float = 0.4
  jpeg_range: tuple[float, float] = (30.0, 95.0)
  second_blur_prob: float = 0.8
  kernel_probs2: tuple[float, ...] = _DEFAULT_PROBS
  sinc_prob2: float = 0.1
  blur_sigma2: tuple[float, float] = (0.2, 1.5)
  betag_range2: tuple[float, float] = (0.5, 4.0)
  betap_range2: tuple[float, float] = (1.0, 2.0)
  resize_probs2: tuple[float, float, float] = (0.3, 0.4, 0.3)
  resize_range2: tuple[float, float] = (0.3, 1.2)
  gaussian_noise_prob2: float = 0.5
  noise_range2: tuple[float, float] = (1.0, 25.0)
  poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
  gray_noise_prob2: float = 0.4
  jpeg_range2: tuple[float, float] = (30.0, 95.0)
  final_sinc_prob: float = 0.8
  final_sinc_omega: tuple[float, float] = (math.pi / 3, math.pi)
  resize_modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
  sharpen_input: bool = True
  sharpen_target: bool = True
  usm_weight: float = 0.5
  usm_radius: int = 50
  usm_threshold: float = 10.0

  @property
  def max_kernel_size(self) -> int:
    return max(self.kernel_sizes)
