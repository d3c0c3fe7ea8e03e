"""EDSR x2 (Lim et al., CVPRW 2017): 32 blocks x 256, residual scaling 0.1, RGB, L1.

The recipe is jaxsr.recipes.edsr_x2 (packaged with jaxsr); this file keeps
`--config configs/edsr_x2.py` working.
"""

from jaxsr.recipes.edsr_x2 import get_config  # pylint: disable=unused-import
