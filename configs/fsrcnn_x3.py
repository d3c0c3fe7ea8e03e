"""FSRCNN (56, 12, 4) x3 on T91 (Dong et al., ECCV 2016): Y channel, PReLU, 9x9 deconvolution.

The recipe is jaxsr.recipes.fsrcnn_x3 (packaged with jaxsr); this file keeps
`--config configs/fsrcnn_x3.py` working.
"""

from jaxsr.recipes.fsrcnn_x3 import get_config  # pylint: disable=unused-import
