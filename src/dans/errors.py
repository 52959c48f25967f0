"""The one exception type that reaches the user as a clean one-line message."""

from __future__ import annotations


class DansError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The command line prints ``error: <message>`` and exits with code 2 (1 for a
    :class:`DansFailure`). The message should name
    the file and line where there is one, and say what to do about it.
    """


class DataError(DansError):
    """A dataset file is missing, empty or malformed."""


class ConfigError(DansError):
    """A configuration value or combination makes no sense."""


class DansFailure(DansError):
    """What was asked could not be done for a reason other than the input: a disk that filled
    up, a file the system would not write, training that diverged. The command line exits with
    code 1 for it, and 2 for the other errors (bad input, usage)."""


class TrainingDiverged(DansFailure):
    """Training kept producing non-finite losses or gradients and was stopped."""
