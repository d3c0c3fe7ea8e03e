"""Real-ESRNet x4 (Wang et al., ICCVW 2021): RRDBNet, L1, LR from the Real-ESRGAN degradation.

  python train.py --config configs/rrdbnet_x4.py --workdir runs/rrdb_x4 ...   # PSNR RRDBNet
  python train.py --config configs/realesrnet_x4.py --workdir runs/realesrnet_x4 \
      --config.init_from=runs/rrdb_x4 --config.manual_dir=DATA

The published ``train_realesrnet_x4plus.yml``: RRDBNet (23 RRDB, nf 64, gc 32) started from a
PSNR-oriented ESRGAN generator (``init_from``; its EMA weights); L1 against the USM-sharpened HR
(``degradation.sharpen_pixel_target``); HR crops 256 (LR 64), batch 48 (4 GPUs x 12), DF2K+OST
(here ``df2k``; any folder with ``--config.data.hr_folder``); Adam (0.9, 0.99), lr 2e-4 halved
at 1M of 1M steps (i.e. constant); EMA 0.999. The second-order degradation
(``config.degradation``, Real-ESRGAN x4plus's values) runs on device inside the step
(``jaxsr.tasks.realesrgan``). Its checkpoint initialises configs/realesrgan_x4.py. The
evaluation on Set5/Set14 uses their bicubic LR: a sanity check only, not the model's target.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.task = "realesrnet"
  config.model = "rrdbnet"
  config.model_overrides = common.model_fields("rrdbnet")
  config.scale = 4
  common.add_degradation_fields(config)
  config.dataset = "df2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 64  # HR 256
  config.batch_size = 48
  config.loss = "l1"
  config.optimizer = "adam"
  config.adam_b1 = 0.9
  config.adam_b2 = 0.99
  config.learning_rate = 2e-4
  config.schedule = "multistep"
  config.lr_boundaries = (1_000_000,)
  config.lr_decay_factor = 0.5
  config.ema_decay = 0.999
  config.num_train_steps = 1_000_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
