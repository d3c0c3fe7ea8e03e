"""EDSR x2 (Lim et al., CVPRW 2017): 32 blocks x 256, residual scaling 0.1, RGB, L1.

  python train.py --config configs/edsr_x2.py --workdir DIR --config.manual_dir=DATA

DIV2K, HR patch 96 (LR 48), batch 16, Adam (0.9, 0.999), lr 1e-4 halved at 200k of 300k steps.
(The paper initialises x3/x4 from the x2 model: --config.init_from=X2_WORKDIR with a model
whose upsampler differs is not supported; train them from scratch or fine-tune the body.)
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "edsr"
  config.model_overrides = common.model_fields("edsr")
  config.scale = 2
  config.dataset = "div2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 48
  config.batch_size = 16
  config.loss = "l1"
  config.learning_rate = 1e-4
  config.schedule = "multistep"
  config.lr_boundaries = (200_000,)
  config.lr_decay_factor = 0.5
  config.num_train_steps = 300_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  config.compute_dtype = "float32"  # 'bfloat16' on GPU/TPU
  return config
