"""FSRCNN (56, 12, 4) x2 on T91 (Dong et al., ECCV 2016): the x3 recipe at scale 2.

The recipe is jaxsr.recipes.fsrcnn_x2 (packaged with jaxsr); this file keeps
`--config configs/fsrcnn_x2.py` working.
"""

from jaxsr.recipes.fsrcnn_x2 import get_config  # pylint: disable=unused-import
