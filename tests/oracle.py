"""Loads BasicSR's numpy/torch reference functions without importing the whole package.

`basicsr/__init__.py` imports every arch, dataset and model (and with them torchvision, which
the oracle install leaves out). The functions jaxsr is compared with live in three small
modules that need only numpy, torch and cv2, so they are loaded one by one under stub parent
packages. Returns None when basicsr-fixed (tools/install_oracle.sh) is not installed.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types


def load_basicsr() -> types.SimpleNamespace | None:
  """Returns ``ns`` with ``imresize``, ``calculate_psnr``, ``calculate_ssim``, ``bgr2ycbcr``."""
  try:
    spec = importlib.util.find_spec("basicsr")
    import torch  # noqa: F401
    import cv2  # noqa: F401
  except ImportError:
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  root = pathlib.Path(list(spec.submodule_search_locations)[0])

  def stub(name: str, path: pathlib.Path) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None or not hasattr(module, "__path__"):
      module = types.ModuleType(name)
      module.__path__ = [str(path)]
      sys.modules[name] = module
    return module

  def load(name: str, path: pathlib.Path) -> types.ModuleType:
    if name in sys.modules:
      return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module

  stub("basicsr", root)
  utils = stub("basicsr.utils", root / "utils")
  stub("basicsr.metrics", root / "metrics")
  color = load("basicsr.utils.color_util", root / "utils" / "color_util.py")
  utils.bgr2ycbcr = color.bgr2ycbcr
  load("basicsr.utils.registry", root / "utils" / "registry.py")
  matlab = load("basicsr.utils.matlab_functions", root / "utils" / "matlab_functions.py")
  load("basicsr.metrics.metric_util", root / "metrics" / "metric_util.py")
  psnr_ssim = load("basicsr.metrics.psnr_ssim", root / "metrics" / "psnr_ssim.py")
  return types.SimpleNamespace(
      imresize=matlab.imresize,
      calculate_psnr=psnr_ssim.calculate_psnr,
      calculate_ssim=psnr_ssim.calculate_ssim,
      bgr2ycbcr=color.bgr2ycbcr,
      rgb2ycbcr=color.rgb2ycbcr,
  )
