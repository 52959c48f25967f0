"""Every registered sampler trains with every decoder and both encoders, through the builders."""

import math

import pytest
import torch

import dans
from dans.builders import build_model, build_sampler
from dans.experiments import paper
from dans.models import DECODERS
from dans.samplers import SAMPLERS
from dans.samplers.base import sampler_variants
from dans.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

# The samplers of the paper's tables, as `dans compare` trains them by default; a variant is its
# sampler with some options fixed, so it is not trained again here.
PAPER_SAMPLERS = [name for name in paper.SAMPLERS if name not in sampler_variants()]


def test_the_paper_samplers_are_registered():
    assert set(PAPER_SAMPLERS) <= set(SAMPLERS.names())
    assert {"uniform", "nscaching", "cake", "smile", "dans"} <= set(PAPER_SAMPLERS)


@pytest.mark.parametrize("encoder", ["lookup", "rgcn"])
@pytest.mark.parametrize("decoder", sorted(DECODERS.names()))
@pytest.mark.parametrize("sampler", PAPER_SAMPLERS)
def test_one_training_step_with_every_combination(umls, sampler, decoder, encoder):
    config = dans.TrainConfig(
        encoder=encoder,
        decoder=decoder,
        sampler=sampler,
        dim=8,
        negatives=4,
        batch_size=128,
        device="cpu",
    ).validate()
    torch.manual_seed(0)
    model = build_model(config, umls)
    negative_sampler = build_sampler(sampler, config, umls)
    trainer = Trainer(model, umls, config, negative_sampler, negative_sampler, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    logs = trainer.step(umls.train[:128], negative_sampler)
    assert math.isfinite(logs["loss"])
    assert trainer.skipped_steps == 0
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)]
    assert any(changed)


def test_each_sampler_sees_only_its_own_prefixed_settings(umls):
    config = dans.TrainConfig(
        encoder="lookup", dim=8, dans_mode="snap", sans_mode="rw", device="cpu"
    ).validate()
    assert build_sampler("dans", config, umls).mode == "snap"
    assert build_sampler("sans", config, umls).mode == "rw"
