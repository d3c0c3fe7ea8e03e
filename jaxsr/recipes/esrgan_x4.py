"""ESRGAN x4 (Wang et al., ECCVW 2018): RRDBNet + relativistic average GAN + VGG19 conv5_4 loss.

  python train.py --config configs/rrdbnet_x4.py --workdir runs/rrdb_x4 ...    # PSNR stage
  python -m jaxsr.convert.vgg vgg19-dcbb9e9d.pth ~/.jaxsr/vgg19.npz             # once
  python train.py --config configs/esrgan_x4.py --workdir runs/esrgan_x4 \
      --config.init_from=runs/rrdb_x4 --config.vgg_weights=~/.jaxsr/vgg19.npz \
      --config.manual_dir=DATA

The recipe of the paper / BasicSR ``train_ESRGAN_x4.yml``: generator RRDBNet (23 RRDB) started
from the RRDB PSNR model (``init_from``, its EMA weights); loss
``1e-2 * L1 + 1 * L1(VGG19 conv5_4 before ReLU) + 5e-3 * RaGAN`` (``jaxsr.losses``; torchvision
VGG19 weights with ImageNet input normalisation); ESRGAN's VGG-style discriminator on HR 128x128
patches (LR 32), batch 16, DF2K; Adam (0.9, 0.99) for G and D, lr 1e-4 halved at
50k/100k/200k/300k of 400k steps; EMA 0.999 (evaluated and exported).

Note on the RaGAN scale: ``jaxsr.losses.gan_g_loss('ragan')`` is the paper's eq. 9 (a sum of two
terms); the released code averages the two terms, so the same 5e-3 weighs the adversarial
gradient twice as much here. Set ``--config.adversarial_weight=2.5e-3`` to match the released
code exactly.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "rrdbnet"
  config.model_overrides = common.model_fields("rrdbnet")
  config.scale = 4
  # The GAN fields; their defaults are this paper's loss: 1e-2 L1 + 1 L1(conv5_4) + 5e-3 RaGAN.
  common.add_gan_fields(config, discriminator="esrgan_discriminator")
  config.dataset = "df2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 32  # HR 128
  config.batch_size = 16
  config.loss = "l1"
  # Optimisers: Adam (0.9, 0.99) for both players, the same schedule.
  config.optimizer = "adam"
  config.adam_b1 = 0.9
  config.adam_b2 = 0.99
  config.learning_rate = 1e-4
  config.schedule = "multistep"
  config.lr_boundaries = (50_000, 100_000, 200_000, 300_000)
  config.lr_decay_factor = 0.5
  config.d_optimizer.learning_rate = 1e-4
  config.ema_decay = 0.999
  config.num_train_steps = 400_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
