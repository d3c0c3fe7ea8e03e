"""Runs every benchmark script, writes one JSON and prints the jaxsr / reference ratio table.

  python benchmarks/run_all.py [--quick] [--json FILE] [--skip input_pipeline,...]

Scripts (each in its own process, so one's threads and caches do not touch another's):
``models.py`` (inference and training, jaxsr vs PyTorch/BasicSR), ``metrics_imresize.py``
(imresize and PSNR+SSIM, jaxsr vs BasicSR's numpy functions) and ``input_pipeline.py``
(patches/s, no PyTorch peer). Set14 for metrics_imresize.py comes from ``$JAXSR_DATA_DIR`` or
``../shared/data`` (else its embedded images, said in the output). ``--quick`` passes ``--quick`` (``--repeats 2`` to
metrics_imresize.py) for a run of a few minutes; the full run takes about 15-20 minutes on
2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from common import machine, write_json

HERE = pathlib.Path(__file__).resolve().parent


def run(script: str, args: list[str], out: pathlib.Path) -> dict | None:
  cmd = [sys.executable, str(HERE / script), "--json", str(out), *args]
  print(f"$ {' '.join(cmd[1:])}", flush=True)
  t = time.perf_counter()
  proc = subprocess.run(cmd, check=False)
  took = time.perf_counter() - t
  if proc.returncode or not out.exists():
    print(f"{script} failed (exit {proc.returncode})")
    return {"error": proc.returncode, "seconds": took}
  result = json.loads(out.read_text())
  result["wall_seconds"] = took
  return result


def table(results: dict) -> list[dict]:
  rows = []
  models = results.get("models") or {}
  for r in models.get("rows", []):
    got = [(r[k]["figure"], k) for k in ("pytorch", "pytorch_cl") if k in r]
    ref = max(got) if got else (None, None)
    for side in ("jaxsr", "jaxsr_upscale"):
      if side in r:
        rows.append({"what": r["model"] + (" upscale()" if side == "jaxsr_upscale" else ""),
                     "task": r["task"], "setting": f"{r['shape']}; {r['depth']}",
                     "jaxsr": r[side]["figure"], "reference": ref[0],
                     "reference_name": "PyTorch " + ("NCHW" if ref[1] == "pytorch"
                                                      else "channels_last"),
                     "unit": r["unit"], "goal": 1.0})
  mi = results.get("metrics_imresize") or {}
  sec = mi.get("seconds", {})
  for task in ("imresize", "metrics"):
    if f"{task}_jax" in sec and f"{task}_basicsr" in sec:
      rows.append({"what": task, "task": "speed", "setting": f"{mi['dataset']} x{mi['scale']}",
                   "jaxsr": 1 / sec[f"{task}_jax"], "reference": 1 / sec[f"{task}_basicsr"],
                   "reference_name": "BasicSR (numpy)", "unit": "sets/s", "goal": 10.0})
  for row in rows:
    row["ratio"] = row["jaxsr"] / row["reference"] if row["reference"] else None
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--json", default=None)
  parser.add_argument("--skip", default="", help="comma-separated: models, metrics_imresize, "
                      "input_pipeline")
  args = parser.parse_args()
  skip = set(filter(None, args.skip.split(",")))
  mi_args = ["--repeats", "2"] if args.quick else []
  shared = HERE.parents[1] / "shared" / "data"  # Set14 beside the repository, as in ../shared
  if not os.environ.get("JAXSR_DATA_DIR") and (shared / "benchmarks" / "Set14").is_dir():
    mi_args += ["--data-dir", str(shared)]
  scripts = {"models": ["--quick"] if args.quick else [],
             "metrics_imresize": mi_args,
             "input_pipeline": ["--quick"] if args.quick else []}
  results = {"command": "python benchmarks/run_all.py" + (" --quick" if args.quick else ""),
             "machine": machine()}
  with tempfile.TemporaryDirectory() as tmp:
    for name, extra in scripts.items():
      if name not in skip:
        results[name] = run(f"{name}.py", extra, pathlib.Path(tmp) / f"{name}.json")
  rows = table(results)
  results["ratios"] = rows
  print("\n| what | task | setting | jaxsr | reference | unit | jaxsr / reference | goal |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    ratio = f"**{r['ratio']:.2f}x**" if r["ratio"] else "-"
    ref = f"{r['reference']:.4g} ({r['reference_name']})" if r["reference"] else "-"
    print(f"| {r['what']} | {r['task']} | {r['setting']} | {r['jaxsr']:.4g} | {ref} | "
          f"{r['unit']} | {ratio} | >= {r['goal']:g}x |")
  ip = results.get("input_pipeline") or {}
  if "ratios" in ip:
    print(f"input pipeline over the EDSR step's need: {ip['ratios']}")
  print(f"machine: {results['machine']}")
  write_json(args.json, results)


if __name__ == "__main__":
  main()
