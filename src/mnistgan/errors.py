"""The exception types for errors a user can cause and fix."""


class MnistganError(Exception):
    """Bad input or environment: the message says what was wrong and what to do.

    The CLI prints it as a single line (no traceback) and exits with status 2.
    """


class Diverged(MnistganError):
    """Training produced NaN/Inf; the last good checkpoint is kept."""
