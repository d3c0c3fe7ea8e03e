"""Scripted evaluation: prints the paper-style PSNR/SSIM table and optionally writes JSON.

  python eval.py --model bicubic --datasets set5,set14 --scales 2,3,4 --protocol y \
      --data-dir DIR [--output-json FILE]

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
from jaxsr.data import load_eval_set
from jaxsr.errors import InputError

_MODEL = flags.DEFINE_string("model", "bicubic", "Model to evaluate: 'bicubic'.")
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


def _upscaler(model: str, scale: int) -> tuple[eval_lib.Upscaler, str]:
  """Returns the model's upscaling function and its default protocol."""
  if model == "bicubic":
    return eval_lib.bicubic(scale), "y"
  raise InputError(f"--model: unknown model {model!r}; available: bicubic")


def run(*, model: str, datasets: str, scales: str, protocol: str | None, data_dir: str | None,
        output_json: str | None) -> list[dict]:
  """Evaluates and prints the table; returns the result entries."""
  scale_list = _parse_scales(scales)
  specs = [d.strip() for d in datasets.split(",") if d.strip()]
  if not specs:
    raise InputError("--datasets: empty list")
  sets = [load_eval_set(spec, data_dir=data_dir) for spec in specs]  # fail early on bad input
  results = []
  for scale in scale_list:
    upscale, default_protocol = _upscaler(model, scale)
    for name, images in sets:
      results.append(eval_lib.evaluate(upscale, images, scale=scale,
                                       protocol=protocol or default_protocol, dataset=name))
  print(eval_lib.format_table(results, model=model))
  if output_json:
    path = pathlib.Path(output_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"model": model, "results": results}, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")
  return results


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  try:
    run(model=_MODEL.value, datasets=_DATASETS.value, scales=_SCALES.value,
        protocol=_PROTOCOL.value, data_dir=_DATA_DIR.value, output_json=_OUTPUT_JSON.value)
  except InputError as e:
    print(f"eval.py: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
