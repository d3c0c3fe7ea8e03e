"""GAN training (jaxsr.tasks.gan) through train_lib's loop: finite losses, both players learn,
resume, init_from; the GAN recipes."""

from __future__ import annotations

import json

import flax
import jax
import numpy as np
import pytest

from jaxsr import checkpoint as ckpt_lib
from jaxsr import tasks
from jaxsr import train_lib
from jaxsr.convert import vgg as convert_vgg
from jaxsr.errors import InputError
from jaxsr.tasks import gan
from configs import esrgan_x4
from configs import gan_test
from configs import srgan_x4


pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")


def _config(**overrides):
  config = gan_test.get_config()
  config.update(overrides)
  return config


def _scalars(workdir) -> dict[str, list[float]]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out: dict[str, list[float]] = {}
  for path in sorted(workdir.glob("events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for v in event.summary.value:
        value = np.asarray(tf.make_ndarray(v.tensor) if v.HasField("tensor") else v.simple_value)
        if value.size == 1 and value.dtype.kind == "f":
          out.setdefault(v.tag, []).append(float(value))
  return out


def _tree_diff(a, b) -> float:
  return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_esrgan_loop_trains_both_players_checkpoints_and_resumes(tmp_path):
  config = _config(num_train_steps=8, eval_datasets="")  # evaluation is train_lib's, tested there
  summary = train_lib.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["step"] == 8 and np.isfinite(summary["train_loss"])
  scalars = _scalars(tmp_path / "run")
  for key in ("loss", "g_loss", "g_pixel", "g_perceptual", "g_adversarial", "d_loss", "d_real",
              "d_fake", "d_real_logit", "d_fake_logit", "learning_rate", "d_learning_rate"):
    assert key in scalars and all(np.isfinite(scalars[key])), key
  assert all(v > 0 for v in scalars["g_perceptual"] + scalars["g_adversarial"] + scalars["d_loss"])
  assert all(0 < v < 1 for v in scalars["d_real"] + scalars["d_fake"])
  # Multistep at 6 halves both rates (steps 5-8 log the mean of 2 full and 2 halved); the
  # discriminator has its own base rate (d_optimizer).
  assert scalars["learning_rate"] == pytest.approx([1e-3, 7.5e-4], rel=1e-6)
  assert scalars["d_learning_rate"] == pytest.approx([2e-3, 1.5e-3], rel=1e-6)

  manager = ckpt_lib.CheckpointManager(tmp_path / "run" / "checkpoints")
  assert sorted(manager.all_steps()) == [4, 8]
  _, saved, _ = manager.restore()
  assert set(saved) == {"step", "params", "opt_state", "batch_stats", "ema_params", "d_params",
                        "d_opt_state", "d_batch_stats"}  # the frozen VGG is not saved
  init = gan.GANTask(config).init_state(key=jax.random.key(int(config.seed)))
  assert _tree_diff(saved["params"], init.params) > 0
  assert _tree_diff(saved["d_params"], init.d_params) > 0
  assert _tree_diff(saved["d_batch_stats"], init.d_batch_stats) > 0
  assert _tree_diff(saved["ema_params"], saved["params"]) > 0
  assert ckpt_lib.params_sha256(saved["ema_params"]) == summary["params_sha256"]

  # Resuming from step 8 to 12 equals a run that never stopped.
  resumed = train_lib.train_and_evaluate(_config(num_train_steps=12, eval_datasets=""),
                                         str(tmp_path / "run"))
  straight = train_lib.train_and_evaluate(_config(num_train_steps=12, eval_datasets=""),
                                          str(tmp_path / "straight"))
  assert resumed["step"] == 12 and resumed["params_sha256"] == straight["params_sha256"]
  d_resumed = ckpt_lib.CheckpointManager(tmp_path / "run" / "checkpoints").restore()[1]
  d_straight = ckpt_lib.CheckpointManager(tmp_path / "straight" / "checkpoints").restore()[1]
  assert _tree_diff(d_resumed["d_params"], d_straight["d_params"]) == 0

  # The generator loads like any model (EMA weights), e.g. for eval.py --checkpoint.
  module, variables, meta = ckpt_lib.load_model(tmp_path / "run")
  assert type(module).__name__ == "RRDBNet" and meta["step"] == 12
  assert ckpt_lib.params_sha256(variables["params"]) == resumed["params_sha256"]


def test_generator_starts_from_a_psnr_checkpoint(tmp_path):
  config = _config(num_train_steps=1, eval_datasets="")
  task = tasks.make_task(config)
  assert isinstance(task, gan.GANTask)
  state = task.init_state(key=jax.random.key(0))
  assert isinstance(state, tasks.TrainState)  # the generator under TrainState's fields
  # Checkpoints leave out the frozen VGG, without changing flax's own serialisation of the class.
  assert "vgg" not in task.state_dict(state) and state.vgg
  assert "vgg" in flax.serialization.to_state_dict(state)
  psnr_params = jax.tree.map(lambda p: np.asarray(p) + 0.01,
                             task.init_state(key=jax.random.key(5)).params)
  ckpt_lib.save_model(tmp_path / "psnr", {"params": psnr_params}, model="rrdbnet", scale=4,
                      overrides=dict(config.model_overrides))
  _, variables, _ = ckpt_lib.load_model(tmp_path / "psnr")
  started = task.init_from(state, variables)
  assert _tree_diff(started.params, psnr_params) == 0
  back = task.restore_state(state, task.state_dict(started))
  assert _tree_diff(back.params, psnr_params) == 0 and back.vgg is state.vgg
  assert _tree_diff(started.ema_params, psnr_params) == 0
  assert _tree_diff(started.d_params, state.d_params) == 0
  # Through the loop: one step from the PSNR weights moves them by about one Adam step.
  config.init_from = str(tmp_path / "psnr")
  train_lib.train_and_evaluate(config, str(tmp_path / "gan"))
  _, saved, _ = ckpt_lib.CheckpointManager(tmp_path / "gan" / "checkpoints").restore()
  assert 0 < _tree_diff(saved["params"], psnr_params) < 2e-3


def test_missing_vgg_weights_is_one_clear_line(monkeypatch):
  monkeypatch.delenv(convert_vgg.ENV_VAR, raising=False)
  with pytest.raises(InputError, match="vgg19-dcbb9e9d.pth") as e:
    gan.GANTask(_config(vgg_weights=None))
  assert "\n" not in str(e.value) and "python -m jaxsr.convert.vgg" in str(e.value)
  with pytest.raises(InputError, match="config.vgg_weights: /absent/vgg.npz: no such file"):
    gan.GANTask(_config(vgg_weights="/absent/vgg.npz"))
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")
  with pytest.raises(InputError, match="config.gan_type"):
    gan.GANTask(_config(gan_type="wgan"))
  with pytest.raises(InputError, match="config.d_model"):
    gan.GANTask(_config(d_model="nope"))
  config = _config()
  config.perceptual_layers = {}  # (update() would merge the dicts)
  with pytest.raises(InputError, match="config.perceptual_layers: empty while"):
    gan.GANTask(config)


def test_recipes(monkeypatch):
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")  # construction checks that weights exist
  esr = esrgan_x4.get_config()
  task = gan.GANTask(esr)
  assert type(task.model).__name__ == "RRDBNet" and task.model.num_block == 23
  assert type(task.discriminator).__name__ == "VGGStyleDiscriminator"
  assert task.perceptual_layers == {"conv5_4": 1.0} and esr.gan_type == "ragan"
  assert (esr.pixel_weight, esr.adversarial_weight, esr.ema_decay) == (1e-2, 5e-3, 0.999)
  assert esr.lr_patch_size * esr.scale == 128 and esr.batch_size == 16
  assert [float(task.g_schedule(s)) for s in (0, 50_000, 100_000, 300_000)] == pytest.approx(
      [1e-4, 5e-5, 2.5e-5, 6.25e-6], rel=1e-6)
  assert float(task.d_schedule(200_000)) == pytest.approx(1.25e-5, rel=1e-6)
  sr = srgan_x4.get_config()
  task = gan.GANTask(sr)
  assert type(task.discriminator).__name__ == "SRGANDiscriminator"
  assert task.perceptual_layers == {"relu5_4": pytest.approx(1.0)} and sr.gan_type == "vanilla"
  assert sr.adversarial_weight == 1e-3 and sr.lr_patch_size * sr.scale == 96
  assert float(task.g_schedule(150_000)) == pytest.approx(1e-5, rel=1e-6)
  json.dumps(gan_test.get_config().to_dict())  # serialisable for the checkpoint metadata


@pytest.mark.slow  # two GAN compilations (RRDB, discriminator, VGG)
def test_bf16_gan_step_keeps_losses_state_and_parameters_float32():
  # Both networks and the VGG features in bf16, everything the optimizers see in float32; one
  # step lands near the float32 step.
  task32 = tasks.make_task(_config(style_weight=1.0, style_layers={"conv1_2": 1.0}))
  task16 = tasks.make_task(_config(style_weight=1.0, style_layers={"conv1_2": 1.0},
                                   compute_dtype="bfloat16"))
  state = task32.init_state(key=jax.random.key(0))
  rng = np.random.RandomState(0)
  batch = {"lr": rng.rand(4, 8, 8, 3).astype(np.float32),
           "hr": rng.rand(4, 32, 32, 3).astype(np.float32)}
  new32, m32 = jax.jit(task32.train_step)(state, batch)
  new16, m16 = jax.jit(task16.train_step)(state, batch)
  saved = task16.state_dict(new16)
  assert {np.asarray(x).dtype for x in jax.tree.leaves(saved) if np.asarray(x).dtype.kind == "f"} \
      == {np.dtype(np.float32)}
  for name in ("loss", "g_pixel", "g_perceptual", "g_style", "g_adversarial", "d_loss"):
    assert np.asarray(m16[name]).dtype == np.float32 and np.isfinite(float(m16[name])), name
    np.testing.assert_allclose(float(m16[name]), float(m32[name]), rtol=0.1, atol=1e-3,
                               err_msg=name)
  assert 0 < _tree_diff(new16.params, new32.params) < 1e-2
  assert 0 < _tree_diff(new16.d_params, new32.d_params) < 1e-2
  with pytest.raises(InputError, match="config.compute_dtype: unknown dtype 'nope'"):
    tasks.make_task(_config(compute_dtype="nope"))


class _TinyGenerator(flax.linen.Module):
  """x4 nearest upsampling and one 3x3 conv: a generator that compiles in a blink."""

  @flax.linen.compact
  def __call__(self, x, train: bool = False):
    del train
    n, h, w, c = x.shape
    return flax.linen.Conv(c, (3, 3))(jax.image.resize(x, (n, 4 * h, 4 * w, c), "nearest"))


class _ProbeDiscriminator(flax.linen.Module):
  """Per-pixel logits linear in the input: its mean logit identifies what it was shown."""

  @flax.linen.compact
  def __call__(self, x, train: bool = False):
    del train
    return flax.linen.Dense(1)(x)


def test_gan_step_reads_optional_perceptual_and_real_targets():
  """'hr' feeds the pixel loss, 'hr_perceptual' the VGG loss, 'hr_real' the discriminator."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jaxsr import losses  # pylint: disable=g-import-not-at-top
  generator, discriminator = _TinyGenerator(), _ProbeDiscriminator()
  schedule = optax.constant_schedule(1e-3)
  layers = {"conv1_2": 1.0}
  step = gan.make_gan_step(generator, discriminator, optax.adam(schedule), optax.adam(schedule),
                           schedule, schedule, gan_type="vanilla", pixel_weight=1.0,
                           perceptual_weight=1.0, perceptual_layers=layers,
                           adversarial_weight=0.1)
  keys = jax.random.split(jax.random.key(0), 6)
  lr = jax.random.uniform(keys[0], (2, 4, 4, 3))
  hr, hr_perceptual, hr_real = (jax.random.uniform(k, (2, 16, 16, 3)) for k in keys[1:4])
  g_params = generator.init(keys[4], lr)["params"]
  d_params = discriminator.init(keys[5], hr)["params"]
  tx = optax.adam(schedule)
  vgg = jax.tree.map(jax.numpy.asarray, gan.load_vgg(
      ml_collections.ConfigDict({"vgg_weights": "random", "seed": 0}), layers=list(layers)))
  state = gan.GANState(step=jax.numpy.zeros([], jax.numpy.int32), params=g_params,
                       opt_state=tx.init(g_params), batch_stats={}, ema_params={},
                       d_params=d_params, d_opt_state=tx.init(d_params), d_batch_stats={},
                       vgg=vgg)
  sr = generator.apply({"params": g_params}, lr)

  def real_logit(x):
    return float(jax.numpy.mean(discriminator.apply({"params": d_params}, x)))

  run = jax.jit(step)
  _, m = run(state, {"lr": lr, "hr": hr, "hr_perceptual": hr_perceptual, "hr_real": hr_real})
  assert float(m["d_real_logit"]) == pytest.approx(real_logit(hr_real), abs=1e-6)
  assert float(m["g_pixel"]) == pytest.approx(float(losses.pixel_loss("l1")(sr, hr)), rel=1e-5)
  assert float(m["g_perceptual"]) == pytest.approx(float(losses.perceptual_loss(
      vgg, sr, hr_perceptual, layer_weights=layers)), rel=1e-5)
  assert abs(real_logit(hr_real) - real_logit(hr)) > 1e-3  # the probe tells them apart
  # Without the optional keys every term reads 'hr'.
  _, m = run(state, {"lr": lr, "hr": hr})
  assert float(m["d_real_logit"]) == pytest.approx(real_logit(hr), abs=1e-6)
  assert float(m["g_perceptual"]) == pytest.approx(float(losses.perceptual_loss(
      vgg, sr, hr, layer_weights=layers)), rel=1e-5)
