"""benchmarks/speed.py: its sections timed with the dans command's allocator."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "speed.py"
spec = importlib.util.spec_from_file_location("speed", SCRIPT)
speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(speed)


@pytest.mark.usefixtures("one_thread")
def test_a_section_is_timed_after_the_allocator_is_set_and_the_record_says_so(
    monkeypatch, tmp_path
):
    calls = []
    monkeypatch.setattr(speed, "reuse_freed_memory", lambda: calls.append("allocator") or True)
    umls = speed.SECTIONS["umls"]
    monkeypatch.setitem(speed.SECTIONS, "umls", lambda *a: calls.append("umls") or umls(*a))
    out = tmp_path / "speed.json"
    argv = ["speed.py", "--sections", "umls", "--repeats", "1", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    speed.main()
    record = json.loads(out.read_text())
    assert calls == ["allocator", "umls"]
    assert record["reuses_freed_memory"] is True and record["threads"] == 1
    section = record["umls"]
    assert section["dans_ratio"] == pytest.approx(
        section["dans_epoch_seconds"] / section["uniform_epoch_seconds"]
    )
