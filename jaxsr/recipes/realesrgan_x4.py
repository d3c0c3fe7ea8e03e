"""Real-ESRGAN x4 (Wang et al., ICCVW 2021): RRDBNet vs. a U-Net discriminator, real-world LR.

  python -m jaxsr.convert.vgg vgg19-dcbb9e9d.pth ~/.jaxsr/vgg19.npz             # once
  python train.py --config configs/realesrgan_x4.py --workdir runs/realesrgan_x4 \
      --config.init_from=runs/realesrnet_x4 --config.vgg_weights=~/.jaxsr/vgg19.npz \
      --config.manual_dir=DATA

The published ``train_realesrgan_x4plus.yml``: the generator starts from Real-ESRNet
(configs/realesrnet_x4.py, ``init_from``); loss ``1 * L1 + 1 * perceptual + 0.1 * GAN`` with the
perceptual term the L1 distance of VGG19 features before ReLU, ``conv1_2`` 0.1, ``conv2_2`` 0.1,
``conv3_4`` 1, ``conv4_4`` 1, ``conv5_4`` 1 (ImageNet input normalisation), and the vanilla
(BCE) GAN loss averaged over the per-pixel logits of the U-Net discriminator with spectral
normalisation (``unet_discriminator``); HR 256 (LR 64), batch 48; Adam (0.9, 0.99), lr 1e-4 for
both networks, 400k steps; EMA 0.999. The degradation is drawn on device inside the step.

As in BasicSR, the L1 and perceptual targets are the USM-sharpened HR and the discriminator's
real images the plain HR (``degradation.sharpen_pixel_target``, ``sharpen_perceptual_target``,
``sharpen_gan_target``: True, True, False, BasicSR's ``l1_gt_usm``, ``percep_gt_usm``,
``gan_gt_usm``); ``--config.degradation.sharpen_target=False`` gives unsharpened targets
everywhere.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "rrdbnet"
  config.model_overrides = common.model_fields("rrdbnet")
  config.scale = 4
  common.add_gan_fields(config, discriminator="unet_discriminator")
  config.task = "realesrgan"
  common.add_degradation_fields(config)
  config.dataset = "df2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 64  # HR 256
  config.batch_size = 48
  config.loss = "l1"
  config.gan_type = "vanilla"
  config.pixel_weight = 1.0
  config.perceptual_weight = 1.0
  config.perceptual_layers = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0,
                              "conv5_4": 1.0}
  config.perceptual_criterion = "l1"
  config.adversarial_weight = 0.1
  config.optimizer = "adam"
  config.adam_b1 = 0.9
  config.adam_b2 = 0.99
  config.learning_rate = 1e-4
  config.schedule = "multistep"
  config.lr_boundaries = (400_000,)
  config.lr_decay_factor = 0.5
  config.d_optimizer.learning_rate = 1e-4
  config.ema_decay = 0.999
  config.num_train_steps = 400_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
