"""dans's samplers inside PyKEEN: trained by PyKEEN's pipeline, drawing what the dans sampler
draws, and resumed from PyKEEN's checkpoints exactly."""

from pathlib import Path

import pytest
import torch
from pykeen.datasets import Nations
from pykeen.models import DistMult
from pykeen.pipeline import pipeline
from pykeen.sampling import negative_sampler_resolver

import dans
from dans import pykeen as bridge
from dans.builders import build_sampler
from dans.errors import DansError
from dans.samplers.base import StepContext, corrupt

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # PyKEEN's own, on every pipeline run on a CPU.
    pytest.mark.filterwarnings("ignore:Training instances are always shuffled"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true"),
]

NAMES = ("popularity", "mcns", "nscaching", "kbgan", "sans", "dans")
QUIET = {"use_tqdm": False}


def _pipeline(sampler, epochs=2, callbacks=None, model="DistMult", **training):
    """PyKEEN's pipeline on Nations; with a fresh SamplerCallback unless ``callbacks`` says
    otherwise (``[]``: none)."""
    return pipeline(
        dataset="Nations",
        model=model,
        model_kwargs={"embedding_dim": 8},
        negative_sampler=sampler,
        negative_sampler_kwargs={"num_negs_per_pos": 4},
        training_kwargs={
            "num_epochs": epochs,
            "callbacks": [bridge.SamplerCallback()] if callbacks is None else callbacks,
            **QUIET,
            **training,
        },
        evaluation_kwargs=QUIET,
        random_seed=1,
        device="cpu",
    )


@pytest.mark.parametrize("name", NAMES)
def test_pykeens_pipeline_trains_and_evaluates_with_each_sampler_by_name(name):
    result = _pipeline(name)
    assert 0.0 < result.metric_results.get_metric("mrr") <= 1.0
    assert len(result.losses) == 2


def test_the_bridged_samplers_are_those_whose_negatives_can_be_ids_alone():
    assert sorted(bridge.BRIDGED) == sorted(NAMES)
    assert bridge.NSCachingNegativeSampler.get_normalized_name() == "nscaching"
    assert bridge.DANSNegativeSampler.sampler_type.ids_only_settings == {"dans_mode": "snap"}
    # Self-adversarial weighting needs loss weights, which PyKEEN's samplers cannot carry.
    assert "self-adv" not in bridge.BRIDGED


def test_a_sampler_passed_by_class_is_the_same_as_by_name():
    by_class = _pipeline(bridge.NSCachingNegativeSampler).metric_results.get_metric("mrr")
    assert by_class == _pipeline("nscaching").metric_results.get_metric("mrr")


class _Loop:
    """What a SamplerCallback reads of PyKEEN's training loop."""

    def __init__(self, model):
        self.model, self._epoch = model, 0


@pytest.mark.parametrize("name", NAMES)
def test_a_bridged_sampler_draws_what_the_dans_sampler_draws_from_the_same_state(name):
    dataset = Nations()
    torch.manual_seed(0)
    model = DistMult(triples_factory=dataset.training, embedding_dim=8, random_seed=0)
    callback = bridge.SamplerCallback()
    callback.register_training_loop(_Loop(model))
    triples = dataset.training.mapped_triples
    bridged = negative_sampler_resolver.make(
        name, mapped_triples=triples, num_negs_per_pos=4, seed=3, sampler_callback=callback
    )
    # The dans sampler, made from the same seed, fed the same model's representations.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        fixed = type(bridged).sampler_type.ids_only_settings
        config = dans.TrainConfig(sampler=name, negatives=4, dim=8, **fixed)
        graph = bridge.training_graph(triples, dataset.num_entities, dataset.num_relations)
        reference = build_sampler(name, config, graph)
    generator = torch.Generator().manual_seed(3)
    entities, relations = bridge.representations(model, type(bridged).sampler_type)
    decoder = bridge.InteractionDecoder(model.interaction)
    for batch in (triples[:64], triples[64:128]):  # the second after a learned update
        drawn = bridged.corrupt_batch(batch)
        step = StepContext(batch, entities, relations, decoder, generator)
        reference.update(step)
        expected = reference.sample(step)
        assert torch.equal(drawn, corrupt(batch, expected.head_replaced, expected.ids))
        assert drawn.shape == (len(batch), 4, 3)
    callback.post_train(losses=[])


@pytest.mark.parametrize("name", ["nscaching", "dans"])
def test_training_resumed_from_pykeens_checkpoint_equals_training_never_stopped(tmp_path, name):
    def run(epochs, checkpoint):
        return _pipeline(
            name,
            epochs=epochs,
            callbacks=[bridge.SamplerCallback(tmp_path / checkpoint)],
            checkpoint_name=checkpoint,
            checkpoint_directory=tmp_path,
            checkpoint_frequency=0,
        )

    whole = run(4, "whole.pt")
    run(2, "stopped.pt")
    assert (tmp_path / "stopped.pt.dans-sampler.pt").exists()
    resumed = run(4, "stopped.pt")
    assert torch.equal(
        whole.model.entity_representations[0](indices=None),
        resumed.model.entity_representations[0](indices=None),
    )
    assert whole.losses == resumed.losses


def test_a_sampler_that_scores_needs_the_callback_and_an_interaction_it_knows():
    with pytest.raises(DansError, match=r"add dans.pykeen.SamplerCallback\(\)"):
        _pipeline("nscaching", epochs=1, callbacks=[])
    with pytest.raises(DansError, match="needs the algebra of DistMult or TransE, not ComplEx"):
        _pipeline("dans", model="ComplEx")
    # One that needs no model trains without the callback.
    assert len(_pipeline("popularity", epochs=1, callbacks=[]).losses) == 1


class _Planted:
    """A pickle that runs code when loaded without ``weights_only``: it makes a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_planted_sampler_state_is_refused_without_running_its_code(tmp_path):
    touched = tmp_path / "code-ran"
    torch.save({"epoch": 1, "sampler": _Planted(touched)}, tmp_path / "ckpt.pt.dans-sampler.pt")
    callback = bridge.SamplerCallback(tmp_path / "ckpt.pt")
    loop = _Loop(DistMult(triples_factory=Nations().training, embedding_dim=8, random_seed=0))
    loop._epoch = 1
    with pytest.raises(DansError, match=r"ckpt\.pt\.dans-sampler\.pt: not a dans-pykeen-sampler"):
        callback.register_training_loop(loop)
    assert not touched.exists()
