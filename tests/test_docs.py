"""The documentation site builds with warnings as errors (a broken link between pages is one),
and every name the Python API page gives is importable as written."""

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"


def test_the_site_builds_without_a_warning(tmp_path):
    build_main = pytest.importorskip("sphinx.cmd.build").build_main
    argv = ["-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(tmp_path)]
    assert build_main(argv) == 0
    assert (tmp_path / "cli.html").read_text().count("--sampler") >= 1
    assert "dans.train" in (tmp_path / "api.html").read_text()


def test_every_name_of_the_python_api_page_is_importable_as_written():
    names = set(re.findall(r"`(dans(?:\.[A-Za-z_]\w*)+)", (DOCS / "python-api.md").read_text()))
    assert len(names) >= 20
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest prefix that is a module
            try:
                found = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        for attribute in parts[cut:]:
            assert hasattr(found, attribute), name
            found = getattr(found, attribute)


def test_the_cli_reference_lists_every_renamed_setting_and_every_option_it_names():
    from dans.config import TrainConfig, renamed_keys
    from dans.options import flag_name

    text = (DOCS / "cli.md").read_text()
    for old, new in renamed_keys().items():
        assert f"`{old}`" in text and f"`{new}`" in text, old
    flags = set(re.findall(r"`(--[a-z][a-z-]+)", text))
    known = {flag_name(key) for key in TrainConfig.specs()}
    for flag in ("--self-adv-alpha", "--dans-mode", "--nscaching-cache-size"):
        assert flag in flags and flag in known, flag


def test_the_nell_hashes_on_the_datasets_page_are_the_ones_dans_checks():
    from dans.data.datasets import DATASETS

    text = (DOCS / "own-graph.md").read_text()
    for split, digest in DATASETS["nell-995"].sha256.items():
        assert f"{digest}  nell-995/{split}.txt" in text, split
