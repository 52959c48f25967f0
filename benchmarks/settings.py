"""``--set KEY=VALUE`` on the benchmark scripts' command lines: a training setting, read as its
type."""

from __future__ import annotations

import argparse

import dans
from dans.options import value_type


def setting_value(key: str, value: str) -> object:
    """``value`` read as the type of the training setting ``key``."""
    spec = dans.TrainConfig.specs().get(key)
    if spec is None:
        raise argparse.ArgumentTypeError(f"unknown setting {key!r}")
    kind = value_type(spec)
    return (value.lower() == "true") if kind is bool else kind(value)


def setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` as the pair (key, typed value)."""
    key, _, value = text.partition("=")
    return key, setting_value(key, value)
