"""Tiny ESRGAN-style run for tests: seconds on one CPU, no files, no real VGG weights.

A 1-RRDB generator (8 features), a 4-feature ESRGAN discriminator, RaGAN + L1 + a perceptual
loss on ``conv2_2`` of a *randomly initialised* VGG19 (``vgg_weights='random'``, test-only:
meaningless for real training), x4 on the embedded default, LR patch 8 (HR 32), batch 4.
"""

from jaxsr.recipes import esrgan_x4


def get_config():
  config = esrgan_x4.get_config()
  config.model_overrides.update(num_feat=8, num_block=1, num_grow_ch=4)
  config.d_model_overrides.update(num_feat=4)
  config.dataset = "embedded"
  config.eval_datasets = "embedded"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 8
  config.batch_size = 4
  config.perceptual_layers = {"conv2_2": 1.0}
  config.vgg_weights = "random"
  config.learning_rate = 1e-3
  config.lr_boundaries = (6,)
  config.d_optimizer.learning_rate = 2e-3
  config.ema_decay = 0.9
  config.num_train_steps = 8
  config.log_every_steps = 4
  config.checkpoint_every_steps = 4
  config.eval_every_steps = 0
  return config
