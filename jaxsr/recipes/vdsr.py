"""VDSR (Kim et al., CVPR 2016): 20 layers, global residual, one model for x2/x3/x4.

  python train.py --config configs/vdsr.py --workdir DIR --config.manual_dir=DATA

Multi-scale training on 41x41 HR patches (each step draws one of x2/x3/x4; the input is the
bicubic-upscaled LR), batch 64, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 every
20 epochs (80 epochs), adjustable gradient clipping theta = 0.01 (each gradient clipped to
[-theta/lr, theta/lr]). The paper's 291 images are T91 + BSD200 ('t91' here; pass
--config.dataset=... for a folder holding both). Evaluated at x3 by default.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "vdsr"
  config.model_overrides = common.model_fields("vdsr")
  config.scale = 3
  config.train_scales = (2, 3, 4)
  config.hr_patch_size = 41
  config.dataset = "t91"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "y"
  config.batch_size = 64
  config.loss = "mse"
  config.optimizer = "sgd"
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.learning_rate = 0.1
  config.schedule = "step"
  config.lr_decay_factor = 0.1
  config.lr_decay_every = 40_000
  config.grad_clip_theta = 0.01
  config.num_train_steps = 160_000
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 10_000
  config.eval_every_steps = 20_000
  return config
