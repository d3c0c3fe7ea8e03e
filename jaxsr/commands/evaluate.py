"""Scripted evaluation: the paper-style table of one or several methods; JSON, images, report.

  jaxsr eval --model bicubic --datasets set5,set14 --scales 2,3,4 --protocol y --data-dir DIR
      [--output-json FILE]
  jaxsr eval --model srcnn --weights srcnn_9-5-5_imagenet_x3.mat --datasets set5 --scales 3
  jaxsr eval --checkpoint DIR --datasets set5      # a jaxsr checkpoint (imported or trained)
  jaxsr eval --checkpoint DIR --datasets set5 --dtype bfloat16   # reduced-precision inference
  jaxsr eval --model bicubic --sr-dir EDSR=results/EDSR --checkpoint runs/a --checkpoint runs/b \
      --datasets set5,set14 --scales 4 --format latex --report report/

(``python eval.py ...`` in a source checkout is the same program.)

Methods (the table's rows, in this order): ``--model bicubic`` (MATLAB bicubic; included when
given explicitly or when no other method is), each ``--sr-dir`` (another method's SR images),
each ``--weights`` file (converted on the fly, its architecture recognised from the file and
checked against ``--model`` when given; its scale comes from the file unless ``--scales`` is
given) and each ``--checkpoint`` (a jaxsr checkpoint,
EMA weights when present, at its own scale). ``--weights``, ``--checkpoint`` and ``--sr-dir``
are repeatable and accept ``LABEL=PATH`` to name the row (default: the checkpoint's model name,
the weights' family, the SR folder's name). Models run through ``jaxsr.inference.upscale``
(size buckets: a few compilations per set, not one per image).

DATASETS is a comma-separated list of registered set names (see ``jaxsr.data.list_eval_sets``)
or folders of HR images. The protocols are those of ``jaxsr.eval_lib``: ``y`` scores the MATLAB
Y channel of a Y-only super-resolution (the SRCNN-era tables), ``rgb`` the Y channel of an RGB
model's output (the EDSR-era tables). The default follows the models: ``y`` for Y-channel models,
``rgb`` for RGB models; bicubic and SR folders take the protocol of the models in the table when
they all agree, else ``y``. Without ``--scales``, models are evaluated at their own scale and
bicubic / SR folders at all of those (2,3,4 when there is no model).

An ``--sr-dir`` holds one set (with one ``--datasets``) or one folder per set, each possibly
split per scale: ``DIR/Set5/x4/``, ``DIR/Set5_x4/``, ``DIR/x4/Set5/``, ``DIR/Set5/``, ``DIR/x4/``,
``DIR/``. A file is the SR image of HR image ``NAME`` when it is ``NAME.png`` (any image
extension) or ``NAME`` with the usual suffixes (``_x4``, ``x4``, ``_SR``, ``_x4_SR``, ``_SRx4``,
``_SRF_4``; case-insensitive) or a method tag (``NAME_ESRGAN``, ``EDSR_NAME``); a suffix naming
another scale means another scale's file. SR images have the modcropped HR size (or the HR
size, then modcropped). A missing, extra or ambiguous file or a size mismatch ends the program
with one line naming it.

Output: the table on stdout (``--format text|markdown|latex|csv|json``; one method in text is
the historical layout, protocol/scale rows and set columns), ``--output-json FILE`` (one method:
``{"model", "weights", "checkpoint", "results"}``; several: ``{"methods": [...]}``),
``--save-images DIR`` (``DIR/<method>/<set>/x<scale>/<name>.png``, the image as scored),
``--report DIR`` (``DIR/index.html``, self-contained). ``--metrics`` picks the measures
(``psnr,ssim`` by default; ``niqe``, with its model from ``--niqe-params``,
``$JAXSR_NIQE_PARAMS`` or the installed basicsr; ``lpips`` / ``lpips_vgg``, with the weights
of ``--lpips-backbone`` / ``--lpips-linear`` or where torch and the lpips package keep them). A
progress bar with ETA goes to stderr when it is a terminal. User mistakes (missing folders,
corrupt files, unknown names, unmatched SR files) end with a one-line error and exit status 2.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import pathlib
import re
import sys
import time
from typing import Any, Callable, NoReturn, Sequence, TextIO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np

from jaxsr import color
from jaxsr import eval_lib
from jaxsr import files
from jaxsr import loading
from jaxsr import runtime
from jaxsr.commands import _program
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError

__all__ = ["ProgressBar", "main", "run", "run_methods", "start"]

_MODEL = flags.DEFINE_string("model", "bicubic",
                             "Model to evaluate: 'bicubic', or with --weights the registry name "
                             "the file's model must have (optional: the architecture is "
                             "recognised from the file).")
_WEIGHTS = flags.DEFINE_multi_string("weights", None,
                                     "A published weights file (SRCNN .mat, OpenCV .pb, .pth or "
                                     ".safetensors in a recognised layout, ncnn .param), "
                                     "converted on the fly. Repeatable; LABEL=FILE names the row.")
_CHECKPOINT = flags.DEFINE_multi_string("checkpoint", None,
                                        "A jaxsr checkpoint directory (imported weights or a "
                                        "training run); evaluated at its own scale. Repeatable; "
                                        "LABEL=DIR names the row.")
_SR_DIR = flags.DEFINE_multi_string("sr-dir", None,
                                    "A folder of another method's SR images, matched to the HR "
                                    "set by name (layouts and names: the text above). "
                                    "Repeatable; LABEL=DIR names the "
                                    "row (default: the folder's name).")
_DATASETS = flags.DEFINE_string("datasets", "set5,set14",
                                "Comma-separated registered set names or HR image folders.")
_SCALES = flags.DEFINE_string("scales", "2,3,4", "Comma-separated integer scales.")
_PROTOCOL = flags.DEFINE_enum("protocol", None, list(eval_lib.PROTOCOLS),
                              "Evaluation protocol; default: y for Y-channel models and bicubic, "
                              "rgb for RGB models; bicubic and --sr-dir rows follow the models "
                              "of the table when they agree.")
_DATA_DIR = flags.DEFINE_string("data-dir", None,
                                "Where registered sets live (<dir>/Set5 or <dir>/benchmarks/Set5); "
                                "default $JAXSR_DATA_DIR.")
_OUTPUT_JSON = flags.DEFINE_string("output-json", None, "Write the results as JSON here.")
_FORCE_SCALE = flags.DEFINE_bool("force-scale", False,
                                 "Evaluate --weights / --checkpoint at --scales other than the "
                                 "scale they were trained for (otherwise an error).")
_METRICS = flags.DEFINE_string("metrics", ",".join(eval_lib.DEFAULT_METRICS),
                               "Comma-separated metrics: psnr, ssim, niqe, lpips (AlexNet), "
                               "lpips_vgg.")
_NIQE_PARAMS = flags.DEFINE_string("niqe-params", None,
                                   "NIQE's pristine-image model (niqe_pris_params.npz) for "
                                   "--metrics niqe; default $JAXSR_NIQE_PARAMS, else the copy "
                                   "in the installed basicsr package.")
_LPIPS_BACKBONE = flags.DEFINE_string("lpips-backbone", None,
                                      "torchvision's ImageNet AlexNet (lpips) or VGG16 (lpips_vgg) "
                                      "weights file; default: the torch hub checkpoint cache.")
_LPIPS_LINEAR = flags.DEFINE_string("lpips-linear", None,
                                    "The lpips package's weights/v0.1/<net>.pth; default: the "
                                    "installed lpips package's.")
_FORMAT = flags.DEFINE_enum("format", None, list(eval_lib.TABLE_FORMATS),
                            "Table format on stdout (markdown/latex: best per column in bold); "
                            "default text.")
_SAVE_IMAGES = flags.DEFINE_string("save-images", None,
                                   "Write each SR image as DIR/<method>/<set>/x<scale>/<name>.png.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"],
                           "Compute dtype of --weights / --checkpoint models (bfloat16 or "
                           "float16 for speed on GPU/TPU; the README lists the PSNR change);"
                           " the output is scored in float32 all the same.")
_REPORT = flags.DEFINE_string("report", None,
                              "Write a self-contained HTML report (table, per-image crops, "
                              "curves) as DIR/index.html.")

_FLAG_NAMES = ("model", "weights", "checkpoint", "sr-dir", "datasets", "scales", "protocol",
               "data-dir", "output-json", "force-scale", "metrics", "niqe-params",
               "lpips-backbone", "lpips-linear", "format",
               "save-images", "report", "dtype")
# Library error fields (InputError.field) -> the flag that sets them.
_FLAG_OF_FIELD = {"model": "--model", "weights": "--weights", "checkpoint": "--checkpoint",
                  "scale": "--scales", "protocol": "--protocol", "data_dir": "--data-dir",
                  "sr_dir": "--sr-dir", "metrics": "--metrics", "format": "--format",
                  "save_images": "--save-images", "report": "--report",
                  "output_json": "--output-json",
                  "niqe_params": "--niqe-params", "lpips_backbone": "--lpips-backbone",
                  "lpips_linear": "--lpips-linear"}


def _parse_scales(text: str) -> list[int]:
  try:
    scales = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise InputError(f"--scales: expected comma-separated integers, got {text!r}") from None
  if not scales or min(scales) < 1:
    raise InputError(f"--scales: expected integers >= 1, got {text!r}")
  return scales


class ProgressBar:
  """A one-line progress bar with ETA on a terminal stream; silent on anything else.

  ``start(label, total)`` then ``step()`` per image; ``close()`` erases the line. Nothing is
  written when ``stream`` is not a TTY (logs and pipes stay clean; stdout is never used).
  """

  def __init__(self, stream: TextIO | None = None, *, width: int = 24,
               clock: Callable[[], float] = time.monotonic):
    self._stream = sys.stderr if stream is None else stream
    self.enabled = bool(getattr(self._stream, "isatty", lambda: False)())
    self._width = width
    self._clock = clock
    self._label, self._total, self._done, self._t0 = "", 0, 0, 0.0

  def start(self, label: str, total: int) -> None:
    self._label, self._total, self._done, self._t0 = label, total, 0, self._clock()
    self._draw()

  def step(self) -> None:
    self._done += 1
    self._draw()

  def line(self) -> str:
    """The current bar: ``label [####....] done/total elapsed ETA``."""
    total = max(self._total, 1)
    filled = int(self._width * self._done / total)
    elapsed = self._clock() - self._t0
    eta = elapsed / self._done * (self._total - self._done) if self._done else float("nan")
    eta_text = "?" if np.isnan(eta) else f"{eta:.0f}s"
    return (f"{self._label} [{'#' * filled}{'.' * (self._width - filled)}] "
            f"{self._done}/{self._total} {elapsed:.0f}s ETA {eta_text}")

  def _draw(self) -> None:
    if self.enabled:
      self._stream.write("\r\x1b[K" + self.line())
      self._stream.flush()

  def close(self) -> None:
    if self.enabled:
      self._stream.write("\r\x1b[K")
      self._stream.flush()


@dataclasses.dataclass
class _Method:
  kind: str  # "bicubic", "sr_dir", "weights", "checkpoint"
  path: str | None = None
  label: str | None = None  # the row's label (LABEL= or the default)
  named: bool = False  # the label was given by the user
  loaded: dict[int, loading.LoadedModel] = dataclasses.field(default_factory=dict)

  def provenance(self) -> dict[str, Any]:
    prov = {"weights": self.path if self.kind == "weights" else None,
            "checkpoint": self.path if self.kind == "checkpoint" else None}
    if self.kind == "sr_dir":
      prov["sr_dir"] = self.path
    return prov


def _as_list(value: str | Sequence[str] | None) -> list[str]:
  if value is None:
    return []
  return [value] if isinstance(value, str) else list(value)


def _split_label(value: str) -> tuple[str | None, str]:
  """``LABEL=PATH`` -> (LABEL, PATH) unless the whole value is an existing path."""
  if "=" in value and not os.path.exists(value):
    label, path = value.split("=", 1)
    if label and os.sep not in label:
      return label, path
  return None, value


def _safe(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "method"


def run_methods(*, model: str = "bicubic", datasets: str, scales: str | None,
                protocol: str | None, data_dir: str | None,
                weights: str | Sequence[str] | None = None,
                checkpoint: str | Sequence[str] | None = None,
                sr_dir: str | Sequence[str] | None = None, bicubic: bool | None = None,
                force_scale: bool = False, metrics: str | Sequence[str] = "psnr,ssim",
                save_images: str | None = None, report: str | None = None,
                progress: ProgressBar | None = None,
                dtype: str | None = None) -> list[tuple[str, list[dict]]]:
  """Evaluates every method; returns ``[(row label, eval_lib.evaluate entries), ...]``.

  See the module docstring for the methods, their order, labels, scales and protocols.
  ``bicubic=None``: bicubic is a row when no other method is given. ``save_images`` /
  ``report``: folders to write the SR images / the HTML report to. ``dtype``: the models'
  compute dtype (``jaxsr.inference.upscale``; None: float32).

  Raises:
    InputError: bad input, before anything is computed where it can be detected from names,
      file headers and sizes; ``field`` names the argument when it is one of the loader's.
  """
  weights, checkpoint, sr_dir = _as_list(weights), _as_list(checkpoint), _as_list(sr_dir)
  for field, where in (("save_images", save_images), ("report", report)):
    if where and not files.is_local(where):  # one line, not a hang, for an unreachable store
      files.check_reachable(where, field=field)
  if weights and model == "bicubic":
    model_family = None  # the loader names --model as missing
  else:
    model_family = model
  if not (weights or checkpoint or sr_dir) and model != "bicubic":
    raise InputError(f"unknown model {model!r}; available: bicubic, or a registry name with "
                     f"--weights FILE, or --checkpoint DIR", field="model")
  methods: list[_Method] = []
  if bicubic or (bicubic is None and not (weights or checkpoint or sr_dir)):
    methods.append(_Method("bicubic"))
  for kind, values in (("sr_dir", sr_dir), ("weights", weights), ("checkpoint", checkpoint)):
    for value in values:
      label, path = _split_label(value)
      methods.append(_Method(kind, path, label, named=label is not None))
  metric_names = eval_lib.parse_metrics(metrics)
  specs = [d.strip() for d in datasets.split(",") if d.strip()]
  if not specs:
    raise InputError("--datasets: empty list")

  def load(method: _Method, scale: int | None) -> loading.LoadedModel:
    if scale is None or scale not in method.loaded:
      source = ({"checkpoint": method.path} if method.kind == "checkpoint"
                else {"weights": method.path, "model": model_family})
      kw = {"scale": scale, "force_scale": force_scale} if scale is not None else {}
      net = loading.load_model(**source, **kw)
      method.loaded.setdefault(net.scale if scale is None else scale, net)
      return net
    return method.loaded[scale]

  file_methods = [m for m in methods if m.kind in ("weights", "checkpoint")]
  own_scale: dict[int, int] = {}
  for m in file_methods:
    if scales is None or (m.label is None and m.kind == "checkpoint"):
      net = load(m, None)
      own_scale[id(m)] = net.scale
      if m.label is None and m.kind == "checkpoint":
        m.label = net.name
  if scales is None:
    all_scales = sorted(set(own_scale.values())) or [2, 3, 4]
  else:
    all_scales = _parse_scales(scales)
  # Labels: unique; a clash adds the file's / folder's name (an SR folder's parent), then #N.
  for m in methods:
    if m.label is None:
      m.label = ("bicubic" if m.kind == "bicubic" else model if m.kind == "weights"
                 else _resolved(m.path).name)
  counts = collections.Counter(m.label for m in methods)
  for m in methods:
    if counts[m.label] > 1 and m.path and not m.named:
      where = _resolved(m.path)
      m.label = ("/".join(where.parts[-2:]) if m.kind == "sr_dir"
                 else f"{m.label} ({where.name})")
  seen: dict[str, int] = {}
  for m in methods:
    seen[m.label] = seen.get(m.label, 0) + 1
    if seen[m.label] > 1:
      m.label = f"{m.label} #{seen[m.label]}"
  sets = [load_eval_set(spec, data_dir=data_dir) for spec in specs]  # fail early on bad input

  def method_scales(m: _Method) -> list[int]:
    return [own_scale[id(m)]] if scales is None and m.kind in ("weights", "checkpoint") \
        else all_scales

  # Protocols: --protocol, else the model's own; bicubic and SR folders follow the models.
  model_protocols = set()
  for m in file_methods:
    net = load(m, method_scales(m)[0])
    model_protocols.add("y" if int(getattr(net.module, "channels", 3)) == 1 else "rgb")
  shared = model_protocols.pop() if len(model_protocols) == 1 else "y"
  # SR folders: resolve and match every file before computing anything.
  sr_files: dict[tuple[int, str, int], Callable] = {}
  for m in methods:
    if m.kind != "sr_dir":
      continue
    for scale in all_scales:
      for name, images in sets:
        folder = eval_lib.find_sr_folder(m.path, dataset=name, scale=scale,
                                         only_set=len(sets) == 1)
        matched = eval_lib.match_sr_files(folder, [i.name for i in images], scale=scale)
        sr_files[(id(m), name, scale)] = eval_lib.sr_dir_outputs(matched, images, scale=scale)

  store = _ReportStore() if report else None
  bar = progress if progress is not None else ProgressBar()
  table: list[tuple[str, list[dict]]] = []
  for m in methods:
    entries = []
    for scale in method_scales(m):
      if m.kind == "bicubic":
        produce, default_protocol = eval_lib.bicubic(scale), "y"
      elif m.kind == "sr_dir":
        produce, default_protocol = None, shared
      else:
        net = load(m, scale)
        produce, default_protocol = eval_lib.model_upscaler(net.module, net.variables,
                                                            scale=net.scale, dtype=dtype)
      for name, images in sets:
        proto = protocol or (shared if m.kind == "bicubic" and file_methods else default_protocol)
        bar.start(f"{m.label} {name} x{scale}", len(images))
        on_image = _on_image(m.label, name, scale, proto, bar, save_images, store)
        try:
          if produce is None:
            entry = eval_lib.evaluate_outputs(sr_files[(id(m), name, scale)], images,
                                              scale=scale, protocol=proto, dataset=name,
                                              metrics=metric_names, on_image=on_image)
          else:
            entry = eval_lib.evaluate(produce, images, scale=scale, protocol=proto,
                                      dataset=name, metrics=metric_names, on_image=on_image)
        finally:
          bar.close()
        entries.append(entry)
    table.append((m.label, entries))
  if report:
    from jaxsr import report as report_lib  # pylint: disable=g-import-not-at-top
    report_lib.write_report(report, methods=table, images=store.images(), metrics=metric_names)
  return table


class _ReportStore:
  """What the report needs per image: the protocol pair and every method's SR image."""

  def __init__(self):
    self._items: dict[tuple, dict] = {}

  def add(self, label: str, dataset: str, scale: int, protocol: str, pair, sr_u8, scores):
    item = self._items.setdefault((dataset, scale, protocol, pair.name),
                                  {"pair": pair, "outputs": {}, "scores": {}})
    if protocol == "y":
      sr_u8 = color.y_uint8(sr_u8)  # what the protocol scores: the rounded Y
    elif sr_u8.shape[-1] == 1:
      sr_u8 = np.repeat(sr_u8, 3, axis=-1)
    item["outputs"][label] = sr_u8
    item["scores"][label] = scores

  def images(self) -> list:
    from jaxsr import report as report_lib  # pylint: disable=g-import-not-at-top
    out = []
    for (dataset, scale, protocol, name), item in self._items.items():
      pair = item["pair"]
      out.append(report_lib.ReportImage(
          dataset=dataset, scale=scale, protocol=protocol, name=name,
          lr=eval_lib.to_uint8(pair.lr), hr=pair.hr,
          bicubic=eval_lib.to_uint8(eval_lib.bicubic(scale)(pair.lr[None])[0]),
          outputs=item["outputs"], scores=item["scores"]))
    return out


def _on_image(label: str, dataset: str, scale: int, protocol: str, bar: ProgressBar,
              save_images: str | None, store: _ReportStore | None):
  folder = (files.to_path(save_images, field="save_images") / _safe(label) / _safe(dataset) / f"x{scale}"
            if save_images else None)

  def on_image(pair, sr_u8, scores):
    if folder is not None:
      _save_png(folder / f"{pair.name}.png", sr_u8)
    if store is not None:
      store.add(label, dataset, scale, protocol, pair, sr_u8, scores)
    bar.step()

  return on_image


def _resolved(path: str):
  """A method's path for its label: local ones resolved, remote (gs://) ones as given."""
  return pathlib.Path(path).resolve() if files.is_local(path) else files.as_path(path)


def _save_png(path, image: np.ndarray) -> None:
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.save_png(path, image)
  except files.io_errors() as e:
    reason = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [""])[0][:200]
    raise InputError(f"{path}: cannot write image ({reason})",
                     field="save_images") from None


def run(*, model: str, datasets: str, scales: str | None, protocol: str | None,
        data_dir: str | None, output_json: str | None,
        weights: str | Sequence[str] | None = None,
        checkpoint: str | Sequence[str] | None = None, force_scale: bool = False,
        sr_dir: str | Sequence[str] | None = None, bicubic: bool | None = None,
        metrics: str | Sequence[str] = "psnr,ssim", table_format: str | None = None,
        save_images: str | None = None, report: str | None = None,
        progress: ProgressBar | None = None, dtype: str | None = None) -> list[dict]:
  """Evaluates, prints the table and writes the outputs; returns every method's entries.

  ``model='bicubic'`` without other methods is MATLAB bicubic upscaling; ``weights`` needs
  ``model`` (its registry name). ``scales=None`` means: each model's own scale (bicubic and
  SR folders at all of them), else 2,3,4. The entries of all methods are returned in row
  order (:func:`run_methods` keeps them per method).

  Raises:
    InputError: bad input; ``field`` names the argument when it is one of the loader's.
  """
  if output_json and not files.is_local(output_json):
    files.check_reachable(files.as_path(output_json, field="output_json").parent,
                          field="output_json")
  table = run_methods(model=model, datasets=datasets, scales=scales, protocol=protocol,
                      data_dir=data_dir, weights=weights, checkpoint=checkpoint, sr_dir=sr_dir,
                      bicubic=bicubic, force_scale=force_scale, metrics=metrics,
                      save_images=save_images, report=report, progress=progress, dtype=dtype)
  metric_names = eval_lib.parse_metrics(metrics)
  provenance = [m for m in _provenance(table, weights, checkpoint, sr_dir, bicubic)]
  document = eval_lib.results_document(table, provenance)
  fmt = table_format or "text"
  if fmt == "text" and len(table) == 1:
    label, entries = table[0]
    print(eval_lib.format_table(entries, model=label, metrics=metric_names))
  else:
    print(eval_lib.format_comparison(table, fmt=fmt, metrics=metric_names, provenance=provenance))
  notes = sys.stderr if fmt == "json" else sys.stdout  # stdout stays one JSON document
  if output_json:
    try:
      path = eval_lib.write_document(output_json, document)
    except files.io_errors() as e:
      reason = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [""])[0][:200]
      raise InputError(f"{output_json}: cannot write the results ({reason})",
                       field="output_json") from None
    print(f"wrote {path}", file=notes)
  if report:
    print(f"wrote {files.to_path(report) / 'index.html'}", file=notes)
  return [e for _, entries in table for e in entries]


def _provenance(table, weights, checkpoint, sr_dir, bicubic) -> list[dict]:
  """The JSON provenance of each row (same order as ``run_methods``)."""
  weights, checkpoint, sr_dir = _as_list(weights), _as_list(checkpoint), _as_list(sr_dir)
  rows = []
  if bicubic or (bicubic is None and not (weights or checkpoint or sr_dir)):
    rows.append(_Method("bicubic").provenance())
  for kind, values in (("sr_dir", sr_dir), ("weights", weights), ("checkpoint", checkpoint)):
    for value in values:
      rows.append(_Method(kind, _split_label(value)[1]).provenance())
  return rows[: len(table)]


def main(argv: list[str], *, prog: str = "eval.py") -> None:
  """The absl main: runs :func:`run` on the flags; a user mistake exits with status 2."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  runtime.configure_xla_cpu()  # before the first JAX computation
  try:
    scales = _SCALES.value
    if (_WEIGHTS.value or _CHECKPOINT.value) and not flags.FLAGS["scales"].present:
      scales = None  # the files' / checkpoints' own scales
    explicit_bicubic = flags.FLAGS["model"].present and _MODEL.value == "bicubic"
    if _NIQE_PARAMS.value:  # read by jaxsr.metrics' loader when --metrics has niqe
      os.environ["JAXSR_NIQE_PARAMS"] = _NIQE_PARAMS.value
    if _LPIPS_BACKBONE.value or _LPIPS_LINEAR.value:  # loaded only if --metrics selects them
      for net in ("alex", "vgg"):
        eval_lib.register_metric(eval_lib.lpips_metric(
            net, backbone=_LPIPS_BACKBONE.value, linear=_LPIPS_LINEAR.value))
    run(model=_MODEL.value, datasets=_DATASETS.value, scales=scales,
        protocol=_PROTOCOL.value, data_dir=_DATA_DIR.value, output_json=_OUTPUT_JSON.value,
        weights=_WEIGHTS.value, checkpoint=_CHECKPOINT.value, force_scale=_FORCE_SCALE.value,
        sr_dir=_SR_DIR.value, bicubic=True if explicit_bicubic else None,
        metrics=_METRICS.value, table_format=_FORMAT.value, save_images=_SAVE_IMAGES.value,
        report=_REPORT.value, dtype=None if _DTYPE.value == "float32" else _DTYPE.value)
  except InputError as e:
    print(f"{prog}: error: {e.describe(_FLAG_OF_FIELD)}", file=sys.stderr)
    sys.exit(2)


def start(args: Sequence[str] | None = None, *, prog: str = "eval.py") -> NoReturn:
  """Runs the program on ``args`` (default ``sys.argv[1:]``) as ``prog``; exits the process."""
  _program.start(functools.partial(main, prog=prog),
                 args=sys.argv[1:] if args is None else args, prog=prog, doc=__doc__,
                 flag_names=_FLAG_NAMES)
