"""FSRCNN (56, 12, 4) x3 on T91 (Dong et al., ECCV 2016): Y channel, PReLU, 9x9 deconvolution.

  python train.py --config configs/fsrcnn_x3.py --workdir DIR --config.manual_dir=DATA

The paper augments T91 by downscaling (0.9-0.6) and rotating; this uses HR rescales 1.0-0.6
with flips/rot90, MSE on Y, Adam 1e-3 with cosine decay, batch 16, LR patch 17.
"""

from configs import common


def get_config():
  config = common.base_config()
  config.model = "fsrcnn"
  config.model_overrides = common.model_fields("fsrcnn")
  config.scale = 3
  config.dataset = "t91"
  config.hr_rescales = (1.0, 0.9, 0.8, 0.7, 0.6)
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "y"
  config.lr_patch_size = 17
  config.batch_size = 16
  config.loss = "mse"
  config.learning_rate = 1e-3
  config.schedule = "cosine"
  config.lr_end = 1e-5
  config.num_train_steps = 300_000
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 10_000
  config.eval_every_steps = 10_000
  return config
