"""How often a run saves its state: a count of epochs or a duration, parsed and applied."""

import pytest

from dans.training.cadence import CheckpointCadence


@pytest.mark.parametrize(
    ("value", "cadence"),
    [
        (1, CheckpointCadence(epochs=1)),
        (0, CheckpointCadence()),
        ("3", CheckpointCadence(epochs=3)),
        (" 12 ", CheckpointCadence(epochs=12)),
        ("90s", CheckpointCadence(seconds=90.0)),
        ("2m", CheckpointCadence(seconds=120.0)),
        ("1.5h", CheckpointCadence(seconds=5400.0)),
    ],
)
def test_counts_and_durations_by_hand(value, cadence):
    assert CheckpointCadence.parse(value) == cadence


@pytest.mark.parametrize("value", [-1, "-2", "0s", "soon", "", "5 epochs", True, "1e3"])
def test_what_is_neither_is_refused(value):
    with pytest.raises(ValueError):
        CheckpointCadence.parse(value)


def test_every_third_epoch():
    cadence = CheckpointCadence(epochs=3)
    assert [epoch for epoch in range(1, 10) if cadence.due(epoch, 0.0)] == [3, 6, 9]


def test_by_the_clock_once_the_duration_has_passed_since_the_last_save():
    cadence = CheckpointCadence(seconds=60.0)
    assert not cadence.due(5, 59.9)
    assert cadence.due(5, 60.0)
    assert cadence.due(1, 600.0)


def test_never():
    assert not CheckpointCadence().due(1, 1e9)
