"""Imports only point down: every module of the package sits in a layer, and imports its own
layer and the layers below it, never one above."""

import ast
from pathlib import Path

import pytest

import dans

PACKAGE = Path(dans.__file__).parent
# From the bottom up; a name stands for the module and everything under it.
LAYERS = (
    (
        "dans.errors",
        "dans.files",
        "dans.folders",
        "dans.redaction",
        "dans.registry",
        "dans.sealed",
        "dans.distributed",
        "dans.memory",
        "dans.allocator",
        "dans.options",
        "dans.version",
    ),
    ("dans.optim", "dans.data"),
    ("dans.models",),
    ("dans.evaluation", "dans.samplers"),
    ("dans.config", "dans.recipes"),
    ("dans.training",),
    ("dans.builders", "dans.rundir", "dans.tracking", "dans.pipeline"),
    ("dans.prediction", "dans.export", "dans.pykeen"),
    ("dans.experiments",),
    ("dans.cli", "dans.__main__"),
)


def module_names() -> list[str]:
    return sorted(
        ".".join(("dans", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in PACKAGE.rglob("*.py")
    )


MODULES = module_names()


def layer_of(module: str) -> int:
    """The layer of ``module``; the package itself, which re-exports the public API, is on
    top."""
    if module == "dans":
        return len(LAYERS)
    for layer, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return layer
    raise LookupError(f"{module} is in no layer: add it to LAYERS")


def source_of(module: str) -> str:
    base = PACKAGE.joinpath(*module.split(".")[1:])
    return (base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).read_text()


def imported(source: str) -> set[str]:
    """The package's modules that ``source`` imports, ``from a import b`` resolved to ``a.b``
    when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {name for name in found if name == "dans" or name.startswith("dans.")}


def upward(module: str, source: str) -> list[str]:
    """What ``source``, as the text of ``module``, imports from above its layer."""
    return sorted(name for name in imported(source) if layer_of(name) > layer_of(module))


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_nothing_above_its_layer(module):
    found = upward(module, source_of(module))
    assert not found, f"{module} (layer {layer_of(module)}) imports {found}"


def test_the_check_finds_every_form_of_an_upward_import():
    for source in (
        "from dans.training.trainer import Trainer",
        "from dans import training",
        "import dans.pipeline",
        "from dans import train",  # the package's public API sits on top
    ):
        assert upward("dans.samplers.base", source), source
    assert not upward("dans.samplers.base", "from dans.models import gather\nimport torch")


def test_no_module_imports_relatively():
    """The walk reads absolute imports only."""
    for module in MODULES:
        tree = ast.parse(source_of(module))
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], module
