"""Loads BasicSR's numpy/torch reference functions without importing the whole package.

`basicsr/__init__.py` imports every arch, dataset and model (and with them torchvision, which
the oracle install leaves out). The functions jaxsr is compared with live in three small
modules that need only numpy, torch and cv2, so they are loaded one by one under stub parent
packages. Returns None when basicsr-fixed (tools/install_oracle.sh) is not installed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import pathlib
import sys
import types


def _root() -> pathlib.Path | None:
  loaded = sys.modules.get("basicsr")
  if loaded is not None and getattr(loaded, "__path__", None):  # our stub: find_spec would fail
    return pathlib.Path(list(loaded.__path__)[0])
  spec = importlib.util.find_spec("basicsr")
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(list(spec.submodule_search_locations)[0])


def _stub(name: str, path: pathlib.Path | None = None) -> types.ModuleType:
  """An empty (package) module standing in for ``name`` so its ``__init__`` never runs."""
  module = sys.modules.get(name)
  if module is None or (path is not None and not hasattr(module, "__path__")):
    module = types.ModuleType(name)
    if path is not None:
      module.__path__ = [str(path)]
    # A spec, so that a later ``importlib.util.find_spec(name)`` (another test's oracle loader)
    # still finds the package's folder instead of failing on ``__spec__ is None``.
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=path is not None)
    if path is not None:
      module.__spec__.submodule_search_locations = [str(path)]
    sys.modules[name] = module
  return module


def _load(name: str, path: pathlib.Path) -> types.ModuleType:
  """Executes one module file under ``name`` (once)."""
  if name in sys.modules and getattr(sys.modules[name], "__file__", None):
    return sys.modules[name]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[name] = module
  module_spec.loader.exec_module(module)
  return module


ARCH_NAMES = ("edsr", "rcan", "srresnet", "rrdbnet", "discriminator")


def load_basicsr_archs():
  """``(torch, {name: BasicSR arch module})`` for ``ARCH_NAMES`` present, or None if absent.

  ``basicsr/archs/arch_util.py`` imports torchvision and the DCN op; stand-ins are placed for the
  duration of the loading only. Raises whatever a failing arch module raises.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  root = _root()
  if root is None:
    return None
  added_tv = "torchvision" not in sys.modules
  added_dcn = "basicsr.ops.dcn" not in sys.modules
  try:
    if added_tv:
      _stub("torchvision").__version__ = "0.0.0"
    _stub("basicsr", root)
    utils = _stub("basicsr.utils", root / "utils")
    if not hasattr(utils, "get_root_logger"):
      utils.get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    _stub("basicsr.ops", root / "ops")
    dcn = _stub("basicsr.ops.dcn")
    if added_dcn:
      dcn.ModulatedDeformConvPack = torch.nn.Module
      dcn.modulated_deform_conv = None
    _stub("basicsr.archs", root / "archs")
    _load("basicsr.utils.registry", root / "utils" / "registry.py")
    _load("basicsr.archs.arch_util", root / "archs" / "arch_util.py")
    archs = {n: _load(f"basicsr.archs.{n}_arch", root / "archs" / f"{n}_arch.py")
             for n in ARCH_NAMES if (root / "archs" / f"{n}_arch.py").exists()}
  finally:
    if added_tv:
      sys.modules.pop("torchvision", None)
    if added_dcn:
      sys.modules.pop("basicsr.ops.dcn", None)
  return torch, archs


def load_basicsr() -> types.SimpleNamespace | None:
  """Returns ``ns`` with ``imresize``, ``calculate_psnr``, ``calculate_ssim``, ``bgr2ycbcr``."""
  try:
    import torch  # noqa: F401
    import cv2  # noqa: F401
  except ImportError:
    return None
  root = _root()
  if root is None:
    return None
  _stub("basicsr", root)
  utils = _stub("basicsr.utils", root / "utils")
  _stub("basicsr.metrics", root / "metrics")
  color = _load("basicsr.utils.color_util", root / "utils" / "color_util.py")
  utils.bgr2ycbcr = color.bgr2ycbcr
  _load("basicsr.utils.registry", root / "utils" / "registry.py")
  matlab = _load("basicsr.utils.matlab_functions", root / "utils" / "matlab_functions.py")
  _load("basicsr.metrics.metric_util", root / "metrics" / "metric_util.py")
  psnr_ssim = _load("basicsr.metrics.psnr_ssim", root / "metrics" / "psnr_ssim.py")
  return types.SimpleNamespace(
      imresize=matlab.imresize,
      calculate_psnr=psnr_ssim.calculate_psnr,
      calculate_ssim=psnr_ssim.calculate_ssim,
      bgr2ycbcr=color.bgr2ycbcr,
      rgb2ycbcr=color.rgb2ycbcr,
  )


def _rgb_to_grayscale(img, num_output_channels: int = 1):
  """torchvision's luma ``0.2989 R + 0.587 G + 0.114 B`` of an NCHW tensor (its stand-in)."""
  r, g, b = img.unbind(dim=-3)
  gray = (0.2989 * r + 0.587 * g + 0.114 * b).to(img.dtype).unsqueeze(dim=-3)
  return gray.expand(img.shape) if num_output_channels == 3 else gray


def load_basicsr_realworld() -> types.SimpleNamespace | None:
  """``ns`` with BasicSR's ``degradations``, ``diffjpeg``, ``img_process_util`` and ``torch``.

  ``degradations.py`` imports torchvision's ``rgb_to_grayscale``; a stand-in with torchvision's
  weights is placed for the loading only. None when torch, cv2 or basicsr-fixed is absent.
  """
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import cv2  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import scipy  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return None
  root = _root()
  if root is None:
    return None
  added = [n for n in ("torchvision", "torchvision.transforms",
                       "torchvision.transforms.functional") if n not in sys.modules]
  try:
    for name in added:
      _stub(name)
    if added:
      sys.modules["torchvision.transforms.functional"].rgb_to_grayscale = _rgb_to_grayscale
    _stub("basicsr", root)
    _stub("basicsr.utils", root / "utils")
    _stub("basicsr.data", root / "data")
    degradations = _load("basicsr.data.degradations", root / "data" / "degradations.py")
  finally:
    for name in added:
      sys.modules.pop(name, None)
  diffjpeg = _load("basicsr.utils.diffjpeg", root / "utils" / "diffjpeg.py")
  img_process = _load("basicsr.utils.img_process_util", root / "utils" / "img_process_util.py")
  return types.SimpleNamespace(degradations=degradations, diffjpeg=diffjpeg,
                               img_process_util=img_process, torch=torch)


def load_spandrel_swinir() -> types.ModuleType | None:
  """spandrel's PyTorch SwinIR arch module, or None when spandrel is not installed.

  ``import spandrel`` imports every architecture and with them torchvision, so the file is
  imported under stand-in parent packages (the SwinIR file needs only torch).
  """
  import importlib  # pylint: disable=g-import-not-at-top

  name = "spandrel.architectures.SwinIR.__arch.SwinIR"
  if name not in sys.modules:
    spec = importlib.util.find_spec("spandrel")
    if spec is None or not spec.submodule_search_locations:
      return None
    root = pathlib.Path(list(spec.submodule_search_locations)[0])
    for pkg, sub in [("spandrel", ""), ("spandrel.architectures", "architectures"),
                     ("spandrel.architectures.SwinIR", "architectures/SwinIR")]:
      _stub(pkg, root / sub)
  return importlib.import_module(name)
