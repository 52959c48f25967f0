"""The package's version, in one place: the build reads it, and run directories record it."""

__version__ = "0.1.0"
