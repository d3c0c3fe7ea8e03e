"""Real-ESRNet x4 (Wang et al., ICCVW 2021): RRDBNet, L1, LR from the Real-ESRGAN degradation.

The recipe is jaxsr.recipes.realesrnet_x4 (packaged with jaxsr); this file keeps
`--config configs/realesrnet_x4.py` working.
"""

from jaxsr.recipes.realesrnet_x4 import get_config  # pylint: disable=unused-import
