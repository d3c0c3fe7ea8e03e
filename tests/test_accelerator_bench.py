"""benchmarks/accelerator.py: --quick runs from the checkout with TensorFlow, tensorflow-datasets,
clu and ml_collections unimportable, writes the JSON it documents; its table of models matches
the recipes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

_BLOCKED = ("tensorflow", "tensorflow_datasets", "clu", "ml_collections")

# A sitecustomize that makes the blocked packages unimportable, as on an offline GPU image with
# only jax, flax, optax and numpy.
_SITECUSTOMIZE = f'''
import sys
class _Block:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in {_BLOCKED!r}:
      raise ImportError(f"{{name}} is blocked for this test")
    return None
sys.meta_path.insert(0, _Block())
'''


def _load_bench():
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    return importlib.import_module("accelerator")
  finally:
    sys.path.remove(str(REPO / "benchmarks"))


@pytest.mark.slow  # a subprocess that imports JAX and compiles 4 programs: ~6 min under load
def test_quick_benchmark_runs_without_tensorflow_clu_or_ml_collections(tmp_path):
  (tmp_path / "site").mkdir()
  (tmp_path / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
  env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}:{REPO}", "JAX_PLATFORMS": "cpu"}
  out = tmp_path / "bench.json"
  proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "accelerator.py"), "--quick",
                         "--output", str(out)], capture_output=True, text=True, timeout=900,
                        env=env, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(out.read_text())
  assert result["quick"] and result["platform"] == "cpu" and result["local_devices"] >= 1
  (entry,) = result["models"].values()
  for dtype in ("float32", "bfloat16"):
    train = entry["train"][dtype]
    assert train["steps_per_s"] > 0 and train["compile_s"] > 0 and train["flops_per_step"] > 0
    assert train["tflops_per_s"] > 0 and train["mfu"] is None  # no CPU peak in the table
    assert entry["inference"][dtype]["mpixel_per_s"] > 0
  assert entry["scaling"][0]["devices"] == 1 and entry["scaling"][0]["efficiency"] == 1.0
  # The blocker works: the same interpreter cannot import them.
  check = subprocess.run([sys.executable, "-c", "import ml_collections"], env=env,
                         capture_output=True, text=True, timeout=120)
  assert check.returncode != 0 and "blocked for this test" in check.stderr


def test_model_table_matches_the_recipes_and_peaks():
  bench = _load_bench()
  from jaxsr.recipes import edsr_baseline_x4, rcan_x4, rrdbnet_x4
  for name, recipe in (("edsr_baseline_x2", edsr_baseline_x4), ("rcan_x4", rcan_x4),
                       ("rrdbnet_x4", rrdbnet_x4)):
    config = recipe.get_config()
    registry, _, _, batch, patch = bench.MODELS[name]
    assert (registry, batch, patch) == (config.model, config.batch_size, config.lr_patch_size)
  assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == pytest.approx(989.4)
  assert bench.peak_tflops("NVIDIA H200", "bfloat16") == pytest.approx(989.4)
  assert bench.peak_tflops("TPU v5 lite", "bfloat16") == 197.0
  assert bench.peak_tflops("cpu", "float32") is None
