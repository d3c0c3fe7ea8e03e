"""ESPCN x3 on T91 (Shi et al., CVPR 2016): Y channel, 5-3-3 convs, sub-pixel upsampling.

  python train.py --config configs/espcn_x3.py --workdir DIR --config.manual_dir=DATA

DATA holds T91/ (and Set5/, Set14/ for evaluation). Recipe as measured on a 2-core CPU
(README "Results"): MSE on Y, Adam 1e-3 with cosine decay to 1e-5, batch 16, LR patch 17 (the
paper's 17r-pixel HR sub-images), T91 with HR rescales 1.0-0.6 and flips/rot90, and ReLU hidden
activations instead of the paper's tanh (the model's default): with tanh the same recipe needed
520k steps (82 min) for the Set5 PSNR that ReLU reached after 80k steps (16 min).
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "espcn"
  config.model_overrides = common.model_fields("espcn")
  config.model_overrides.activation = "relu"
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
  config.num_train_steps = 360_000
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 20_000
  config.eval_every_steps = 20_000
  # The published figures (README "Results") were trained with the per-host sample order of
  # earlier releases; keeping it makes this recipe reproduce them bit for bit (a run then resumes
  # only on the same number of processes: README "Data").
  config.data.order = "host"
  return config
