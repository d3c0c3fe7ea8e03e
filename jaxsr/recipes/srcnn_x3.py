"""SRCNN 9-5-5 x3 (Dong et al., TPAMI 2016): Y channel, bicubic pre-upsampling inside the model.

  python train.py --config configs/srcnn_x3.py --workdir DIR --config.manual_dir=DATA

The paper trains on 33x33 HR sub-images of T91 (or ImageNet) with MSE and SGD (1e-4, 1e-5 for
the last layer) for ~10^8 backpropagations; this uses Adam 1e-4 on 11-pixel LR (33-pixel HR)
patches. Its official weights can be imported instead: see README "Published weights".
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "srcnn"
  config.scale = 3
  config.model_overrides = common.model_fields("srcnn", padding="zero")
  config.dataset = "t91"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "y"
  config.lr_patch_size = 11
  config.batch_size = 128
  config.loss = "mse"
  config.learning_rate = 1e-4
  config.num_train_steps = 1_000_000
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 10_000
  config.eval_every_steps = 50_000
  return config
