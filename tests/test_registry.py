"""Registries: names resolve to classes, and constructors are filled by argument name."""

import pytest

from dans.errors import ConfigError
from dans.registry import Registry


class Base:
    pass


def _registry():
    registry = Registry("widget")

    class Plain(Base):
        name = "plain"

        def __init__(self, size: int, scale: float = 2.0) -> None:
            self.size, self.scale = size, scale

    class Unnamed(Base):
        pass

    registry.register(Plain)
    registry.register(Unnamed)
    return registry, Plain


def test_a_class_without_a_name_is_not_registered():
    registry, _ = _registry()
    assert registry.names() == ["plain"]


def test_an_unknown_name_lists_the_choices():
    registry, _ = _registry()
    with pytest.raises(ConfigError, match=r"unknown widget 'round'; choose one of: plain"):
        registry.get("round")


def test_a_name_taken_by_another_class_is_refused_and_the_same_class_is_welcome_again():
    registry, plain = _registry()
    registry.register(plain)

    class Impostor(Base):
        name = "plain"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)
