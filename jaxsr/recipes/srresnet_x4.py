"""SRResNet x4 (Ledig et al., CVPR 2017): the SRGAN generator (16 residual blocks with BN), MSE.

  python train.py --config configs/srresnet_x4.py --workdir DIR --config.manual_dir=DATA

The PSNR-oriented stage of SRGAN: HR patch 96 (LR 24), batch 16, Adam lr 1e-4, 10^6 steps
(the paper samples ImageNet; DIV2K here). Its checkpoint initialises configs/srgan_x4.py.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "srresnet"
  config.model_overrides = common.model_fields("srresnet")
  config.scale = 4
  config.dataset = "div2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 24
  config.batch_size = 16
  config.loss = "mse"
  config.learning_rate = 1e-4
  config.num_train_steps = 1_000_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
