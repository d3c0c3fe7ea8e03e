"""Fine-tune Real-ESRGAN x4plus on your own images (Wang et al., ICCVW 2021).

The recipe is jaxsr.recipes.realesrgan_finetune (packaged with jaxsr); this file keeps
`--config configs/realesrgan_finetune.py` working.
"""

from jaxsr.recipes.realesrgan_finetune import get_config  # pylint: disable=unused-import
