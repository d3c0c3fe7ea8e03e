"""SRGAN x4 (Ledig et al., CVPR 2017): SRResNet + SRGAN discriminator, VGG54 + 1e-3 adversarial.

  python train.py --config configs/srresnet_x4.py --workdir runs/srresnet_x4 ...   # SRResNet-MSE
  python -m jaxsr.convert.vgg vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 ~/.jaxsr/vgg19_caffe.npz
  python train.py --config configs/srgan_x4.py --workdir runs/srgan_x4 \
      --config.init_from=runs/srresnet_x4 --config.vgg_weights=~/.jaxsr/vgg19_caffe.npz \
      --config.manual_dir=DATA

The paper's SRGAN-VGG54: content loss on VGG19 "phi_5,4", the feature map of the 4th
convolution *after activation* before the 5th max-pooling (here ``relu5_4``), squared error
(``perceptual_criterion='l2'``), with the features rescaled by 1/12.75 (so the weight on the L2
is 1/12.75^2); plus 1e-3 times the non-saturating adversarial loss ``-log D(G(x))`` (vanilla GAN)
with the min-max (BCE) discriminator loss. No pixel loss. The paper's VGG is the original
Caffe one (0..255 BGR input), i.e. Keras' notop .h5: with torchvision's weights the features are
~57x smaller and the weight should grow accordingly (BasicSR's modern SRGAN recipe instead uses
1e-2 L1 + 1 * L1 on conv5_4 + 5e-3 vanilla GAN).

Generator from the SRResNet-MSE model (``init_from``); HR 96 patches (LR 24), batch 16 (the
paper samples ImageNet; DIV2K here); Adam beta1 0.9, lr 1e-4 for 1e5 updates then 1e-5 for
another 1e5, for G and D.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "srresnet"
  config.model_overrides = common.model_fields("srresnet")
  config.scale = 4
  common.add_gan_fields(config, discriminator="srgan_discriminator")
  config.dataset = "div2k"
  config.eval_datasets = "set5,set14"
  config.eval_protocol = "rgb"
  config.lr_patch_size = 24  # HR 96
  config.batch_size = 16
  # Losses: VGG54 on features / 12.75 (L2), 1e-3 vanilla GAN, no pixel term.
  config.gan_type = "vanilla"
  config.loss = "mse"
  config.pixel_weight = 0.0
  config.perceptual_weight = 1.0 / 12.75 ** 2
  config.perceptual_layers = {"relu5_4": 1.0}  # after activation (VGG54)
  config.perceptual_criterion = "l2"
  config.adversarial_weight = 1e-3
  # Optimisers: Adam beta1 0.9 for both players, 1e-4 then 1e-5.
  config.optimizer = "adam"
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.learning_rate = 1e-4
  config.schedule = "multistep"
  config.lr_boundaries = (100_000,)
  config.lr_decay_factor = 0.1
  config.d_optimizer.learning_rate = 1e-4
  config.ema_decay = 0.0
  config.num_train_steps = 200_000
  config.log_every_steps = 100
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 10_000
  return config
