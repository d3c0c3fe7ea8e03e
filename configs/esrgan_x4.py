"""ESRGAN x4 (Wang et al., ECCVW 2018): RRDBNet + relativistic average GAN + VGG19 conv5_4 loss.

The recipe is jaxsr.recipes.esrgan_x4 (packaged with jaxsr); this file keeps
`--config configs/esrgan_x4.py` working.
"""

from jaxsr.recipes.esrgan_x4 import get_config  # pylint: disable=unused-import
