"""SRGAN x4 (Ledig et al., CVPR 2017): SRResNet + SRGAN discriminator, VGG54 + 1e-3 adversarial.

The recipe is jaxsr.recipes.srgan_x4 (packaged with jaxsr); this file keeps
`--config configs/srgan_x4.py` working.
"""

from jaxsr.recipes.srgan_x4 import get_config  # pylint: disable=unused-import
