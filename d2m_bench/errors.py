"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user (a file, a directory, an option). Never a bug."""

    exit_code = 2

    def __init__(self, message, path=None):
        self.path = None if path is None else str(path)
        text = f"{self.path}: {message}" if self.path else str(message)
        # One line whatever the input: a key, a file name or a value quoted from a hostile file
        # may hold line breaks, which would let it forge extra "error" lines.
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))


class AudioError(UserError):
    """An audio file that cannot be used: unreadable, empty, non-finite."""
