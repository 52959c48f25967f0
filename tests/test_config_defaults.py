"""No component's constructor default drifts from the configuration's default for the same
setting: a component built by hand behaves as one built from a default TrainConfig."""

import dataclasses
import inspect

import pytest

import dans
from dans.models import DECODERS, ENCODERS
from dans.samplers import SAMPLERS

CONFIG_DEFAULTS = {spec.name: spec.default for spec in dataclasses.fields(dans.TrainConfig)}


def _components():
    for registry, prefixed in ((ENCODERS, False), (DECODERS, False), (SAMPLERS, True)):
        for name in registry.names():
            yield registry.get(name), name.replace("-", "_") + "_" if prefixed else ""


def config_key(prefix: str, argument: str) -> str | None:
    """The config key that fills ``argument``: the component's prefixed key, else the bare one
    (as the builders resolve them)."""
    for key in (prefix + argument if prefix else None, argument):
        if key in CONFIG_DEFAULTS:
            return key
    return None


@pytest.mark.parametrize("cls, prefix", list(_components()), ids=lambda value: str(value))
def test_constructor_defaults_match_the_config(cls, prefix):
    for argument in inspect.signature(cls.__init__).parameters.values():
        key = config_key(prefix, argument.name)
        if key is None or argument.default is argument.empty:
            continue
        assert argument.default == CONFIG_DEFAULTS[key], (cls.__name__, argument.name, key)


def test_the_check_covers_prefixed_sampler_settings():
    assert config_key("dans_", "mode") == "dans_mode"
    assert config_key("dans_", "dim") == "dim"
    assert config_key("", "edge_dropout") == "edge_dropout"
    assert config_key("", "known_triples") is None
