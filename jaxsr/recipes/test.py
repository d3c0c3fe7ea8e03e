"""Tiny run for tests: ESPCN x3 on the embedded default, seconds on one CPU."""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "espcn"
  config.model_overrides = common.model_fields("espcn")
  config.scale = 3
  config.dataset = "embedded"
  config.eval_datasets = "embedded"
  config.lr_patch_size = 8
  config.batch_size = 8
  config.loss = "mse"
  config.learning_rate = 1e-3
  config.num_train_steps = 12
  config.log_every_steps = 4
  config.checkpoint_every_steps = 4
  config.eval_every_steps = 0
  return config
