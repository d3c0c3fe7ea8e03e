"""The one exception type for user mistakes (bad paths, corrupt files, unknown names).

Scripts catch ``InputError`` and print its message as a single line, without a traceback.
Messages name what is wrong: the file or folder, the field, the value. An error about one
argument of a library call carries its name in ``field`` (``str(error)`` is then
``'<field>: <message>'``); a command-line program shows it under its own option name with
:meth:`InputError.describe`.
"""

from __future__ import annotations

from typing import Mapping


class InputError(ValueError):
  """Bad user input: a missing/empty folder, an unreadable image, an unknown name or value.

  Attributes:
    message: what is wrong, without the field name.
    field: the library argument or config field at fault (e.g. ``'checkpoint'``,
      ``'scale'``), or None when the error is not about one argument.
  """

  def __init__(self, message: str, *, field: str | None = None):
    super().__init__(message)
    self.message = message
    self.field = field

  def __str__(self) -> str:
    return f"{self.field}: {self.message}" if self.field else self.message

  def describe(self, names: Mapping[str, str]) -> str:
    """The one-line message with ``field`` shown as ``names[field]`` (e.g. a flag name)."""
    if not self.field:
      return self.message
    return f"{names.get(self.field, self.field)}: {self.message}"
