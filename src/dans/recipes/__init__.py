"""Recipes: tuned settings for the large benchmarks, shipped as TOML files beside this module.

A recipe is a ``--config`` file that names its dataset. Its settings sit over the built-in
defaults and under a ``--config`` file and flags, so any key can be overridden. Each file's
first comment line describes it; the comments below say on what each value was chosen. A recipe
may build on another, ``based_on = "wn18rr"``: its own keys then sit over that recipe's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from dans.config import TrainConfig, read_toml, where_set
from dans.errors import ConfigError

_SUFFIX = ".toml"
# The key naming the recipe that a recipe builds on.
BASED_ON = "based_on"


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def recipe_names() -> list[str]:
    """The shipped recipes, sorted by name."""
    return sorted(path.stem for path in _folder().glob(f"*{_SUFFIX}"))


def recipe_path(name: str) -> Path:
    """The TOML file of recipe ``name``; raises :class:`ConfigError` naming the known ones."""
    if name not in recipe_names():
        raise ConfigError(f"--recipe: unknown recipe {name!r}; known: {', '.join(recipe_names())}")
    return _folder() / f"{name}{_SUFFIX}"


def recipe_settings(name: str) -> dict[str, Any]:
    """The keys recipe ``name`` sets, those of the recipe it is based on included, checked as
    config keys, an error naming the file and line to blame; no others."""
    path = recipe_path(name)
    text, own = read_toml(path)
    base = own.pop(BASED_ON, None)
    if base is not None and base not in recipe_names():
        raise ConfigError(f"{where_set(path, text, BASED_ON)}: {BASED_ON}: unknown recipe {base!r}")
    keys = {**(recipe_settings(base) if base is not None else {}), **own}
    config = TrainConfig.from_dict(keys, str(path), where=lambda key: where_set(path, text, key))
    values = config.to_dict()
    return {key: values[key] for key in keys}


def recipe(name: str, **overrides: Any) -> TrainConfig:
    """The configuration of recipe ``name``, with ``overrides`` (config keys) on top.

    ``dans.train(dans.recipe("wn18rr", sampler="dans"), out="runs/wn")`` trains it.
    """
    return TrainConfig.from_dict({**recipe_settings(name), **overrides}, "overrides")


def describe(name: str) -> str:
    """The first comment line of recipe ``name``, without its ``#``."""
    for line in recipe_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""
