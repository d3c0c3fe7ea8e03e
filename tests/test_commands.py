"""``jaxsr train`` / ``jaxsr eval`` (jaxsr.commands through jaxsr.cli) and the scripts
train.py / eval.py that run the same programs."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from jaxsr import recipes

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: pathlib.Path, timeout: int = 300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                        timeout=timeout)


@pytest.mark.parametrize("argv,flag", [
    (["-m", "jaxsr", "eval", "--help"], "--datasets"),
    (["-m", "jaxsr", "train", "--help"], "--workdir"),
    ([str(REPO / "eval.py"), "--help"], "--datasets"),
])
def test_help_lists_the_program_flags(tmp_path, argv, flag):
  out = _run(*argv, cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  assert flag in out.stdout and "Try --helpfull" in out.stdout


def test_top_level_help_lists_train_and_eval(tmp_path):
  out = _run("-m", "jaxsr", "--help", cwd=tmp_path)
  assert out.returncode == 0 and "{upscale,models,convert,export,train,eval}" in out.stdout


def test_unknown_recipe_is_a_one_line_error(tmp_path):
  out = _run("-m", "jaxsr", "train", "--config", "recipe:nope", "--workdir", str(tmp_path),
             cwd=tmp_path)
  assert out.returncode == 2
  (line,) = out.stderr.strip().splitlines()
  assert line.startswith("jaxsr train: error: --config: unknown recipe 'nope'")
  assert "test" in line and "espcn_x3" in line  # lists the names
  assert recipes.path("test").is_file()


@pytest.mark.parametrize("override,expected", [
    ("--config.model_overrides.num_blok=2",
     "--config.model_overrides.num_blok: config.model_overrides has no field 'num_blok' "
     "(fields: activation, channels, n1, n2)"),
    ("--config.learning_rat=2",
     "--config.learning_rat: config has no field 'learning_rat'; did you mean 'learning_rate'?"),
])
def test_misspelt_config_field_names_it_and_the_near_one(tmp_path, override, expected):
  out = _run(str(REPO / "train.py"), "--config", str(REPO / "configs" / "test.py"),
             "--workdir", str(tmp_path / "run"), override, cwd=tmp_path)
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [f"train.py: error: {expected}"]
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,expected", [
    (["eval.py", "--protocol", "foo"], "eval.py: error: flag --protocol=foo: value should be one of <y|rgb>"),
    (["-m", "jaxsr", "eval", "--scales", "2", "--nope"], "jaxsr eval: error: Unknown command line flag 'nope'"),
    (["train.py", "--config", "configs/test.py", "--workdir", "w", "--config.learning_rate=x"],
     "train.py: error: flag --config.learning_rate=x: could not convert string to float: 'x'"),
])
def test_bad_flags_are_one_line_and_status_2(tmp_path, argv, expected):
  argv = [str(REPO / a) if a.endswith(".py") else a for a in argv]
  out = _run(*argv, cwd=tmp_path)
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [expected]


def test_eval_errors_name_flags(tmp_path):
  out = _run("-m", "jaxsr", "eval", "--weights", str(tmp_path / "w.pth"), "--model", "nosuch",
             "--datasets", "embedded", cwd=tmp_path)
  assert out.returncode == 2
  (line,) = out.stderr.strip().splitlines()
  assert line.startswith("jaxsr eval: error: --model: "), line
  out = _run("-m", "jaxsr", "eval", "--weights", str(tmp_path / "w.pth"), "--datasets",
             "embedded", cwd=tmp_path)  # no --model needed: the file is named
  assert out.returncode == 2
  (line,) = out.stderr.strip().splitlines()
  assert line == f"jaxsr eval: error: {tmp_path / 'w.pth'}: no such weights file", line


def test_train_packaged_recipe(tmp_path):
  workdir = tmp_path / "run"
  out = _run("-m", "jaxsr", "train", "--config", "recipe:test", "--workdir", str(workdir),
             "--config.num_train_steps=2", "--config.eval_datasets=", cwd=tmp_path, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads((workdir / "summary.json").read_text())["step"] == 2
