"""Compact Real-ESRGAN x4: SRVGGNetCompact (32 convs x 64, PReLU) trained as Real-ESRGAN.

The recipe is jaxsr.recipes.realesrgan_compact_x4 (packaged with jaxsr); this file keeps
`--config configs/realesrgan_compact_x4.py` working.
"""

from jaxsr.recipes.realesrgan_compact_x4 import get_config  # pylint: disable=unused-import
