"""ESPCN x3 on T91 (Shi et al., CVPR 2016): Y channel, 5-3-3 convs, sub-pixel upsampling.

The recipe is jaxsr.recipes.espcn_x3 (packaged with jaxsr); this file keeps
`--config configs/espcn_x3.py` working.
"""

from jaxsr.recipes.espcn_x3 import get_config  # pylint: disable=unused-import
