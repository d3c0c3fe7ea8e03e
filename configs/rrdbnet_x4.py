"""RRDBNet x4, the PSNR-oriented ESRGAN generator (Wang et al., ECCVW 2018): 23 RRDB, L1.

The recipe is jaxsr.recipes.rrdbnet_x4 (packaged with jaxsr); this file keeps
`--config configs/rrdbnet_x4.py` working.
"""

from jaxsr.recipes.rrdbnet_x4 import get_config  # pylint: disable=unused-import
