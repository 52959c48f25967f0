"""The learning-rate schedule: warm-up and decay factors by hand, and the trainer applying them."""

import math

import pytest
import torch

import dans
from dans.training.schedule import lr_factor

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        # Warm-up of 2 epochs: 1/3, 2/3; then 4 epochs from the full rate towards 0 at epoch 7.
        ("none", [1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0]),
        ("linear", [1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25]),
        (
            "cosine",
            [
                1 / 3,
                2 / 3,
                1.0,
                (1 + math.cos(math.pi / 4)) / 2,
                0.5,
                (1 - math.cos(math.pi / 4)) / 2,
            ],
        ),
    ],
)
def test_factors_by_hand(decay, expected):
    got = [lr_factor(epoch, total=6, warmup=2, decay=decay) for epoch in range(1, 7)]
    assert got == pytest.approx(expected)


def test_no_warmup_starts_at_the_full_rate_and_never_reaches_zero():
    assert lr_factor(1, total=10, warmup=0, decay="cosine") == 1.0
    assert 0 < lr_factor(10, total=10, warmup=0, decay="linear") == pytest.approx(0.1)


def test_unknown_decay_is_refused():
    with pytest.raises(ValueError, match="unknown learning-rate decay"):
        lr_factor(3, total=5, warmup=0, decay="step")


def test_the_trainer_sets_and_logs_each_epochs_rate(tmp_path, monkeypatch):
    config = dans.TrainConfig(
        dim=8,
        epochs=3,
        pretrain_epochs=1,
        lr=0.01,
        lr_warmup_epochs=1,
        lr_decay="linear",
        eval_every=10,
        batch_size=2000,
        negatives=2,
        device="cpu",
    )
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    run = dans.train(config, out=tmp_path / "run", progress=False)
    # 4 epochs (pretraining counts): warm-up 1/2, then 1, 2/3, 1/3 of the rate; 3 steps each.
    rates = [0.005, 0.01, 0.01 * 2 / 3, 0.01 / 3]
    assert seen == pytest.approx([rate for rate in rates for _ in range(3)])
    logged = (tmp_path / "run" / "log.csv").read_text().splitlines()
    column = logged[0].split(",").index("lr")
    assert [float(row.split(",")[column]) for row in logged[1:]] == pytest.approx(rates)
    assert run.metrics.epochs == 4
