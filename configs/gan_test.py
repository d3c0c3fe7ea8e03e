"""Tiny ESRGAN-style run for tests: seconds on one CPU, no files, no real VGG weights.

The recipe is jaxsr.recipes.gan_test (packaged with jaxsr); this file keeps
`--config configs/gan_test.py` working.
"""

from jaxsr.recipes.gan_test import get_config  # pylint: disable=unused-import
