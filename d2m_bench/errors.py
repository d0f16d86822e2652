"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user (a file, a directory, an option). Never a bug."""

    exit_code = 2

    def __init__(self, message, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class AudioError(UserError):
    """An audio file that cannot be used: unreadable, empty, non-finite."""
