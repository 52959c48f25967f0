"""The one exception type that reaches the user as a clean one-line message."""

from __future__ import annotations


class DansError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The command line prints ``error: <message>`` and exits with code 2. The message should name
    the file and line where there is one, and say what to do about it.
    """


class DataError(DansError):
    """A dataset file is missing, empty or malformed."""


class ConfigError(DansError):
    """A configuration value or combination makes no sense."""


class TrainingDiverged(DansError):
    """Training kept producing non-finite losses or gradients and was stopped."""
