"""SRResNet x4 (Ledig et al., CVPR 2017): the SRGAN generator (16 residual blocks with BN), MSE.

The recipe is jaxsr.recipes.srresnet_x4 (packaged with jaxsr); this file keeps
`--config configs/srresnet_x4.py` working.
"""

from jaxsr.recipes.srresnet_x4 import get_config  # pylint: disable=unused-import
