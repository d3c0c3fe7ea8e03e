"""EDSR-baseline x4 (Lim et al., CVPRW 2017): 16 blocks x 64, no residual scaling, RGB, L1.

  python train.py --config configs/edsr_baseline_x4.py --workdir DIR --config.manual_dir=DATA

DIV2K, HR patch 192 (LR 48), batch 16, Adam (0.9, 0.999), lr 1e-4 halved at 200k of 300k.
"""

from jaxsr.recipes import common
from jaxsr.recipes import edsr_x2


def get_config():
  config = edsr_x2.get_config()
  config.model = "edsr_baseline"
  config.model_overrides = common.model_fields("edsr_baseline")
  config.scale = 4
  return config
