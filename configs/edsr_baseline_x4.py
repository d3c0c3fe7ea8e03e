"""EDSR-baseline x4 (Lim et al., CVPRW 2017): 16 blocks x 64, no residual scaling, RGB, L1.

The recipe is jaxsr.recipes.edsr_baseline_x4 (packaged with jaxsr); this file keeps
`--config configs/edsr_baseline_x4.py` working.
"""

from jaxsr.recipes.edsr_baseline_x4 import get_config  # pylint: disable=unused-import
