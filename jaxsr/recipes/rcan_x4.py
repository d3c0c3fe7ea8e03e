"""RCAN x4 (Zhang et al., ECCV 2018): 10 groups x 20 RCAB, channel attention (reduction 16).

  python train.py --config configs/rcan_x4.py --workdir DIR --config.manual_dir=DATA

DIV2K, LR patch 48 (HR 192), batch 16, Adam (0.9, 0.999), L1, lr 1e-4 halved every 200k steps.
"""

from jaxsr.recipes import common
from jaxsr.recipes import edsr_x2


def get_config():
  config = edsr_x2.get_config()
  config.model = "rcan"
  config.model_overrides = common.model_fields("rcan")
  config.scale = 4
  config.schedule = "step"
  config.lr_decay_every = 200_000
  config.lr_decay_factor = 0.5
  config.lr_boundaries = ()
  config.num_train_steps = 1_000_000
  return config
