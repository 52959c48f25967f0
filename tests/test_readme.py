"""The README's quickstart block runs as written, with fewer epochs."""

import re
import shlex
from pathlib import Path

import pytest

from dans.cli import main

README = Path(__file__).parent.parent / "README.md"

pytestmark = pytest.mark.usefixtures("one_thread")


def quickstart_commands() -> list[list[str]]:
    """The `dans` lines of the first code block under "## Quickstart", as argument lists."""
    section = README.read_text().split("## Quickstart", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [
        shlex.split(line)[1:] for line in block.group(1).splitlines() if line.startswith("dans ")
    ]


def test_the_quickstart_runs(tmp_path, monkeypatch, capsys):
    commands = quickstart_commands()
    assert [argv[0] for argv in commands][:2] == ["train", "train"]
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        if argv[0] == "train":
            argv = [*argv, "--epochs", "2", "--quiet", "--device", "cpu"]
        assert main(argv) == 0, argv
    assert (tmp_path / "runs" / "d1-exported" / "entity_embeddings.npy").is_file()
    assert (tmp_path / "runs" / "curves.png").is_file()
    assert "(body_part_organ_or_organ_component, location_of, ?)" in capsys.readouterr().out
