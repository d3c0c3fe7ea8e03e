"""RCAN x4 (Zhang et al., ECCV 2018): 10 groups x 20 RCAB, channel attention (reduction 16).

The recipe is jaxsr.recipes.rcan_x4 (packaged with jaxsr); this file keeps
`--config configs/rcan_x4.py` working.
"""

from jaxsr.recipes.rcan_x4 import get_config  # pylint: disable=unused-import
