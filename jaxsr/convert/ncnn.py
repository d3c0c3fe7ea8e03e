"""Imports ncnn models (``.param`` + ``.bin``) as ordinary jaxsr models.

``import_ncnn(param_path, bin_path=None) -> Imported``: reads the graph and its weights with
:mod:`jaxsr.convert.ncnn_format`, then asks each family matcher in :data:`MATCHERS` in turn.
A matcher has the signature ``match(layers, weights, *, source) -> Imported | None``: None
means "not my family"; a graph that starts like its family but deviates raises ``InputError``
naming the first layer that does not fit. The result is a registry model (``Imported.module``)
with ``{'params': ...}`` that trains, tiles, evaluates and saves like any other; nothing of the
ncnn graph is interpreted at run time.

Families: Real-ESRGAN's RRDBNet and SRVGGNetCompact (:mod:`jaxsr.convert.ncnn_realesrgan`),
Real-CUGAN and waifu2x (:mod:`jaxsr.convert.ncnn_unet`). A graph that no matcher claims is
refused with one line naming its first layer of a type no family uses, or else the layer
sequence it starts with.

Example::

  from jaxsr.convert import ncnn
  imp = ncnn.import_ncnn('REALESRGAN_ANIMAVIDEOV3_UP4X.param')   # .bin beside it
  sr = jaxsr.inference.upscale(imp.module, imp.variables, lr)     # NHWC RGB in [0, 1]
"""

from __future__ import annotations

import os
import pathlib

from jaxsr.convert import ncnn_format
from jaxsr.convert import ncnn_realesrgan
from jaxsr.convert import ncnn_unet
from jaxsr.convert._common import Imported
from jaxsr.errors import InputError

MATCHERS = (ncnn_realesrgan.match_rrdbnet, ncnn_realesrgan.match_srvgg,
            ncnn_unet.match_realcugan, ncnn_unet.match_waifu2x)

# Layer types some family maps (for naming the first unmappable layer of an unknown graph).
KNOWN_TYPES = frozenset({'Input', 'Split', 'Convolution', 'Deconvolution', 'PReLU', 'ReLU',
                         'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle', 'Crop',
                         'Pooling', 'InnerProduct', 'Scale', 'Sigmoid', 'Flatten', 'Padding'})


def bin_path_for(param_path: str | os.PathLike) -> pathlib.Path:
  """``x.param`` -> ``x.bin`` (the ncnn convention)."""
  path = pathlib.Path(param_path)
  return path.with_suffix('.bin') if path.suffix == '.param' else path.with_name(path.name + '.bin')


def import_ncnn(param_path: str | os.PathLike,
                bin_path: str | os.PathLike | None = None) -> Imported:
  """Imports an ncnn model as a jaxsr model.

  Args:
    param_path: the ``.param`` text graph.
    bin_path: its weights (default: the ``.bin`` of the same name beside it).

  Returns:
    An :class:`Imported` with ``format='ncnn'``.

  Raises:
    InputError: unreadable/malformed files (see :mod:`jaxsr.convert.ncnn_format`), or a graph
      no family maps, naming the first layer or pattern it cannot map.
  """
  param_path = pathlib.Path(param_path)
  bin_path = pathlib.Path(bin_path) if bin_path is not None else bin_path_for(param_path)
  if not bin_path.is_file():
    raise InputError(f"{bin_path}: the ncnn weights file does not exist (pass bin_path)",
                     field='bin_path')
  layers = ncnn_format.read_param(param_path)
  weights = ncnn_format.read_weights(bin_path, layers)
  source = str(param_path)
  for match in MATCHERS:
    found = match(layers, weights, source=source)
    if found is not None:
      return found
  for layer in layers:
    if layer.type not in KNOWN_TYPES:
      raise InputError(f"{source}: layer {layer.name!r} of type {layer.type!r} cannot be mapped "
                       f"onto a jaxsr model (supported graphs: Real-ESRGAN RRDBNet / "
                       f"SRVGGNetCompact, Real-CUGAN, waifu2x)")
  start = ' -> '.join(l.type for l in layers if l.type != 'Split')
  raise InputError(f"{source}: unrecognised ncnn graph {start[:80]}...: no importer maps it "
                   f"(supported: Real-ESRGAN RRDBNet / SRVGGNetCompact, Real-CUGAN, waifu2x)")
