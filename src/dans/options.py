"""Declaring a setting once (default, help, range, choices) and checking a value against it, with
errors that name the flag."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any

from dans.errors import ConfigError

# torch takes seeds, sizes and counts as signed 64-bit integers; a larger one raises deep inside it.
INT64_LIMIT = 1 << 63


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field: ``default``, the flag's ``help``, and what :func:`check_range` checks
    (``minimum``, ``above``, ``below``, ``maximum``, ``choices``)."""
    return field(default=default, metadata={"help": help, **extra})


def check_range(spec: dataclasses.Field, value: Any) -> None:
    """Raise :class:`ConfigError` naming the flag when ``value`` is outside ``spec``'s range."""
    flag = flag_name(spec.name)
    meta = spec.metadata
    if isinstance(value, int) and not -INT64_LIMIT <= value < INT64_LIMIT:
        raise ConfigError(f"{flag} is out of range (a signed 64-bit integer), got {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value}")
    if "minimum" in meta and value < meta["minimum"]:
        raise ConfigError(f"{flag} must be at least {meta['minimum']}, got {value}")
    if "above" in meta and value <= meta["above"]:
        raise ConfigError(f"{flag} must be greater than {meta['above']}, got {value}")
    if "below" in meta and value >= meta["below"]:
        raise ConfigError(f"{flag} must be less than {meta['below']}, got {value}")
    if "maximum" in meta and value > meta["maximum"]:
        raise ConfigError(f"{flag} must be at most {meta['maximum']}, got {value}")
    if "choices" in meta:
        require_choice(flag, value, meta["choices"])


def require_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` naming ``flag`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages: a hostile file's value
    may be megabytes long, or an integer too long for ``repr`` (more than 4300 digits)."""
    try:
        text = repr(value)
    except ValueError:
        return "<too long to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
