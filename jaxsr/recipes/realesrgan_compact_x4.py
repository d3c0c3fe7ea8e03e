"""Compact Real-ESRGAN x4: SRVGGNetCompact (32 convs x 64, PReLU) trained as Real-ESRGAN.

  python train.py --config configs/realesrgan_compact_x4.py --workdir runs/compact_x4 \
      --config.vgg_weights=~/.jaxsr/vgg19.npz --config.manual_dir=DATA

The architecture of Real-ESRGAN's ``realesr-general-x4v3`` (Wang et al., ICCVW 2021, released
model; registry ``srvgg_compact`` with ``num_conv=32``), about 1.2M parameters: a fast model for
video and large images. Its exact training settings are not published; this recipe uses the
x4plus GAN recipe (configs/realesrgan_x4.py: L1 + VGG19 perceptual + 0.1 vanilla GAN against the
U-Net discriminator, EMA 0.999, the same on-device degradation). Start it from a compact
Real-ESRNet run (``--config.task=realesrnet`` with this recipe trains one: the GAN fields are
then ignored) with ``--config.init_from``, or from scratch.
"""

from jaxsr.recipes import common
from jaxsr.recipes import realesrgan_x4


def get_config():
  config = realesrgan_x4.get_config()
  config.model = "srvgg_compact"
  config.model_overrides = common.model_fields("srvgg_compact", num_conv=32)
  config.learning_rate = 1e-4
  config.d_optimizer.learning_rate = 1e-4
  return config
