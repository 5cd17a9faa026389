"""User-facing errors.

A ``UserError`` is something the user can fix (bad input, missing file, wrong
bundle). The CLI prints its message on one line and exits with code 2. Any
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by input the user controls. Exit code 2, one line."""

    exit_code = 2


class DataError(UserError):
    """Malformed data file: the message starts with ``file:line:``."""

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class IntegrityError(UserError):
    """A model file, bundle or manifest failed a hash or consistency check."""


class MergeError(UserError):
    """Experts cannot be merged (different bases, shapes, NaN, bad params)."""
