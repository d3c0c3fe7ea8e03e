"""The training recipes that ship with jaxsr: one ml_collections config file per model.

Each recipe module ``jaxsr.recipes.NAME`` has ``get_config() -> ml_collections.ConfigDict``
built on ``jaxsr.recipes.common`` (every field and its default). ml_collections' config flags
load a recipe from its file path (``path(NAME)``), so the recipe files use absolute imports
only.
"""

from __future__ import annotations

import pathlib

from jaxsr.errors import InputError

__all__ = ["names", "path"]

_DIR = pathlib.Path(__file__).resolve().parent
_NOT_RECIPES = ("common",)


def names() -> list[str]:
  """The recipe names, sorted (e.g. 'espcn_x3', 'edsr_x2', 'test')."""
  return sorted(p.stem for p in _DIR.glob("*.py")
                if not p.stem.startswith("_") and p.stem not in _NOT_RECIPES)


def path(name: str) -> pathlib.Path:
  """The file of recipe ``name``.

  Raises:
    InputError: no recipe has that name (the message lists them).
  """
  if name not in names():
    raise InputError(f"unknown recipe {name!r}; expected one of {', '.join(names())}",
                     field="recipe")
  return _DIR / f"{name}.py"
