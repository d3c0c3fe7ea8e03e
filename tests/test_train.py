"""The training loop: end to end, stacked transfers, resume, SIGKILL, corrupt checkpoints, NaN,
model changes; the PSNR task; the recipes and missing config fields."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxsr import checkpoint as ckpt_lib
from jaxsr import optim
from jaxsr import recipes
from jaxsr import tasks
from jaxsr import train_lib
from jaxsr.errors import InputError
from jaxsr.tasks import base
from jaxsr.tasks import psnr
from conftest import REPO
from configs import test as test_config


def _config(**overrides):
  config = test_config.get_config()
  config.update(overrides)
  return config


def _train(tmp, **overrides):
  return train_lib.train_and_evaluate(_config(**overrides), str(tmp))


def test_loop_runs_evaluates_and_resumes(tmp_path):
  summary = _train(tmp_path, num_train_steps=8)
  assert summary["step"] == 8 and np.isfinite(summary["train_loss"])
  assert summary["eval"][0]["dataset"] == "Embedded" and summary["eval"][0]["protocol"] == "y"
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["params_sha256"] == summary["params_sha256"] and len(saved["params_sha256"]) == 64
  assert sorted(ckpt_lib.CheckpointManager(tmp_path / "checkpoints").all_steps()) == [4, 8]
  assert list(tmp_path.glob("events.out.tfevents.*"))  # TensorBoard
  # Resume: more steps continue from step 8 and equal a run that never stopped.
  resumed = _train(tmp_path, num_train_steps=12, eval_datasets="")
  straight = _train(tmp_path / "straight", num_train_steps=12, eval_datasets="")
  assert resumed["step"] == 12
  assert resumed["params_sha256"] == straight["params_sha256"]
  # A run's workdir loads as a model (eval.py --checkpoint, init_from, jaxsr upscale).
  module, variables, meta = ckpt_lib.load_model(tmp_path)
  assert module.scale == 3 and meta["step"] == 12
  assert ckpt_lib.params_sha256(variables["params"]) == resumed["params_sha256"]


def test_stacked_transfers_train_exactly_as_one_batch_per_transfer(tmp_path):
  # 7 steps in stacks of 3 (the last one padded) against one transfer per step.
  one = _train(tmp_path / "one", num_train_steps=7, batches_per_transfer=1, eval_datasets="")
  three = _train(tmp_path / "three", num_train_steps=7, batches_per_transfer=3, eval_datasets="")
  assert one["step"] == three["step"] == 7
  assert one["params_sha256"] == three["params_sha256"]
  with pytest.raises(InputError, match="config.batches_per_transfer.*got 0"):
    _train(tmp_path / "zero", num_train_steps=2, batches_per_transfer=0, eval_datasets="")


def test_refuses_to_resume_another_model(tmp_path):
  _train(tmp_path, num_train_steps=4, eval_datasets="")
  with pytest.raises(InputError, match="refusing to resume a different model.*scale"):
    _train(tmp_path, num_train_steps=8, scale=2, eval_datasets="")


def _corrupt_largest_data_file(step_dir: pathlib.Path) -> None:
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file()]
  victim = max(files, key=lambda p: p.stat().st_size)
  data = bytearray(victim.read_bytes())
  for i in range(len(data) // 3, len(data) // 3 + 64):
    data[i] ^= 0x5A
  victim.write_bytes(bytes(data))


def test_corrupt_checkpoint_is_skipped_for_the_previous_good_step(tmp_path, caplog):
  straight = _train(tmp_path / "straight", num_train_steps=12, eval_datasets="")
  _train(tmp_path / "run", num_train_steps=8, eval_datasets="")
  _corrupt_largest_data_file(tmp_path / "run" / "checkpoints" / "8")
  caplog.set_level("WARNING")
  resumed = _train(tmp_path / "run", num_train_steps=12, eval_datasets="")
  assert "step 8" in caplog.text and "trying an earlier step" in caplog.text
  # Restarting from step 4 recomputes steps 5..12 exactly.
  assert resumed["params_sha256"] == straight["params_sha256"]


def test_checkpoint_checksums_catch_silently_wrong_bytes(tmp_path):
  import orbax.checkpoint as ocp
  manager = ckpt_lib.CheckpointManager(tmp_path, async_save=False)
  rng = np.random.RandomState(0)
  for step in (1, 2):
    manager.save(step, {"w": rng.rand(256, 256).astype(np.float32)}, meta={"s": step})
  # Step 3 holds other values than its checksums say: what Orbax restores without complaint
  # when bytes inside an array file change.
  meta = manager.read_meta(2)
  manager._manager.save(3, args=ocp.args.Composite(  # pylint: disable=protected-access
      state=ocp.args.StandardSave({"w": np.ones((256, 256), np.float32)}),
      meta=ocp.args.JsonSave({**meta, "s": 3})), force=True)
  manager.wait_until_finished()
  step, state, restored_meta = ckpt_lib.CheckpointManager(tmp_path, async_save=False).restore()
  assert step == 2 and restored_meta["s"] == 2
  assert (tmp_path.parent / (tmp_path.name + "-corrupt")).is_dir()  # step 3 kept aside
  for step_dir in (tmp_path / "1", tmp_path / "2"):
    _corrupt_largest_data_file(step_dir)
  with pytest.raises(ckpt_lib.CheckpointError, match="no intact checkpoint"):
    ckpt_lib.CheckpointManager(tmp_path, async_save=False).restore()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  # The learning rate jumps to 1e30 after step 5: the loss turns NaN between steps 4 and 8.
  with pytest.raises(FloatingPointError, match="non-finite.*last good checkpoint is step 4"):
    _train(tmp_path, num_train_steps=12, schedule="multistep", lr_boundaries=(5,),
           lr_decay_factor=1e33, eval_datasets="")
  step, state, _ = ckpt_lib.CheckpointManager(tmp_path / "checkpoints").restore()
  assert step == 4
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state["params"]))


def _train_cmd(workdir, steps):
  return [sys.executable, str(REPO / "train.py"), "--config", str(REPO / "configs" / "test.py"),
          "--workdir", str(workdir), f"--config.num_train_steps={steps}",
          "--config.checkpoint_every_steps=50", "--config.log_every_steps=50",
          "--config.eval_datasets="]


def test_sigkill_then_restart_ends_with_the_uninterrupted_parameters(tmp_path):
  steps = 2000
  straight = subprocess.run(_train_cmd(tmp_path / "straight", steps), capture_output=True,
                            text=True, timeout=600)
  assert straight.returncode == 0, straight.stderr[-2000:]
  run = tmp_path / "killed"
  proc = subprocess.Popen(_train_cmd(run, steps), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and not (run / "checkpoints" / "100").exists():
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  assert not (run / "summary.json").exists()
  restarted = subprocess.run(_train_cmd(run, steps), capture_output=True, text=True, timeout=600)
  assert restarted.returncode == 0, restarted.stderr[-2000:]
  a = json.loads((tmp_path / "straight" / "summary.json").read_text())
  b = json.loads((run / "summary.json").read_text())
  assert b["step"] == steps and a["params_sha256"] == b["params_sha256"]


def test_bf16_compute_and_ema():
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(model="edsr_baseline", scale=2,
                                       model_overrides=dict(num_feat=8, num_block=1)))
  model = base.model_from_config(cfg)
  tx, schedule = optim.make_optimizer(_config(learning_rate=1e-2))
  state = base.create_train_state(model, tx, key=jax.random.key(0), lr_shape=(1, 6, 6, 3),
                                  ema=True)
  step = jax.jit(psnr.make_train_step(model, tx, schedule, ema_decay=0.5,
                                      compute_dtype="bfloat16"))
  batch = {"lr": np.full((2, 6, 6, 3), 0.5, np.float32), "hr": np.full((2, 12, 12, 3), 0.5, np.float32)}
  new, metrics = step(state, batch)
  assert np.isfinite(float(metrics["loss"]))
  leaf = lambda t: np.asarray(jax.tree.leaves(t)[0])
  assert leaf(new.params).dtype == np.float32
  np.testing.assert_allclose(leaf(new.ema_params), 0.5 * leaf(state.params) + 0.5 * leaf(new.params),
                             rtol=1e-6)


def test_configs_folder_re_exports_every_recipe():
  assert sorted(p.stem for p in (REPO / "configs").glob("*.py")) == recipes.names()
  assert "common" not in recipes.names() and recipes.path("test").parent.name == "recipes"
  with pytest.raises(InputError, match="unknown recipe 'nope'; expected one of default, "):
    recipes.path("nope")


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_loads_from_its_path_with_overrides(name):
  import importlib
  from absl import flags
  from ml_collections import config_flags
  config = importlib.import_module(f"jaxsr.recipes.{name}").get_config()
  # configs/NAME.py (README's --config configs/NAME.py) is the same recipe.
  assert importlib.import_module(f"configs.{name}").get_config().to_dict() == config.to_dict()
  # train.py loads the file by path; --config.FIELD=VALUE needs a typed field (a plain None is
  # refused by config_flags), also for the optional ones.
  optional = ["manual_dir", "data_dir", "eval_data_dir", "eval_protocol", "init_from"]
  if config.task == "gan":
    optional.append("vgg_weights")
  for field in optional:
    assert config.get_type(field) is str, field
  argv = ["train.py", f"--config={recipes.path(name)}", "--config.manual_dir=/data",
          "--config.init_from=/runs/x", "--config.batches_per_transfer=2"]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  loaded = values.config
  assert (loaded.manual_dir, loaded.init_from) == ("/data", "/runs/x")
  assert loaded.batches_per_transfer == 2
  base.model_from_config(loaded)  # the model and its overrides exist in the registry


def test_a_missing_config_field_is_one_clear_line(tmp_path):
  config = _config(num_train_steps=2, eval_datasets="")
  del config["batches_per_transfer"]
  with pytest.raises(InputError, match=r"^config.batches_per_transfer: missing") as e:
    train_lib.train_and_evaluate(config, str(tmp_path))
  assert "\n" not in str(e.value) and not (tmp_path / "checkpoints").exists()
  config = _config()
  del config["ema_decay"]
  with pytest.raises(InputError, match=r"^config.ema_decay: missing"):
    tasks.make_task(config)
  with pytest.raises(InputError,
                     match="config.task: unknown value 'nope'; expected one of gan, psnr"):
    tasks.make_task(_config(task="nope"))
  assert isinstance(tasks.make_task(_config()), psnr.PSNRTask)
