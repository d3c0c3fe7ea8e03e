"""What a pip user gets: the core imports without the data/training stack, and the wheel trains
and evaluates (``jaxsr train`` / ``jaxsr eval`` and the packaged recipes)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# Modules of the optional extras ([data], [train], [eval]) that the core must not need (absl is
# not among them: flax itself imports it).
_EXTRAS = ("tensorflow", "tensorflow_datasets", "clu", "ml_collections", "skimage", "scipy",
           "tensorboard")

_BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {_EXTRAS!r}
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in BLOCKED:
      raise ImportError(f"blocked for this test: {{name}}")
    return None
sys.meta_path.insert(0, Block())
"""


def _run(code: str, **kw) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                        **kw)


def test_core_imports_and_runs_without_the_extras():
  code = _BLOCKER + """
import numpy as np, jax, jax.numpy as jnp
import jaxsr
import jaxsr.imresize, jaxsr.metrics, jaxsr.models, jaxsr.losses, jaxsr.inference
import jaxsr.color, jaxsr.degradations, jaxsr.loading
x = np.random.default_rng(0).random((1, 12, 12, 3)).astype(np.float32)
model = jaxsr.get_model("espcn", scale=2, channels=3)
variables = model.init(jax.random.key(0), jnp.asarray(x))
sr = jaxsr.inference.upscale(model, variables, x, scale=2)
up = jaxsr.imresize.imresize(jnp.asarray(x), scale=2.0)
print(sr.shape, float(jaxsr.psnr(up, jnp.asarray(sr))[0]) > 0)
loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not loaded, loaded
"""
  out = _run(code)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "(1, 24, 24, 3) True" in out.stdout


def test_blocker_blocks():
  # Without this, the test above could pass with the extras imported after all.
  out = _run(_BLOCKER + "import tensorflow")
  assert out.returncode != 0 and "blocked for this test: tensorflow" in out.stderr


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory):
  """jaxsr's wheel built from this checkout and installed (without dependencies, which this
  environment already has) into a folder of its own: a non-editable install."""
  root = tmp_path_factory.mktemp("wheel")
  build = subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
       "--disable-pip-version-check", "-w", str(root / "dist"), str(REPO)],
      capture_output=True, text=True, timeout=600)
  assert build.returncode == 0, build.stderr[-3000:]
  (wheel,) = (root / "dist").glob("jaxsr-*.whl")
  target = root / "site"
  install = subprocess.run(
      [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--disable-pip-version-check",
       "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=600)
  assert install.returncode == 0, install.stderr[-3000:]
  return wheel, target


def _from_wheel(target: pathlib.Path, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=str(target))
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                        cwd=cwd, env=env)


def test_wheel_contents(wheel_install):
  wheel, _ = wheel_install
  names = zipfile.ZipFile(wheel).namelist()
  assert "jaxsr/recipes/fsrcnn_x3.py" in names
  assert "jaxsr/commands/train.py" in names and "jaxsr/commands/evaluate.py" in names
  assert not [n for n in names if n.startswith(("tests/", "configs/", "benchmarks/"))]


@pytest.mark.parametrize("command", ["train", "eval"])
def test_wheel_help(wheel_install, tmp_path, command):
  _, target = wheel_install
  out = _from_wheel(target, "-m", "jaxsr", command, "--help", cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  check = _from_wheel(target, "-c", "import jaxsr; print(jaxsr.__file__)", cwd=tmp_path)
  assert str(target) in check.stdout  # the wheel's copy ran, not this checkout
  assert "--workdir" in out.stdout if command == "train" else "--datasets" in out.stdout


def test_wheel_console_script(wheel_install, tmp_path):
  _, target = wheel_install
  script = target / "bin" / "jaxsr"
  assert script.is_file()
  env = dict(os.environ, PYTHONPATH=str(target))
  out = subprocess.run([sys.executable, str(script), "eval", "--help"], capture_output=True,
                       text=True, timeout=600, cwd=tmp_path, env=env)
  assert out.returncode == 0, out.stderr[-3000:]


def test_wheel_trains_a_packaged_recipe(wheel_install, tmp_path):
  _, target = wheel_install
  out = _from_wheel(target, "-m", "jaxsr", "train", "--config", "recipe:test",
                    "--workdir", str(tmp_path / "run"), "--config.num_train_steps=2",
                    "--config.eval_datasets=", cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  assert (tmp_path / "run" / "summary.json").is_file()
