"""Full-image evaluation with the two protocols of the published super-resolution tables.

Shared by ``eval.py`` (scripted evaluation) and training (periodic evaluation).

The (LR, reference) pairs come from ``jaxsr.degradations``, which defines both protocols;
here the model's output is clipped and rounded to uint8 and scored:

``y`` protocol (SRCNN/FSRCNN/VDSR era, Y-channel models, the published bicubic rows):
  the model sees the 1-channel float LR of the rounded MATLAB Y plane; shave ``scale`` pixels
  per side; PSNR/SSIM on the uint8 Y planes (L = 255).

``rgb`` protocol (EDSR/RCAN/ESRGAN era, RGB models, BasicSR's test code):
  SR = model(LR / 255) with LR the uint8 bicubic LR of the RGB image; Y of HR and SR, not
  rounded; shave ``scale``; PSNR/SSIM (L = 255).

A *model* here is any callable ``upscale(lr) -> sr`` on one image batch ``[1, h, w, C]`` float32
in [0, 1] returning ``[1, scale*h, scale*w, C]``; ``bicubic`` gives MATLAB bicubic upscaling.
Metrics are computed in JAX on images zero-padded to size buckets (multiples of
``BUCKET``) with masks, so evaluating a set compiles the metric once per bucket, not per image.

Scoring is one function for every source of SR images, :func:`score_output`: a model's output
(``evaluate``, after clipping and rounding to uint8) and an image file another method produced
(``evaluate_outputs`` with :func:`sr_dir_outputs`) are both uint8 ``[H, W, C]`` at the modcropped
HR size and are turned into the protocol's Y plane by :func:`protocol_y` (``y``: the rounded
MATLAB Y, a 1-channel image is its own Y; ``rgb``: the unrounded Y, a 1-channel image first
replicated to RGB as the protocol does with grey HR images).

Metrics are looked up by name in ``METRICS`` (:func:`register_metric` adds one): ``psnr`` and
``ssim`` (computed together on the protocol's Y planes, shaved by ``scale``) and, when
``jaxsr.metrics`` provides them, ``niqe``, ``lpips`` (AlexNet) and ``lpips_vgg``. A metric
function is ``fn(sr_u8, hr_u8, *, scale, protocol) -> float`` on the protocol's uint8 images
(``hr_u8`` is ignored by no-reference metrics). NIQE and LPIPS conventions under each
protocol: :func:`_niqe_metric`, :func:`lpips_inputs`.

SR result folders (``--sr-dir``) are matched to the HR set by file name: see
:func:`find_sr_folder` (where a set's and a scale's images are) and :func:`match_sr_files`
(which file is which image). SR folders and the JSON results (:func:`write_document`) may be
remote (``gs://...``; ``jaxsr.files``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
import os
import pathlib
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import color
from jaxsr import degradations
from jaxsr import files
from jaxsr import imresize as imresize_lib
from jaxsr import metrics
from jaxsr.data.eval_sets import EVAL_SETS, EvalImage, load_eval_set
from jaxsr.data.images import image_files, read_image
from jaxsr.degradations import PROTOCOLS, Degraded, Protocol
from jaxsr.errors import InputError

__all__ = [
    "PROTOCOLS", "BUCKET", "DEFAULT_METRICS", "METRICS", "SR_SUFFIXES", "TABLE_FORMATS",
    "Degraded", "Grid", "Metric", "bicubic", "comparison_grid", "comparison_panel", "degrade",
    "evaluate", "evaluate_model", "evaluate_outputs", "find_sr_folder", "format_comparison",
    "format_table", "format_value", "lpips_inputs", "lpips_metric", "match_sr_files",
    "model_upscaler", "parse_metrics", "protocol_y", "register_metric", "results_document",
    "score", "score_output", "sr_dir_outputs", "to_uint8", "write_document", "write_results",
]

Upscaler = Callable[[np.ndarray], np.ndarray]
BUCKET = 64


def degrade(image: EvalImage, *, scale: int, protocol: Protocol) -> Degraded:
  """The protocol's (LR, reference) pair of an evaluation image (``degradations.degrade``).

  Raises:
    InputError: an unknown protocol, or the image is too small for this scale.
  """
  return degradations.degrade(image.hr, scale=scale, protocol=protocol, name=image.name)


def bicubic(scale: int) -> Upscaler:
  """MATLAB bicubic upscaling as an ``Upscaler`` (numpy float64; exact, no compilation)."""

  def upscale(lr: np.ndarray) -> np.ndarray:
    return imresize_lib.imresize_np(np.asarray(lr, np.float64), scale)

  return upscale


def model_upscaler(module, variables, *, scale: int,
                   dtype: Any = None) -> tuple[Upscaler, Protocol]:
  """An ``Upscaler`` running a Flax SR model through ``jaxsr.inference.upscale``.

  Bucketed: one compilation per size bucket, not per image. Returns it with the model's default
  protocol (1-channel models: ``y``; RGB models: ``rgb``). ``dtype``: the compute dtype
  (``inference.upscale``'s: None or 'float32', 'bfloat16', 'float16'); the output is float32.
  """
  from jaxsr import inference  # pylint: disable=g-import-not-at-top

  channels = int(getattr(module, "channels", 3))

  def upscale(lr: np.ndarray) -> np.ndarray:
    if lr.shape[-1] != channels:
      raise InputError(
          f"the model takes {channels}-channel input but the protocol gives {lr.shape[-1]} "
          f"(a Y-channel model needs protocol='y', an RGB model protocol='rgb')", field="protocol")
    return inference.upscale(module, variables, np.asarray(lr), scale=scale, dtype=dtype)

  return upscale, ("y" if channels == 1 else "rgb")


def _bucket(n: int) -> int:
  return int(math.ceil(n / BUCKET) * BUCKET)


@functools.lru_cache(maxsize=None)
def _metric_fn():
  def fn(x, y, height, width):
    return (metrics.psnr_masked(x, y, height, width, max_value=255.0),
            metrics.ssim_masked(x, y, height, width, max_value=255.0))
  return jax.jit(fn)


def score(sr_y: np.ndarray, hr_y: np.ndarray, *, crop: int) -> tuple[float, float]:
  """PSNR/SSIM of two ``[H, W, 1]`` 0..255 planes after shaving ``crop`` pixels per side.

  Images are zero-padded to a ``BUCKET`` multiple and scored with masks, so the metric
  compiles once per bucket shape.
  """
  x = sr_y[crop: sr_y.shape[0] - crop, crop: sr_y.shape[1] - crop]
  y = hr_y[crop: hr_y.shape[0] - crop, crop: hr_y.shape[1] - crop]
  h, w = x.shape[:2]
  pad = ((0, _bucket(h) - h), (0, _bucket(w) - w), (0, 0))
  xp = jnp.asarray(np.pad(x, pad), jnp.float32)
  yp = jnp.asarray(np.pad(y, pad), jnp.float32)
  p, s = _metric_fn()(xp, yp, jnp.int32(h), jnp.int32(w))
  return float(p), float(s)


@dataclasses.dataclass(frozen=True)
class Metric:
  """An image-quality measure usable by :func:`evaluate` and the tables.

  Attributes:
    name: the name used in ``--metrics``, the JSON and the tables.
    fn: ``fn(sr_u8, hr_u8, *, scale, protocol) -> float`` on the protocol's uint8 images
      ``[H, W, C]`` (``Degraded.hr`` and the SR image of the same size); a no-reference metric
      ignores ``hr_u8``.
    higher_is_better: which way the tables' "best" goes.
    digits: decimals printed in the tables (CSV prints two more).
    label: the column heading (e.g. ``PSNR``).
    setup: called once when the metric is selected (``parse_metrics``), before anything is
      computed: loads what the metric needs, raising ``InputError`` when it is missing.
  """
  name: str
  fn: Callable[..., float]
  higher_is_better: bool = True
  digits: int = 4
  label: str = ""
  setup: Callable[[], Any] | None = None


def _psnr_metric(sr_u8, hr_u8, *, scale: int, protocol: Protocol) -> float:
  return score(protocol_y(sr_u8, protocol), protocol_y(hr_u8, protocol), crop=scale)[0]


def _ssim_metric(sr_u8, hr_u8, *, scale: int, protocol: Protocol) -> float:
  return score(protocol_y(sr_u8, protocol), protocol_y(hr_u8, protocol), crop=scale)[1]


METRICS: dict[str, Metric] = {
    "psnr": Metric("psnr", _psnr_metric, True, 2, "PSNR"),
    "ssim": Metric("ssim", _ssim_metric, True, 4, "SSIM"),
}
DEFAULT_METRICS = ("psnr", "ssim")
_FUSED = ("psnr", "ssim")  # computed together by one compiled function (``score``)


def register_metric(metric: Metric) -> None:
  """Adds (or replaces) a metric in ``METRICS`` (names are lower case)."""
  METRICS[metric.name.lower()] = metric


def _metrics_function(name: str, module: str) -> Callable | None:
  """``jaxsr.metrics.<name>`` (or ``jaxsr.metrics._<module>.<name>``) if it exists, else None."""
  fn = getattr(metrics, name, None)
  if fn is None:
    try:
      module = importlib.import_module(f"jaxsr.metrics._{module}")
    except ImportError:
      return None
    fn = getattr(module, name, None)
  return fn


@functools.lru_cache(maxsize=None)
def _niqe_params() -> dict:
  return _metrics_function("load_niqe_params", "niqe")()


def _niqe_metric(sr_u8, hr_u8, *, scale: int, protocol: Protocol) -> float:
  """NIQE of the SR image only, ``scale`` pixels shaved per side (BasicSR's ``crop_border``).

  ``y``: on the protocol's rounded Y plane; ``rgb``: on the RGB image (NIQE takes its MATLAB Y).
  """
  del hr_u8  # no-reference
  image = protocol_y(sr_u8, "y") if protocol == "y" else np.asarray(sr_u8)
  niqe = _metrics_function("niqe", "niqe")
  return float(niqe(jnp.asarray(image, jnp.float32), params=_niqe_params(), max_value=255.0,
                    crop_border=scale))


def lpips_inputs(sr_u8: np.ndarray, hr_u8: np.ndarray, *, scale: int,
                 protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
  """The images LPIPS compares under a protocol: float32 ``[1, H, W, 3]`` in [0, 1] each.

  ``rgb``: the RGB images (grey ones replicated). ``y``: the protocol's Y planes (the rounded
  Y of an RGB SR image), replicated to 3 channels, so that every row of a ``y`` table, Y-only
  models included, gets a value. Both are shaved by ``scale`` pixels per side, like PSNR/SSIM.
  """

  def prepare(image):
    image = np.asarray(image)
    if protocol == "y":
      image = color.y_uint8(image)
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    image = image[scale: image.shape[0] - scale, scale: image.shape[1] - scale]
    return (image.astype(np.float32) / 255.0)[None]

  return prepare(sr_u8), prepare(hr_u8)


def lpips_metric(net: str = "alex", *, name: str | None = None,
                 params: Mapping[str, Any] | None = None,
                 backbone: str | os.PathLike | None = None,
                 linear: str | os.PathLike | None = None) -> Metric:
  """LPIPS v0.1 (``jaxsr.metrics.lpips``) as a :class:`Metric` on :func:`lpips_inputs`.

  Args:
    net: ``'alex'`` or ``'vgg'``.
    name: the metric's name (default ``lpips`` for AlexNet, ``lpips_vgg`` for VGG16).
    params: the LPIPS params pytree; None: ``jaxsr.convert.load_lpips_params(net, backbone=,
      linear=)`` once, when the metric is selected (its errors name the missing file).
    backbone, linear: weight files for the loader (default: where torch and ``lpips`` keep them).
  """
  loaded: dict[str, Any] = {}

  def setup():
    if "params" not in loaded:
      if params is not None:
        loaded["params"] = params
      else:
        from jaxsr import convert  # pylint: disable=g-import-not-at-top
        loaded["params"] = convert.load_lpips_params(net, backbone=backbone, linear=linear)
    return loaded["params"]

  def fn(sr_u8, hr_u8, *, scale: int, protocol: Protocol) -> float:
    x, y = lpips_inputs(sr_u8, hr_u8, scale=scale, protocol=protocol)
    return float(metrics.lpips(x, y, params=setup(), net=net)[0])

  name = name or ("lpips" if net == "alex" else f"lpips_{net}")
  label = "LPIPS" if net == "alex" else f"LPIPS-{net.upper()}"
  return Metric(name, fn, higher_is_better=False, digits=4, label=label, setup=setup)


def _register_optional_metrics() -> None:
  """Registers the perceptual metrics that ``jaxsr.metrics`` provides.

  ``niqe``: ``jaxsr.metrics.niqe`` with its pristine model (``load_niqe_params``);
  ``lpips`` / ``lpips_vgg``: :func:`lpips_metric` (weights loaded when selected).
  """
  if "niqe" not in METRICS and _metrics_function("niqe", "niqe") is not None:
    register_metric(Metric("niqe", _niqe_metric, False, 4, "NIQE", setup=_niqe_params))
  if getattr(metrics, "lpips", None) is not None:
    for net in ("alex", "vgg"):
      metric = lpips_metric(net)
      if metric.name not in METRICS:
        register_metric(metric)


def parse_metrics(text: str | Sequence[str]) -> tuple[str, ...]:
  """``"psnr,ssim,lpips"`` -> ``("psnr", "ssim", "lpips")``, checked against ``METRICS``.

  Raises:
    InputError: an empty list or an unknown name (field ``metrics``).
  """
  _register_optional_metrics()
  names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
  names = list(dict.fromkeys(n for n in names if n))
  if not names:
    raise InputError("empty list of metrics", field="metrics")
  for n in names:
    if n not in METRICS:
      raise InputError(f"unknown metric {n!r}; available: {', '.join(METRICS)}", field="metrics")
  for n in names:
    if METRICS[n].setup is not None:
      METRICS[n].setup()
  return tuple(names)


def to_uint8(sr: np.ndarray) -> np.ndarray:
  """A model's float output in [0, 1] clipped and rounded (half up) to uint8."""
  return np.floor(np.clip(np.asarray(sr, np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def protocol_y(image_u8: np.ndarray, protocol: Protocol) -> np.ndarray:
  """The Y plane the protocol scores, float64 ``[H, W, 1]`` in 0..255, of a uint8 image.

  ``y``: the MATLAB Y rounded to uint8 (a 1-channel image is its own Y). ``rgb``: the MATLAB Y,
  not rounded; a 1-channel image is replicated to RGB first (as the protocol does with grey HR).
  """
  image_u8 = np.asarray(image_u8)
  if protocol == "y":
    return color.y_uint8(image_u8).astype(np.float64)
  if image_u8.shape[-1] == 1:
    image_u8 = np.repeat(image_u8, 3, axis=-1)
  return color.y_float(image_u8)


def score_output(sr_u8: np.ndarray, pair: Degraded, *, scale: int, protocol: Protocol,
                 metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
  """Scores one uint8 SR image against its protocol pair: ``{metric: value}`` in order.

  The one scoring function behind both model outputs and SR image files. ``sr_u8`` is uint8
  ``[H, W, C]`` with ``H, W`` those of ``pair.hr`` (C = 1 or 3).
  """
  values: dict[str, float] = {}
  if any(m in _FUSED for m in metrics):
    values["psnr"], values["ssim"] = score(protocol_y(sr_u8, protocol), pair.hr_y, crop=scale)
  for m in metrics:
    if m not in values:
      try:
        values[m] = float(METRICS[m].fn(sr_u8, pair.hr, scale=scale, protocol=protocol))
      except InputError as e:
        raise InputError(f"{pair.name}: {m}: {e}") from None
  return {m: values[m] for m in metrics}


# on_image(pair, sr_u8, scores): called after each image is scored (progress, saving, reports).
ImageCallback = Callable[[Degraded, np.ndarray, dict], None]


def evaluate_outputs(outputs: Callable[[Degraded], np.ndarray], images: Sequence[EvalImage], *,
                     scale: int, protocol: Protocol, dataset: str,
                     metrics: Sequence[str] = DEFAULT_METRICS,
                     on_image: ImageCallback | None = None) -> dict:
  """Scores a set whose SR images come from ``outputs(pair) -> uint8 [H, W, C]``.

  Args:
    outputs: the SR image of a protocol pair, uint8 at ``pair.hr``'s height and width.
    images: the set's HR images.
    scale: integer upscaling factor.
    protocol: ``'y'`` or ``'rgb'`` (see the module docstring).
    dataset: the set's display name.
    metrics: names in ``METRICS``.
    on_image: called as ``on_image(pair, sr_u8, scores)`` after each image.

  Returns:
    ``{"dataset", "scale", "protocol", <metric>..., "images": [{"name", <metric>...}]}``
    with set means of the per-image values.
  """
  metrics = tuple(metrics)
  rows = []
  for image in images:
    pair = degrade(image, scale=scale, protocol=protocol)
    sr_u8 = np.asarray(outputs(pair))
    if sr_u8.shape[:2] != pair.hr.shape[:2]:
      raise InputError(f"{image.name}: SR image of {sr_u8.shape[0]}x{sr_u8.shape[1]} differs "
                       f"from the HR size {pair.hr.shape[0]}x{pair.hr.shape[1]} at x{scale}")
    scores = score_output(sr_u8, pair, scale=scale, protocol=protocol, metrics=metrics)
    rows.append({"name": image.name, **scores})
    if on_image is not None:
      on_image(pair, sr_u8, scores)
  return {
      "dataset": dataset,
      "scale": scale,
      "protocol": protocol,
      **{m: float(np.mean([r[m] for r in rows])) for m in metrics},
      "images": rows,
  }


def evaluate(upscale: Upscaler, images: Sequence[EvalImage], *, scale: int, protocol: Protocol,
             dataset: str, metrics: Sequence[str] = DEFAULT_METRICS,
             on_image: ImageCallback | None = None) -> dict:
  """Evaluates one model on one set at one scale with one protocol.

  Args:
    upscale: ``[1, h, w, C]`` float32 [0, 1] -> ``[1, scale*h, scale*w, C]``.
    images: the set's HR images.
    scale: integer upscaling factor.
    protocol: ``'y'`` or ``'rgb'`` (see the module docstring).
    dataset: the set's display name.
    metrics: names in ``METRICS`` (default PSNR and SSIM).
    on_image: called as ``on_image(pair, sr_u8, scores)`` after each image.

  Returns:
    ``{"dataset", "scale", "protocol", "psnr", "ssim", "images": [{"name", "psnr", "ssim"}]}``
    with set means of the per-image values (one key per metric, in ``metrics`` order).
  """

  def outputs(pair: Degraded) -> np.ndarray:
    sr = np.asarray(upscale(pair.lr[None]))[0]
    if sr.shape != pair.hr.shape:
      raise InputError(f"{pair.name}: model output shape {sr.shape} differs from the HR "
                       f"shape {pair.hr.shape} at x{scale}")
    return to_uint8(sr)

  return evaluate_outputs(outputs, images, scale=scale, protocol=protocol, dataset=dataset,
                          metrics=metrics, on_image=on_image)


# --------------------------------------------------------------------------------------------
# SR result folders of other methods.

# Suffixes stripped from an SR file's stem (case-insensitive), repeatedly, from the end; a number
# in them is a scale.
_TAGS = (
    re.compile(r"[_-]?x(\d+)$", re.I),            # baby_x4, babyx4
    re.compile(r"[_-]?srf[_-]?(\d+)$", re.I),     # baby_SRF_4
    re.compile(r"[_-]?sr[_-]?x?(\d+)$", re.I),    # baby_SRx4, baby_SR4
    re.compile(r"[_-]?sr$", re.I),                  # baby_SR, baby_x4_SR
)
# A scale token inside a method tag (baby_x4_ESRGAN, EDSR_x4_baby).
_TAG_SCALE = re.compile(r"(?:^|[_-])(?:x|srx|srf[_-]?)(\d+)(?=[_-]|$)", re.I)
_SEPARATORS = "_-."
SR_SUFFIXES = "_x4, x4, _SR, _x4_SR, _SRx4, _SRF_4 (any scale), or a method tag after _ or -"


def _match_stem(stem: str, names: Mapping[str, str]) -> tuple[str | None, set[int]]:
  """The HR name an SR file stem belongs to (or None) and the scales its tags name.

  ``names`` maps lower-case HR names to HR names.
  """
  if stem.lower() in names:
    return names[stem.lower()], set()
  base, scales = stem, set()
  stripped = True
  while stripped:
    stripped = False
    for tag in _TAGS:
      m = tag.search(base)
      if m and m.start() > 0:
        base = base[: m.start()]
        if m.groups():
          scales.add(int(m.group(1)))
        stripped = True
        if base.lower() in names:
          return names[base.lower()], scales
        break
  # A method tag before or after the name: <name>_<tag> or <tag>_<name> (longest name wins).
  low = stem.lower()
  for key in sorted(names, key=len, reverse=True):
    if len(low) > len(key) + 1 and low.startswith(key) and low[len(key)] in _SEPARATORS:
      rest = stem[len(key) + 1:]
    elif len(low) > len(key) + 1 and low.endswith(key) and low[-len(key) - 1] in _SEPARATORS:
      rest = stem[: -len(key) - 1]
    else:
      continue
    return names[key], {int(n) for n in _TAG_SCALE.findall(rest)}
  return None, set()


def match_sr_files(folder: str | os.PathLike, names: Sequence[str], *,
                   scale: int) -> dict[str, pathlib.Path]:
  """Which image file of ``folder`` is the SR result of each HR image, at ``scale``.

  A file matches HR image ``name`` when its stem is ``name`` or ``name`` followed by the usual
  suffixes (``SR_SUFFIXES``: ``_x4``, ``x4``, ``_SR``, ``_x4_SR``, ``_SRx4``, ...; case-insensitive)
  or by a method tag (``name_ESRGAN``, ``EDSR_name``). A file whose suffix names another scale
  (``baby_x2`` at x4) is ignored, so one folder may hold several scales.

  Returns:
    ``{HR name: file}`` for every name.

  Raises:
    InputError: (one line, naming the folder and the files) HR images without an SR file, files
      that match no HR image, or two files for one image.
  """
  folder = files.to_path(folder)
  lower = {n.lower(): n for n in names}
  found: dict[str, list[pathlib.Path]] = {}
  extra = []
  for path in image_files(folder):
    name, scales = _match_stem(path.stem, lower)
    if scales and scale not in scales:
      continue  # another scale's result
    if name is None:
      extra.append(path.name)
    else:
      found.setdefault(name, []).append(path)
  missing = [n for n in names if n not in found]
  twice = [f"{n} ({', '.join(p.name for p in found[n])})" for n in names
           if len(found.get(n, ())) > 1]
  problems = []
  if missing:
    problems.append(f"no SR image for {', '.join(missing)}")
  if extra:
    problems.append(f"files matching no HR image: {', '.join(extra)}")
  if twice:
    problems.append(f"several files for {'; '.join(twice)}")
  if problems:
    raise InputError(f"{folder}: SR images do not match the HR images at x{scale}: "
                     f"{'; '.join(problems)} (expected <name>.png, optionally with {SR_SUFFIXES})")
  return {n: found[n][0] for n in names}


def _children(folder: pathlib.Path) -> dict[str, pathlib.Path]:
  try:
    return {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
  except files.io_errors():
    return {}


def _set_names(dataset: str) -> list[str]:
  """The folder names a set's SR results may be under (display name, registry folders)."""
  names = [dataset]
  for display, folders in EVAL_SETS.values():
    if display.lower() == dataset.lower():
      names += list(folders)
  return list(dict.fromkeys(n.lower() for n in names))


def find_sr_folder(sr_dir: str | os.PathLike, *, dataset: str, scale: int,
                   only_set: bool) -> pathlib.Path:
  """The folder of ``sr_dir`` that holds the SR results of ``dataset`` at ``scale``.

  Tried in order (set and scale folder names case-insensitive; the set also under its registry
  folder names, e.g. ``BSD100`` for ``B100``): ``DIR/<set>/x<scale>``, ``DIR/<set>_x<scale>``,
  ``DIR/x<scale>/<set>``, ``DIR/<set>`` (unless it has ``x<N>`` subfolders only for other
  scales); and when ``only_set`` (one set evaluated): ``DIR/x<scale>``, ``DIR``. The first that
  holds image files is used.

  Raises:
    InputError: ``sr_dir`` is not a folder, or none of the places holds images.
  """
  root = files.to_path(sr_dir).expanduser()
  if not files.is_local(root):
    files.check_reachable(root, field="sr_dir")
  if not root.is_dir():
    raise InputError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder",
                     field="sr_dir")
  xs = f"x{scale}"
  top = _children(root)
  tried = []
  candidates = []
  for n in _set_names(dataset):
    set_dir = top.get(n)
    if set_dir is not None:
      sub = _children(set_dir)
      candidates.append(sub.get(xs, set_dir / xs))
    candidates.append(top.get(f"{n}_{xs}", root / f"{dataset}_{xs}"))
    if xs in top:
      candidates.append(_children(top[xs]).get(n, top[xs] / dataset))
    if set_dir is not None:
      if not any(re.fullmatch(r"x\d+", k) for k in _children(set_dir)):
        candidates.append(set_dir)
  if only_set:
    candidates += [top.get(xs, root / xs), root]
  for c in dict.fromkeys(candidates):
    tried.append(str(c))
    if c.is_dir() and image_files(c):
      return c
  raise InputError(f"{root}: no SR images of {dataset} at x{scale}; looked in "
                   f"{', '.join(dict.fromkeys(tried)) or root}")


def _image_size(path: pathlib.Path) -> tuple[int, int]:
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    if files.is_local(path):
      with Image.open(path) as img:
        return img.size[1], img.size[0]
    with files.as_path(path).open("rb") as f, Image.open(f) as img:
      return img.size[1], img.size[0]
  except Exception as e:  # pylint: disable=broad-except
    raise InputError(f"{path}: cannot read image ({e})") from None


def sr_dir_outputs(files: Mapping[str, pathlib.Path], images: Sequence[EvalImage], *,
                   scale: int) -> Callable[[Degraded], np.ndarray]:
  """An ``outputs`` function (:func:`evaluate_outputs`) reading SR files ``{name: path}``.

  An SR image must have the modcropped HR size (what a model produces from the protocol's LR)
  or the HR file's own size (then it is modcropped the same way). Sizes are checked here, from
  the file headers, before anything is computed.

  Raises:
    InputError: a file of another size (naming it and both sizes) or unreadable.
  """
  for image in images:
    h, w = image.hr.shape[:2]
    want = (h - h % scale, w - w % scale)
    got = _image_size(files[image.name])
    if got != want and got != (h, w):
      raise InputError(f"{files[image.name]}: SR image of {got[0]}x{got[1]} does not match "
                       f"{image.name} at x{scale} (HR {h}x{w}, modcropped {want[0]}x{want[1]})")

  def outputs(pair: Degraded) -> np.ndarray:
    return degradations.modcrop(read_image(files[pair.name]), scale)

  return outputs


# --------------------------------------------------------------------------------------------
# Tables.


def _cell(r: dict | None, metrics: Sequence[str]) -> str:
  if r is None:
    return "-"
  return "/".join(format_value(r[m], METRICS[m].digits) for m in metrics)


def format_value(value: float, digits: int) -> str:
  """``value`` with ``digits`` decimals (``inf`` for an infinite PSNR)."""
  return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def format_table(results: Sequence[dict], *, model: str,
                 metrics: Sequence[str] = DEFAULT_METRICS) -> str:
  """The paper-style table: one row per (protocol, scale), one PSNR/SSIM column per set."""
  datasets = list(dict.fromkeys(r["dataset"] for r in results))
  keys = list(dict.fromkeys((r["protocol"], r["scale"]) for r in results))
  cell = {(r["protocol"], r["scale"], r["dataset"]): r for r in results}
  width = max([16] + [len(d) + 2 for d in datasets] + [6 * len(metrics) + 4])
  lines = [f"{'Model':<12}{'Protocol':<10}{'Scale':<7}"
           + "".join(f"{d:<{width}}" for d in datasets)]
  for protocol, scale in keys:
    row = f"{model:<12}{protocol:<10}{'x' + str(scale):<7}"
    for d in datasets:
      row += _cell(cell.get((protocol, scale, d)), metrics).ljust(width)
    lines.append(row)
  return "\n".join(lines)


TABLE_FORMATS = ("text", "markdown", "latex", "csv", "json")


@dataclasses.dataclass(frozen=True)
class Grid:
  """A comparison table: methods as rows, (set, scale) as columns.

  Attributes:
    columns: ``(dataset, scale)`` per column.
    metrics: the metric names of each cell, in order.
    rows: ``(method, protocol, cells)``; ``cells[j][k]`` is column ``j``'s metric ``k`` as
      ``(value or None, is_best)``; best is per column, metric and protocol (ties all best).
  """
  columns: list[tuple[str, int]]
  metrics: tuple[str, ...]
  rows: list[tuple[str, str, list[list[tuple[float | None, bool]]]]]


def comparison_grid(methods: Sequence[tuple[str, Sequence[dict]]], *,
                    metrics: Sequence[str] = DEFAULT_METRICS) -> Grid:
  """Builds the comparison :class:`Grid` of ``[(method label, evaluate entries), ...]``."""
  metrics = tuple(metrics)
  columns = list(dict.fromkeys((r["dataset"], r["scale"]) for _, res in methods for r in res))
  datasets = list(dict.fromkeys(d for d, _ in columns))
  columns.sort(key=lambda c: (datasets.index(c[0]), c[1]))
  raw = []
  for label, res in methods:
    for protocol in dict.fromkeys(r["protocol"] for r in res):
      cell = {(r["dataset"], r["scale"]): r for r in res if r["protocol"] == protocol}
      raw.append((label, protocol, [[cell[c][m] if c in cell else None for m in metrics]
                                    for c in columns]))
  rows = []
  for label, protocol, values in raw:
    cells = []
    for j, col in enumerate(values):
      out = []
      for k, v in enumerate(col):
        metric = METRICS[metrics[k]]
        others = [r[2][j][k] for r in raw if r[1] == protocol and r[2][j][k] is not None]
        rounded = [round(o, metric.digits) for o in others]
        best = (max if metric.higher_is_better else min)(rounded) if rounded else None
        out.append((v, v is not None and len(raw) > 1 and round(v, metric.digits) == best))
      cells.append(out)
    rows.append((label, protocol, cells))
  return Grid(columns, metrics, rows)


def _latex_escape(text: str) -> str:
  return re.sub(r"([&%$#_{}])", r"\\\1", text)


def format_comparison(methods: Sequence[tuple[str, Sequence[dict]]], *, fmt: str = "text",
                      metrics: Sequence[str] = DEFAULT_METRICS, **extra: Any) -> str:
  """One table of several methods: methods as rows, set and scale as columns.

  Args:
    methods: ``[(label, evaluate entries), ...]`` in row order.
    fmt: ``text`` (aligned columns), ``markdown`` / ``latex`` (best value per column, metric and
      protocol in bold), ``csv`` (one column per set, scale and metric, two more decimals), or
      ``json`` (:func:`results_document`).
    metrics: the metrics shown in each cell (``PSNR/SSIM``).
    extra: provenance for ``json`` (see :func:`results_document`).
  """
  if fmt == "json":
    return json.dumps(results_document(methods, **extra), indent=1)
  if fmt not in TABLE_FORMATS:
    raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(TABLE_FORMATS)}",
                     field="format")
  grid = comparison_grid(methods, metrics=metrics)
  protocols = list(dict.fromkeys(r[1] for r in grid.rows))
  mixed = len(protocols) > 1
  unit = "/".join(METRICS[m].label or m.upper() for m in grid.metrics)

  def text_cell(cell, bold: Callable[[str], str] | None):
    parts = []
    for (v, best), m in zip(cell, grid.metrics):
      s = "-" if v is None else format_value(v, METRICS[m].digits)
      parts.append(bold(s) if bold and best else s)
    return "/".join(parts)

  if fmt == "csv":
    head = ["method", "protocol"] + [f"{d} x{s} {METRICS[m].label or m}"
                                     for d, s in grid.columns for m in grid.metrics]
    lines = [",".join(_csv(h) for h in head)]
    for label, protocol, cells in grid.rows:
      vals = ["" if v is None else format_value(v, METRICS[m].digits + 2)
              for cell in cells for (v, _), m in zip(cell, grid.metrics)]
      lines.append(",".join([_csv(label), protocol] + vals))
    return "\n".join(lines)
  headers = [f"{d} x{s}" for d, s in grid.columns]
  if fmt == "markdown":
    first = ["Method"] + (["Protocol"] if mixed else [])
    lines = [f"| {' | '.join(first + headers)} |",
             "|" + "---|" * len(first) + ":---:|" * len(headers)]
    for label, protocol, cells in grid.rows:
      lines.append("| " + " | ".join([label] + ([protocol] if mixed else []) +
                                     [text_cell(c, lambda s: f"**{s}**") for c in cells]) + " |")
    lines.append("")
    lines.append(f"{unit}, protocol {', '.join(protocols)}; best in bold.")
    return "\n".join(lines)
  if fmt == "latex":
    first = ["Method"] + (["Protocol"] if mixed else [])
    spec = "l" * len(first) + "|" + "c" * len(headers)
    lines = [f"% {unit}, protocol {', '.join(protocols)}; best in bold",
             f"\\begin{{tabular}}{{{spec}}}", "\\hline",
             " & ".join(first + [f"{_latex_escape(d)} $\\times${s}" for d, s in grid.columns])
             + " \\\\", "\\hline"]
    for label, protocol, cells in grid.rows:
      lines.append(" & ".join([_latex_escape(label)] + ([protocol] if mixed else []) +
                              [text_cell(c, lambda s: f"\\textbf{{{s}}}") for c in cells])
                   + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)
  # text
  body = [[label, protocol] + [text_cell(c, None) for c in cells]
          for label, protocol, cells in grid.rows]
  head = ["Method", "Protocol"] + headers
  widths = [max(len(r[i]) for r in [head] + body) + 2 for i in range(len(head))]
  lines = ["".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
  lines += ["".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
  lines.append(f"({unit})")
  return "\n".join(lines)


def _csv(text: str) -> str:
  return f'"{text}"' if any(ch in text for ch in ',"\n') and not text.startswith('"') else text


def results_document(methods: Sequence[tuple[str, Sequence[dict]]],
                     provenance: Sequence[Mapping[str, Any]] | None = None) -> dict:
  """The results JSON of one or several methods.

  One method: ``{"model": label, **provenance, "results": entries}`` (the shape of
  :func:`write_results`). Several: ``{"methods": [that shape, one per method]}``.
  """
  provenance = list(provenance or [{}] * len(methods))
  docs = [{"model": label, **{k: v for k, v in prov.items()}, "results": list(res)}
          for (label, res), prov in zip(methods, provenance)]
  return docs[0] if len(docs) == 1 else {"methods": docs}


def write_results(path: str | os.PathLike, results: Sequence[dict], *, model: str,
                  **extra: Any) -> pathlib.Path:
  """Writes evaluation results as JSON, atomically; returns the path written.

  The file is ``{"model": model, **extra, "results": results}`` (keys in this order,
  ``indent=1``) with ``results`` the entries of :func:`evaluate`; ``extra`` holds
  JSON-serialisable provenance such as ``weights=...`` and ``checkpoint=...``. The parent
  folder is created; the JSON goes to ``<path>.tmp`` first and then replaces ``path``, so
  readers never see a partial file.
  """
  return write_document(path, {"model": model, **extra, "results": list(results)})


def write_document(path: str | os.PathLike, document: Mapping[str, Any]) -> pathlib.Path:
  """Writes a JSON document (``indent=1``) atomically (``<path>.tmp``, then renamed)."""
  path = files.to_path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  return files.write_atomic(path, lambda f: f.write(json.dumps(dict(document), indent=1).encode()))


def evaluate_model(module, variables, *, datasets: Sequence[str], scale: int,
                   protocol: Protocol | None = None, data_dir: str | None = None,
                   dtype: Any = None) -> list[dict]:
  """Evaluates a Flax SR model on several sets (``jaxsr.data.load_eval_set`` names or folders).

  Args:
    module, variables: the model and its variables (``model_upscaler``).
    datasets: set names or folders, evaluated in this order.
    scale: the upscaling factor.
    protocol: ``'y'`` or ``'rgb'``; None: the model's default (``model_upscaler``).
    data_dir: where named sets are found (None: ``$JAXSR_DATA_DIR``).
    dtype: the compute dtype of the model (``model_upscaler``).

  Returns:
    One :func:`evaluate` entry per set.
  """
  upscale, default_protocol = model_upscaler(module, variables, scale=scale, dtype=dtype)
  results = []
  for spec in datasets:
    name, images = load_eval_set(spec, data_dir=data_dir)
    results.append(evaluate(upscale, images, scale=scale, protocol=protocol or default_protocol,
                            dataset=name))
  return results


def comparison_panel(module, variables, *, dataset: str, scale: int,
                     data_dir: str | None = None) -> np.ndarray:
  """LR (nearest-neighbour enlarged) | bicubic | model | HR of the first image of ``dataset``.

  The image is degraded with the protocol that suits the model (``y`` for 1-channel models,
  ``rgb`` otherwise). Returns float32 ``[H, 4 * W, 3]`` in [0, 1] (a 1-channel panel is
  repeated to 3 channels), ``H, W`` the modcropped HR size.
  """
  _, images = load_eval_set(dataset, data_dir=data_dir)
  channels = getattr(module, "channels", 3)
  pair = degrade(images[0], scale=scale, protocol="y" if channels == 1 else "rgb")
  sr = np.clip(model_upscaler(module, variables, scale=scale)[0](pair.lr[None])[0], 0, 1)
  smooth = np.clip(bicubic(scale)(pair.lr[None])[0], 0, 1)
  lr_big = np.repeat(np.repeat(pair.lr, scale, 0), scale, 1)
  panel = np.concatenate([lr_big, smooth, sr, pair.hr.astype(np.float32) / 255.0], axis=1)
  if panel.shape[-1] == 1:
    panel = np.repeat(panel, 3, -1)
  return panel.astype(np.float32)
