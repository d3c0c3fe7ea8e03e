"""The one exception type for user mistakes (bad paths, corrupt files, unknown names).

Scripts catch ``InputError`` and print its message as a single line, without a traceback.
Messages name what is wrong: the file or folder, the field, the value.
"""


class InputError(ValueError):
  """Bad user input: a missing/empty folder, an unreadable image, an unknown name or value."""
