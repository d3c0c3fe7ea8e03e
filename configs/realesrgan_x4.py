"""Real-ESRGAN x4 (Wang et al., ICCVW 2021): RRDBNet vs. a U-Net discriminator, real-world LR.

The recipe is jaxsr.recipes.realesrgan_x4 (packaged with jaxsr); this file keeps
`--config configs/realesrgan_x4.py` working.
"""

from jaxsr.recipes.realesrgan_x4 import get_config  # pylint: disable=unused-import
