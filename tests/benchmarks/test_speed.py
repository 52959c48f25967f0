"""benchmarks/speed.py: its sections timed with the dans command's allocator."""

import pytest
from scripts import load_script

speed = load_script("speed")


@pytest.mark.usefixtures("one_thread")
def test_a_section_is_timed_after_the_allocator_is_set_and_the_record_says_so(
    monkeypatch, call_log, record_of
):
    monkeypatch.setattr(speed, "reuse_freed_memory", call_log.through("allocator"))
    monkeypatch.setitem(speed.SECTIONS, "umls", call_log.through("umls", speed.SECTIONS["umls"]))
    record = record_of(speed, "--sections", "umls", "--repeats", "1", "--threads", "1")
    assert call_log == ["allocator", "umls"]
    assert record["reuses_freed_memory"] is True and record["threads"] == 1
    section = record["umls"]
    assert section["dans_ratio"] == pytest.approx(
        section["dans_epoch_seconds"] / section["uniform_epoch_seconds"]
    )
