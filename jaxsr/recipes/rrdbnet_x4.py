"""RRDBNet x4, the PSNR-oriented ESRGAN generator (Wang et al., ECCVW 2018): 23 RRDB, L1.

  python train.py --config configs/rrdbnet_x4.py --workdir DIR --config.manual_dir=DATA

DF2K, HR patch 128 (LR 32), batch 16, Adam (0.9, 0.99), lr 2e-4 with cosine restarts every
250k steps to 1e-7, 1M steps, EMA 0.999. Its checkpoint initialises configs/esrgan_x4.py.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "rrdbnet"
  config.model_overrides = common.model_fields("rrdbnet")
  config.scale = 4
  config.dataset = "df2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 32
  config.batch_size = 16
  config.loss = "l1"
  config.adam_b2 = 0.99
  config.learning_rate = 2e-4
  config.schedule = "cosine_restarts"
  config.lr_periods = (250_000, 250_000, 250_000, 250_000)
  config.lr_end = 1e-7
  config.ema_decay = 0.999
  config.num_train_steps = 1_000_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
