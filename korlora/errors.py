"""Errors that the command line reports as one clear message instead of a traceback."""


class KorloraError(Exception):
    """A user-facing error: bad input, a missing file, an impossible setting."""
