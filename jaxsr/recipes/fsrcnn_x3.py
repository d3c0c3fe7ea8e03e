"""FSRCNN (56, 12, 4) x3 on T91 (Dong et al., ECCV 2016): Y channel, PReLU, 9x9 deconvolution.

  python train.py --config configs/fsrcnn_x3.py --workdir DIR --config.manual_dir=DATA

The paper augments T91 by downscaling (0.9-0.6) and rotating; the recipe is ESPCN's
(configs/espcn_x3.py): HR rescales 1.0-0.6 with flips/rot90, MSE on Y, Adam 1e-3 with cosine
decay to 1e-5, batch 16, LR patch 17.
"""

from jaxsr.recipes import common
from jaxsr.recipes import espcn_x3


def get_config():
  config = espcn_x3.get_config()
  config.model = "fsrcnn"
  config.model_overrides = common.model_fields("fsrcnn")
  # 240k steps: ~52 minutes on 2 CPU cores (~78 steps/s), Set5 33.07 dB (README "Results").
  config.num_train_steps = 240_000
  config.eval_every_steps = 20_000
  return config
