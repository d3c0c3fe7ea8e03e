"""Tiny run for tests: ESPCN x3 on the embedded default, seconds on one CPU.

The recipe is jaxsr.recipes.test (packaged with jaxsr); this file keeps
`--config configs/test.py` working.
"""

from jaxsr.recipes.test import get_config  # pylint: disable=unused-import
