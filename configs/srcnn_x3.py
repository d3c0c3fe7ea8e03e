"""SRCNN 9-5-5 x3 (Dong et al., TPAMI 2016): Y channel, bicubic pre-upsampling inside the model.

The recipe is jaxsr.recipes.srcnn_x3 (packaged with jaxsr); this file keeps
`--config configs/srcnn_x3.py` working.
"""

from jaxsr.recipes.srcnn_x3 import get_config  # pylint: disable=unused-import
