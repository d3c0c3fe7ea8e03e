"""VDSR (Kim et al., CVPR 2016): 20 layers, global residual, one model for x2/x3/x4.

The recipe is jaxsr.recipes.vdsr (packaged with jaxsr); this file keeps
`--config configs/vdsr.py` working.
"""

from jaxsr.recipes.vdsr import get_config  # pylint: disable=unused-import
