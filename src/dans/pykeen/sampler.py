"""dans's samplers behind PyKEEN's ``NegativeSampler`` interface: one class for all, made
concrete for each sampler whose negatives can be entity ids without weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pykeen.sampling import NegativeSampler as PyKEENNegativeSampler
from torch import Tensor

from dans.builders import build_sampler
from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import ConfigError, DansError
from dans.models.decoders import Decoder
from dans.pykeen.decoder import NO_DECODER, InteractionDecoder, representations
from dans.samplers.base import SAMPLERS, NegativeSampler, StepContext, corrupt

if TYPE_CHECKING:
    from dans.pykeen.callback import SamplerCallback


class DansNegativeSampler(PyKEENNegativeSampler):
    """A dans sampler (``sampler_type``) behind PyKEEN's interface. Its options are those of
    ``dans train`` for that sampler, as keyword arguments (``negative_sampler_kwargs=
    dict(nscaching_cache_size=50)``); ``seed`` seeds its draws. ``sampler_callback`` is the
    :class:`~dans.pykeen.SamplerCallback` of the training loop, which hands it the model (the
    callback passes itself)."""

    sampler_type: ClassVar[type[NegativeSampler]]

    def __init__(
        self,
        *,
        mapped_triples: Tensor,
        num_entities: int | None = None,
        num_relations: int | None = None,
        num_negs_per_pos: int | None = None,
        filtered: bool = False,
        filterer: Any = None,
        filterer_kwargs: dict[str, Any] | None = None,
        seed: int = 0,
        sampler_callback: SamplerCallback | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            mapped_triples=mapped_triples,
            num_entities=num_entities,
            num_relations=num_relations,
            num_negs_per_pos=num_negs_per_pos,
            filtered=filtered,
            filterer=filterer,
            filterer_kwargs=filterer_kwargs,
        )
        name, fixed = self.sampler_type.name, self.sampler_type.ids_only_settings or {}
        try:
            config = TrainConfig(sampler=name, negatives=self.num_negs_per_pos, **options, **fixed)
        except TypeError as exc:  # an option of no sampler's
            raise ConfigError(f"negative sampler {name}: {exc}") from None
        self.config = config
        self.graph = training_graph(mapped_triples, self.num_entities, self.num_relations)
        self.sampler_callback = sampler_callback
        # Made at the first batch, in the dimension of the model's entity representations and
        # on its device, with the generator of its draws.
        self.sampler: NegativeSampler | None = None
        self.generator: torch.Generator | None = None
        self.seed = seed

    def corrupt_batch(self, positive_batch: Tensor) -> Tensor:
        """shape: (B, 3) -> (B, K, 3): the sampler's update on this batch, then its draws."""
        step = self.step(positive_batch)
        assert self.sampler is not None  # made by step()
        self.sampler.update(step)  # trains the sampler's own networks, if any
        with torch.no_grad():
            negatives = self.sampler.sample(step)
        assert negatives.ids is not None  # every bridged sampler picks real entities
        ids = negatives.ids.to(positive_batch.device)
        return corrupt(positive_batch, negatives.head_replaced.to(ids.device), ids)

    def step(self, positives: Tensor) -> StepContext:
        """What the sampler sees of a batch: the model's current representations and its
        interaction (or, for a sampler that needs no model, nothing of one). The first call
        makes the sampler; every call tells the training loop's callback, if any."""
        callback = self.sampler_callback
        if callback is None:
            if self.sampler_type.scores_with_model:
                raise DansError(
                    f"negative sampler {self.sampler_type.name} scores with the model: add "
                    "dans.pykeen.SamplerCallback() to the training callbacks"
                )
            entities = relations = torch.zeros(self.num_entities, 0)
            decoder: Decoder = NO_DECODER
        else:
            # The sampler learns from the model, never the model from it.
            entities, relations = representations(callback.model, self.sampler_type)
            decoder = InteractionDecoder(callback.model.interaction)
        if self.sampler is None:
            dim = entities.shape[1] or self.config.model.dim
            # Initialised from the sampler's own seed, leaving torch's global stream as it was:
            # PyKEEN's shuffling and dropout draw from it, and a sampler made again when
            # training resumes must not shift them.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                sampler = build_sampler(
                    self.sampler_type.name, self.config.replace(dim=dim), self.graph
                )
            self.sampler = sampler.to(entities.device)
            self.generator = torch.Generator(entities.device).manual_seed(self.seed)
        if callback is not None:
            callback.sampling(self)
        positives = positives.to(entities.device)
        assert self.generator is not None  # made with the sampler
        return StepContext(positives, entities, relations, decoder, self.generator)

    def training_state(self) -> dict[str, Any]:
        """The sampler's state and its generator's, for a checkpoint."""
        assert self.sampler is not None and self.generator is not None  # once it has sampled
        return {"sampler": self.sampler.training_state(), "generator": self.generator.get_state()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        assert self.sampler is not None and self.generator is not None  # made before it joins
        self.sampler.load_training_state(state["sampler"])
        self.generator.set_state(state["generator"])


def training_graph(triples: Tensor, num_entities: int, num_relations: int) -> KnowledgeGraph:
    """The training triples as a graph with no validation or test split: all a sampler may
    know. Entities and relations are named by their ids."""
    empty = torch.zeros(0, 3, dtype=torch.long)
    return KnowledgeGraph(
        entity_names=[str(i) for i in range(num_entities)],
        relation_names=[str(i) for i in range(num_relations)],
        train=triples.long().cpu(),
        valid=empty,
        test=empty,
        name="pykeen-training",
    )


def bridge(sampler: type[NegativeSampler]) -> type[DansNegativeSampler]:
    """``sampler`` as a PyKEEN negative sampler: ``MCNSSampler`` becomes
    ``MCNSNegativeSampler``, which PyKEEN's resolver knows as ``mcns``."""
    name = sampler.__name__.removesuffix("Sampler") + "NegativeSampler"
    settings = ", ".join(
        f"{key} {value}" for key, value in (sampler.ids_only_settings or {}).items()
    )
    doc = f"dans's ``{sampler.name}`` sampler{f' ({settings})' if settings else ''} in PyKEEN."
    return type(name, (DansNegativeSampler,), {"sampler_type": sampler, "__doc__": doc})


def bridged_samplers() -> dict[str, type[DansNegativeSampler]]:
    """Every registered sampler whose negatives can be entity ids without weights
    (:attr:`~dans.samplers.base.NegativeSampler.ids_only_settings`), bridged, by name."""
    return {
        name: bridge(SAMPLERS.get(name))
        for name in SAMPLERS.names()
        if SAMPLERS.get(name).ids_only_settings is not None
    }
