"""Scripted evaluation: prints the paper-style PSNR/SSIM table and optionally writes JSON.

  jaxsr eval --model bicubic --datasets set5,set14 --scales 2,3,4 --protocol y --data-dir DIR
      [--output-json FILE]
  jaxsr eval --model srcnn --weights srcnn_9-5-5_imagenet_x3.mat --datasets set5 --scales 3
  jaxsr eval --checkpoint DIR --datasets set5      # a jaxsr checkpoint (imported or trained)

(``python eval.py ...`` in a source checkout is the same program.)

``--weights FILE`` converts a published weights file on the fly (SRCNN .mat, OpenCV .pb,
BasicSR / FSRCNN-pytorch .pth) for the family named by ``--model``; the scale comes from the
file (its architecture or its name's ``xN``) unless ``--scales`` is given. ``--checkpoint DIR``
loads a jaxsr checkpoint (EMA weights when present) at its own scale. Both go through
``jaxsr.loading.load_model``. Models run through ``jaxsr.inference.upscale`` (size buckets: a
few compilations per set, not one per image).

DATASETS is a comma-separated list of registered set names (see ``jaxsr.data.list_eval_sets``)
or folders of HR images. The protocols are those of ``jaxsr.eval_lib``: ``y`` scores the MATLAB
Y channel of a Y-only super-resolution (the SRCNN-era tables), ``rgb`` the Y channel of an RGB
model's output (the EDSR-era tables). The default follows the model: ``y`` for Y-channel models
and bicubic, ``rgb`` for RGB models. User mistakes (missing folders, corrupt files, unknown
names) end with a one-line error and exit status 2.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import NoReturn, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from jaxsr import eval_lib
from jaxsr import loading
from jaxsr import runtime
from jaxsr.commands import _program
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError

__all__ = ["main", "run", "start"]

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

_FLAG_NAMES = ("model", "weights", "checkpoint", "datasets", "scales", "protocol", "data-dir",
               "output-json")
# Library error fields (InputError.field) -> the flag that sets them.
_FLAG_OF_FIELD = {"model": "--model", "weights": "--weights", "checkpoint": "--checkpoint",
                  "scale": "--scales", "protocol": "--protocol", "data_dir": "--data-dir"}


def _parse_scales(text: str) -> list[int]:
  try:
    scales = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    raise InputError(f"--scales: expected comma-separated integers, got {text!r}") from None
  if not scales or min(scales) < 1:
    raise InputError(f"--scales: expected integers >= 1, got {text!r}")
  return scales


def run(*, model: str, datasets: str, scales: str | None, protocol: str | None,
        data_dir: str | None, output_json: str | None, weights: str | None = None,
        checkpoint: str | None = None) -> list[dict]:
  """Evaluates and prints the table; returns the result entries (``eval_lib.evaluate``'s).

  ``model='bicubic'`` without ``weights`` / ``checkpoint`` is MATLAB bicubic upscaling;
  ``weights`` needs ``model`` (its registry name). ``scales=None`` means: the scale of
  ``weights`` / ``checkpoint``, else 2,3,4. The model is loaded once per scale.

  Raises:
    InputError: bad input; ``field`` names the argument when it is one of the loader's.
  """
  from_file = bool(weights or checkpoint)
  if not from_file and model != "bicubic":
    raise InputError(f"unknown model {model!r}; available: bicubic, or a registry name with "
                     f"--weights FILE, or --checkpoint DIR", field="model")
  source = {"checkpoint": checkpoint, "weights": weights,
            "model": None if model == "bicubic" else model}
  loaded: dict[int, loading.LoadedModel] = {}
  if scales is None:
    if from_file:
      first = loading.load_model(**source)
      loaded[first.scale] = first
      scales = str(first.scale)
    else:
      scales = "2,3,4"
  scale_list = _parse_scales(scales)
  specs = [d.strip() for d in datasets.split(",") if d.strip()]
  if not specs:
    raise InputError("--datasets: empty list")
  sets = [load_eval_set(spec, data_dir=data_dir) for spec in specs]  # fail early on bad input
  results = []
  label = model
  for scale in scale_list:
    if from_file:
      if scale not in loaded:
        loaded[scale] = loading.load_model(**source, scale=scale)
      net = loaded[scale]
      if checkpoint:
        label = net.name
      upscale, default_protocol = eval_lib.model_upscaler(net.module, net.variables,
                                                          scale=net.scale)
    else:
      upscale, default_protocol = eval_lib.bicubic(scale), "y"
    for name, images in sets:
      results.append(eval_lib.evaluate(upscale, images, scale=scale,
                                       protocol=protocol or default_protocol, dataset=name))
  print(eval_lib.format_table(results, model=label))
  if output_json:
    path = eval_lib.write_results(output_json, results, model=label, weights=weights,
                                  checkpoint=checkpoint)
    print(f"wrote {path}")
  return results


def main(argv: list[str], *, prog: str = "eval.py") -> None:
  """The absl main: runs :func:`run` on the flags; a user mistake exits with status 2."""
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
    print(f"{prog}: error: {e.describe(_FLAG_OF_FIELD)}", file=sys.stderr)
    sys.exit(2)


def start(args: Sequence[str] | None = None, *, prog: str = "eval.py") -> NoReturn:
  """Runs the program on ``args`` (default ``sys.argv[1:]``) as ``prog``; exits the process."""
  _program.start(functools.partial(main, prog=prog),
                 args=sys.argv[1:] if args is None else args, prog=prog, doc=__doc__,
                 flag_names=_FLAG_NAMES)
