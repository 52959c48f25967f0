"""What the benchmark scripts' tests share."""

import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


class CallLog(list):
    """The names of the calls made through the stand-ins of :meth:`through`, in order: what a
    script calls, and when."""

    def through(self, name: str, function: Callable[..., Any] = lambda: True) -> Callable:
        """``function`` (by default one that returns True), noting ``name`` here first."""

        def called(*args: Any) -> Any:
            self.append(name)
            return function(*args)

        return called


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture
def record_of(monkeypatch, tmp_path) -> Callable[..., Any]:
    """Runs a script's ``main`` with the arguments given and ``--out`` a file of its own;
    returns the JSON it wrote."""

    def run(module: ModuleType, *args: str) -> Any:
        out = tmp_path / f"{module.__name__}.json"
        monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *args, "--out", str(out)])
        module.main()
        return json.loads(out.read_text())

    return run
