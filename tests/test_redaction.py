"""Database and tracking URLs are shown without their secrets, in messages too."""

import pytest

from dans.config import TrainConfig
from dans.errors import DansError
from dans.experiments.tuning import Dimension, TuneOptions, tune
from dans.redaction import shown_url, without_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:hunter2@db:5432/s", "postgresql://ann:***@db:5432/s"),
        ("mysql://ann:p%40ss@db/s?charset=utf8", "mysql://ann:***@db/s?charset=utf8"),
        ("https://track.example/api?token=abc&x=1", "https://track.example/api?token=***&x=1"),
        ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
        ("http://ann@host/", "http://ann@host/"),
    ],
)
def test_a_url_is_shown_without_its_password_or_tokens(url, shown):
    assert shown_url(url) == shown


def test_a_secret_is_hidden_wherever_a_message_repeats_it():
    url = "postgresql://ann:p%40ss@db/s"
    message = f"{url}: cannot connect as ann with password p@ss (p%40ss)"
    assert without_secrets(message, url) == (
        "postgresql://ann:***@db/s: cannot connect as ann with password *** (***)"
    )


def test_a_study_that_cannot_be_opened_is_named_without_its_password(tmp_path):
    storage = "postgresql://ann:hunter2@127.0.0.1:9/study"
    space = [Dimension("lr", low=1e-3, high=1e-2, log=True)]
    with pytest.raises(DansError) as info:
        tune(TrainConfig(epochs=1), space, 1, tmp_path / "search", TuneOptions(storage=storage))
    assert "hunter2" not in str(info.value)
    assert "--storage postgresql://ann:***@127.0.0.1:9/study: cannot open the study" in str(
        info.value
    )
