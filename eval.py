"""Scripted evaluation: prints the paper-style PSNR/SSIM table and optionally writes JSON.

  python eval.py --model bicubic --datasets set5,set14 --scales 2,3,4 --protocol y \
      --data-dir DIR [--output-json FILE]
  python eval.py --model srcnn --weights srcnn_9-5-5_imagenet_x3.mat --datasets set5 --scales 3
  python eval.py --checkpoint DIR --datasets set5      # a jaxsr checkpoint (imported or trained)

``--weights FILE`` converts a published weights file on the fly (``jaxsr.convert``: SRCNN .mat,
OpenCV .pb, BasicSR / FSRCNN-pytorch .pth) for the family named by ``--model``; the scale comes
from the file (its architecture or its name's ``xN``) unless ``--scales`` is given.
``--checkpoint DIR`` loads a jaxsr checkpoint (``jaxsr.checkpoint.load_model``; EMA weights when
present) at its own scale. Models run through ``jaxsr.inference.upscale`` (size buckets: a few
compilations per set, not one per image).

DATASETS is a comma-separated list of registered set names (see ``jaxsr.data.list_eval_sets``)
or folders of HR images. The protocols are those of ``jaxsr.eval_lib`` (DESIGN section 4); the
default follows the model: ``y`` for Y-channel models and bicubic, ``rgb`` for RGB models.
User mistakes (missing folders, corrupt files, unknown names) end with a one-line error.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from jaxsr import eval_lib
from jaxsr import runtime
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError

_MODEL = flags.DEFINE_string("model", "bicubic",
                             "Model to evaluate: 'bicubic', or with --weights the registry name "
                             "of the file's model (e.g. srcnn, fsrcnn, espcn, edsr, rrdbnet).")
_WEIGHTS = flags.DEFINE_string("weights", None,
                               "A published weights file (SRCNN .mat, OpenCV .pb, BasicSR or "
                               "FSRCNN-pytorch .pth), converted on the fly; needs --model.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "A jaxsr checkpoint directory (imported weights or a training "
                                  "run); evaluated at its own scale.")
_DATASETS = flags.DEFINE_string("datasets", "set5,set14",
                                "Comma-separated registered set names or HR image folders.")
_SCALES = flags.DEFINE_string("scales", "2,3,4", "Comma-separated integer scales.")
_PROTOCOL = flags.DEFINE_enum("protocol", None, list(eval_lib.PROTOCOLS),
                              "Evaluation protocol; default: y for Y-channel models and bicubic, "
                              "rgb for RGB models.")
_DATA_DIR = flags.DEFINE_string("data-dir", None,
                                "Where registered sets live (<dir>/Set5 or <dir>/benchmarks/Set5); "
                                "default $JAXSR_DATA_DIR.")
_OUTPUT_JSON = flags.DEFINE_string("output-json", None, "Write the results as JSON here.")


def _parse_scales(text: str) -> list[int]:
  try:
    scales = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise InputError(f"--scales: expected comma-separated integers, got {text!r}") from None
  if not scales or min(scales) < 1:
    raise InputError(f"--scales: expected integers >= 1, got {text!r}")
  return scales


_LOADED: dict = {}


def _upscaler(model: str, scale: int, *, weights: str | None = None,
              checkpoint: str | None = None) -> tuple[eval_lib.Upscaler, str]:
  """Returns the model's upscaling function and its default protocol.

  ``model='bicubic'``: MATLAB bicubic. ``weights``: a published file converted with
  ``jaxsr.convert.load_weights(weights, model=model, scale=scale)``. ``checkpoint``: a jaxsr
  checkpoint (its scale must be ``scale``).
  """
  if checkpoint:
    from jaxsr import checkpoint as ckpt  # pylint: disable=g-import-not-at-top

    if ("ckpt", checkpoint) not in _LOADED:
      try:
        _LOADED[("ckpt", checkpoint)] = ckpt.load_model(checkpoint)
      except ckpt.CheckpointError as e:
        raise InputError(f"--checkpoint: {e}") from None
    module, variables, meta = _LOADED[("ckpt", checkpoint)]
    if int(module.scale) != scale:
      raise InputError(f"--checkpoint {checkpoint} is a x{module.scale} model; got --scales "
                       f"{scale}")
    return eval_lib.model_upscaler(module, variables, scale=scale)
  if weights:
    from jaxsr import convert  # pylint: disable=g-import-not-at-top

    if model == "bicubic":
      raise InputError("--weights needs --model: the registry name of the file's model "
                       "(e.g. srcnn, fsrcnn, espcn, edsr, rcan, msrresnet, rrdbnet)")
    key = ("weights", weights, model, scale)
    if key not in _LOADED:
      _LOADED[key] = convert.load_weights(weights, model=model, scale=scale)
    imported = _LOADED[key]
    trained = convert.scale_from_filename(weights)
    if imported.format in ("srcnn-mat", "fsrcnn-pytorch-pth") and trained not in (None, scale):
      logging.warning("%s: weights trained for x%d evaluated at x%d", weights, trained, scale)
    return eval_lib.model_upscaler(imported.module, imported.variables, scale=imported.scale)
  if model == "bicubic":
    return eval_lib.bicubic(scale), "y"
  raise InputError(f"--model: unknown model {model!r}; available: bicubic, or a registry name "
                   f"with --weights FILE, or --checkpoint DIR")


def _default_scales(*, weights: str | None, checkpoint: str | None, model: str) -> str | None:
  """The scale a weights file or checkpoint fixes, as ``--scales`` text (None: not fixed)."""
  if checkpoint:
    from jaxsr import checkpoint as ckpt  # pylint: disable=g-import-not-at-top

    try:
      _LOADED[("ckpt", checkpoint)] = ckpt.load_model(checkpoint)
    except ckpt.CheckpointError as e:
      raise InputError(f"--checkpoint: {e}") from None
    return str(_LOADED[("ckpt", checkpoint)][0].scale)
  if weights:
    from jaxsr import convert  # pylint: disable=g-import-not-at-top

    if model == "bicubic":
      raise InputError("--weights needs --model: the registry name of the file's model "
                       "(e.g. srcnn, fsrcnn, espcn, edsr, rcan, msrresnet, rrdbnet)")
    imported = convert.load_weights(weights, model=model)
    _LOADED[("weights", weights, model, imported.scale)] = imported
    return str(imported.scale)
  return None


def run(*, model: str, datasets: str, scales: str | None, protocol: str | None,
        data_dir: str | None, output_json: str | None, weights: str | None = None,
        checkpoint: str | None = None) -> list[dict]:
  """Evaluates and prints the table; returns the result entries.

  ``scales=None`` means: the scale of ``weights`` / ``checkpoint``, else 2,3,4.
  """
  if weights and checkpoint:
    raise InputError("give either --weights or --checkpoint, not both")
  if scales is None:
    scales = _default_scales(weights=weights, checkpoint=checkpoint, model=model) or "2,3,4"
  scale_list = _parse_scales(scales)
  specs = [d.strip() for d in datasets.split(",") if d.strip()]
  if not specs:
    raise InputError("--datasets: empty list")
  sets = [load_eval_set(spec, data_dir=data_dir) for spec in specs]  # fail early on bad input
  results = []
  for scale in scale_list:
    upscale, default_protocol = _upscaler(model, scale, weights=weights, checkpoint=checkpoint)
    for name, images in sets:
      results.append(eval_lib.evaluate(upscale, images, scale=scale,
                                       protocol=protocol or default_protocol, dataset=name))
  label = model
  if checkpoint:
    label = _LOADED[("ckpt", checkpoint)][2].get("model", {}).get("name", "checkpoint")
  print(eval_lib.format_table(results, model=label))
  if output_json:
    path = pathlib.Path(output_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"model": label, "weights": weights, "checkpoint": checkpoint,
                               "results": results}, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")
  return results


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  runtime.configure_xla_cpu()  # before the first JAX computation
  try:
    scales = _SCALES.value
    if (_WEIGHTS.value or _CHECKPOINT.value) and not flags.FLAGS["scales"].present:
      scales = None  # the file's / checkpoint's own scale
    run(model=_MODEL.value, datasets=_DATASETS.value, scales=scales,
        protocol=_PROTOCOL.value, data_dir=_DATA_DIR.value, output_json=_OUTPUT_JSON.value,
        weights=_WEIGHTS.value, checkpoint=_CHECKPOINT.value)
  except InputError as e:
    print(f"eval.py: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
