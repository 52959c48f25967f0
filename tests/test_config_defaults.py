"""No component's constructor default drifts from the configuration's default for the same
setting: a component built by hand behaves as one built from a default TrainConfig. A sampler's
own settings are declared once, in its options class, so they cannot drift at all."""

import dataclasses
import inspect

import pytest

import dans
from dans.models import DECODERS, ENCODERS
from dans.samplers import SAMPLERS
from dans.samplers.base import NegativeSampler

CONFIG_DEFAULTS = {key: spec.default for key, spec in dans.TrainConfig.specs().items()}
COMPONENTS = [
    registry.get(name) for registry in (ENCODERS, DECODERS, SAMPLERS) for name in registry.names()
]
WITH_OPTIONS = [cls for cls in COMPONENTS if getattr(cls, "options_type", None) is not None]


def compared_arguments(cls) -> list[str]:
    """The constructor arguments of ``cls`` with a default that a config key also sets."""
    return [
        argument.name
        for argument in inspect.signature(cls.__init__).parameters.values()
        if argument.name in CONFIG_DEFAULTS and argument.default is not argument.empty
    ]


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda cls: cls.__name__)
def test_constructor_defaults_match_the_config(cls):
    parameters = inspect.signature(cls.__init__).parameters
    for name in compared_arguments(cls):
        assert parameters[name].default == CONFIG_DEFAULTS[name], (cls.__name__, name)


def test_the_check_compares_something():
    assert "filter_negatives" in compared_arguments(SAMPLERS.get("dans"))
    assert {ENCODERS.get("rgcn"), ENCODERS.get("lookup"), DECODERS.get("rotate")} <= set(
        WITH_OPTIONS
    )


@pytest.mark.parametrize("cls", WITH_OPTIONS, ids=lambda cls: cls.__name__)
def test_a_component_takes_its_own_settings_only_through_its_options(cls):
    parameters = inspect.signature(cls.__init__).parameters
    if cls.__init__ is NegativeSampler.__init__:
        # The base class's None stands for the sampler's options type's defaults.
        assert parameters["options"].default is None
        assert cls(5, 2).options == cls.options_type()
    else:
        assert parameters["options"].default == cls.options_type()
    own = {spec.name for spec in dataclasses.fields(cls.options_type)}
    assert not own & parameters.keys(), cls.__name__
    # Every one of them is a config key: its prefix and the field's name.
    assert set(cls.options_type.specs()) <= CONFIG_DEFAULTS.keys()
