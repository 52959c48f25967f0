"""Declaring a setting once (default, help, range, choices), grouping settings, and checking a
value against its declaration, with errors that name the flag."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dans.errors import ConfigError

# torch takes seeds, sizes and counts as signed 64-bit integers; a larger one raises deep inside it.
INT64_LIMIT = 1 << 63


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field: ``default``, the flag's ``help``, and what :func:`check_range` checks
    (``minimum``, ``above``, ``below``, ``maximum``, ``choices``)."""
    return field(default=default, metadata={"help": help, **extra})


class OptionError(ConfigError):
    """A value outside its setting's range; ``key`` is the setting's config key, so that a
    settings file can add the line that set it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Options:
    """A group of settings: each field an :func:`option`, checked when the group is made.

    A setting's config key and flag are ``prefix`` + its field name: a sampler's options carry
    its name (``dans_`` + ``mode`` is ``dans_mode``, flag ``--dans-mode``), so the field names
    stay short inside the component and unique in a settings file.
    """

    prefix: ClassVar[str] = ""
    # The heading of the group in --help and in a written config.toml.
    title: ClassVar[str] = ""
    # Old config key -> the key that replaced it: files and flags that use the old name are
    # read for one release, with a warning.
    renamed: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            try:
                check_range(spec, getattr(self, spec.name), self.prefix + spec.name)
            except ConfigError as exc:
                raise OptionError(self.prefix + spec.name, str(exc)) from None

    @classmethod
    def specs(cls) -> dict[str, dataclasses.Field]:
        """Config key -> the field behind it, in declaration order."""
        return {cls.prefix + spec.name: spec for spec in dataclasses.fields(cls)}

    def values(self) -> dict[str, Any]:
        """Config key -> this group's value."""
        return {key: getattr(self, spec.name) for key, spec in self.specs().items()}


_VALUE_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def value_type(spec: dataclasses.Field) -> type:
    """The type of a setting's values: int, float, str or bool, whether the field's annotation
    is the type or its name (as under ``from __future__ import annotations``)."""
    return _VALUE_TYPES[spec.type] if isinstance(spec.type, str) else spec.type


def check_range(spec: dataclasses.Field, value: Any, key: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the flag (of ``key``, else of the field's name) when
    ``value`` is outside ``spec``'s range."""
    flag = flag_name(key or spec.name)
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
    if meta.get("duration") and value:
        try:
            duration_seconds(value)
        except ValueError:
            raise ConfigError(
                f"{flag} must be a duration such as 90s, 10m or 1.5h, got {show(value)}"
            ) from None


# A positive number of seconds, minutes or hours: 90s, 10m, 1.5h.
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smh])")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in ``text``, a number and its unit (``90s``, ``10m``, ``1.5h``); raises
    ``ValueError`` on anything else, zero included."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0.0
    if not 0 < seconds < math.inf:
        raise ValueError(f"not a duration: {text!r}")
    return seconds


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
