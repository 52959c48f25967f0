"""One registry per extension point: a name in a config or on the command line resolves here."""

from __future__ import annotations

from typing import Generic, TypeVar

from dans.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes of one kind (encoders, decoders, samplers, ...).

    Base classes call :meth:`register` from ``__init_subclass__``, so a user's own subclass with a
    ``name`` class attribute becomes available under that name as soon as it is defined.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", None)
        if not name:
            return cls
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.kind} {name!r} is already registered by {self._classes[name]}")
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._classes)
