"""dans's samplers inside PyKEEN: each sampler that picks real entities as a PyKEEN
``NegativeSampler``, by class or, once this module is imported, by name::

    import dans.pykeen
    from pykeen.pipeline import pipeline

    pipeline(
        dataset="Nations",
        model="DistMult",
        negative_sampler="nscaching",
        training_kwargs=dict(callbacks=dans.pykeen.SamplerCallback()),
    )

PyKEEN makes a negative sampler from the training triples alone. The samplers that score with
the model (MCNS, NSCaching, KBGAN, DANS) get it through :class:`SamplerCallback`, a PyKEEN
training callback; as in dans, a learned sampler updates once per batch, just before it samples
the batch's negatives. The callback saves the sampler's state beside PyKEEN's checkpoint after
every epoch and restores it when PyKEEN resumes from that checkpoint.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, ClassVar

import torch
from pykeen.models import ERModel
from pykeen.nn.modules import (
    DistMultInteraction,
    Interaction,
    TransEInteraction,
)
from pykeen.sampling import NegativeSampler as PyKEENNegativeSampler
from pykeen.sampling import negative_sampler_resolver
from pykeen.training.callbacks import TrainingCallback
from torch import Tensor

from dans.builders import build_sampler
from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import ConfigError, DansError
from dans.files import write_atomic
from dans.models.decoders import Decoder
from dans.samplers.base import NegativeSampler, StepContext, corrupt
from dans.sealed import seal, unseal

# The samplers that need the model's scores, and those that also need its algebra (the
# composition h * r and the inverse relation): the latter only with an interaction listed in
# ALGEBRA.
SCORING = ("mcns", "nscaching", "kbgan", "dans")
NEEDS_ALGEBRA = ("mcns", "dans")


class InteractionDecoder(Decoder):
    """A PyKEEN model's interaction as a dans decoder, for samplers to score with: ``score`` is
    the interaction's; ``compose`` and ``inverse`` exist for DistMult (``h * r``, ``r``) and
    TransE (``h + r``, ``-r``), whose representations are real vectors."""

    name = ""  # not a decoder to train with: never registered

    def __init__(self, interaction: Interaction) -> None:
        # Not Decoder.__init__: the model's own relations are used, none of the decoder's.
        torch.nn.Module.__init__(self)
        self.interaction = interaction

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        heads, relations, tails = torch.broadcast_tensors(heads, relations, tails)
        return self.interaction(heads, relations, tails)

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        if isinstance(self.interaction, TransEInteraction):
            return anchors + relations
        return anchors * relations

    def inverse(self, relations: Tensor) -> Tensor:
        return -relations if isinstance(self.interaction, TransEInteraction) else relations


# Interactions whose algebra InteractionDecoder knows.
ALGEBRA = (DistMultInteraction, TransEInteraction)


class DansNegativeSampler(PyKEENNegativeSampler):
    """A dans sampler (``dans_name``) behind PyKEEN's interface. Its options are those of
    ``dans train`` for that sampler, as keyword arguments (``negative_sampler_kwargs=
    dict(nscaching_cache_size=50)``); ``seed`` seeds its draws."""

    dans_name: ClassVar[str] = ""
    # dans's settings the sampler is built with besides the caller's (DANS: snap mode).
    fixed: ClassVar[dict[str, Any]] = {}

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
        try:
            config = TrainConfig(
                sampler=self.dans_name, negatives=self.num_negs_per_pos, **options, **self.fixed
            )
        except TypeError as exc:  # an option of no sampler's
            raise ConfigError(f"negative sampler {self.dans_name}: {exc}") from None
        self.config = config
        self.graph = training_graph(mapped_triples, self.num_entities, self.num_relations)
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
        makes the sampler and joins the training loop's :class:`SamplerCallback`, if any."""
        callback = training_callback(self.num_entities)
        model = callback.model if callback is not None else None
        if model is None:
            if self.dans_name in SCORING:
                raise DansError(
                    f"negative sampler {self.dans_name} scores with the model: add "
                    "dans.pykeen.SamplerCallback() to the training callbacks"
                )
            entities = relations = torch.zeros(self.num_entities, 0)
            decoder: Decoder = _NO_DECODER
        else:
            # The sampler learns from the model, never the model from it.
            entities, relations = representations(model, self.dans_name)
            decoder = InteractionDecoder(model.interaction)
        if self.sampler is None:
            dim = entities.shape[1] or self.config.model.dim
            # Initialised from the sampler's own seed, leaving torch's global stream as it was:
            # PyKEEN's shuffling and dropout draw from it, and a sampler made again when
            # training resumes must not shift them.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                sampler = build_sampler(self.dans_name, self.config.replace(dim=dim), self.graph)
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


def representations(model: ERModel, sampler: str) -> tuple[Tensor, Tensor]:
    """All entities' and relations' representations of a PyKEEN model with one of each, shapes
    (E, d), (R, d_r), cut from its graph; refused where the sampler needs an algebra the
    interaction lacks."""
    if len(model.entity_representations) != 1 or len(model.relation_representations) != 1:
        raise DansError(
            f"negative sampler {sampler}: needs a model with one entity and one relation "
            f"representation, {type(model).__name__} has others"
        )
    if sampler in NEEDS_ALGEBRA and not isinstance(model.interaction, ALGEBRA):
        raise DansError(
            f"negative sampler {sampler}: needs the algebra of DistMult or TransE, not "
            f"{type(model.interaction).__name__}"
        )
    with torch.no_grad():
        entities = model.entity_representations[0](indices=None)
        relations = model.relation_representations[0](indices=None)
    # Detached too: an embedding returns its very parameter, which no_grad leaves attached.
    return entities.detach(), relations.detach()


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


class _NoDecoder(Decoder):
    """The decoder of a step without a model: sampling that needs none never calls it."""

    name = ""

    def __init__(self) -> None:
        torch.nn.Module.__init__(self)


_NO_DECODER = _NoDecoder()


class PopularityNegativeSampler(DansNegativeSampler):
    """dans's popularity sampler: entities drawn by their frequency in training."""

    dans_name = "popularity"


class MCNSNegativeSampler(DansNegativeSampler):
    """dans's MCNS: Metropolis-Hastings walks near the anchor, by the model's scores."""

    dans_name = "mcns"


class NSCachingNegativeSampler(DansNegativeSampler):
    """dans's NSCaching: a cache of high-scoring negatives per (head, relation) and (relation,
    tail), refreshed by the model's scores."""

    dans_name = "nscaching"


class KBGANNegativeSampler(DansNegativeSampler):
    """dans's KBGAN: a generator that learns, by REINFORCE on the model's scores, to pick hard
    negatives."""

    dans_name = "kbgan"


class SANSNegativeSampler(DansNegativeSampler):
    """dans's SANS: negatives drawn from the anchor's k-hop neighbourhood."""

    dans_name = "sans"


class DANSNegativeSampler(DansNegativeSampler):
    """dans's DANS in snap mode: each generated vector replaced by its nearest entity, so that
    PyKEEN gets real entity ids."""

    dans_name = "dans"
    fixed: ClassVar[dict[str, Any]] = {"dans_mode": "snap"}


BRIDGED = (
    PopularityNegativeSampler,
    MCNSNegativeSampler,
    NSCachingNegativeSampler,
    KBGANNegativeSampler,
    SANSNegativeSampler,
    DANSNegativeSampler,
)
for _cls in BRIDGED:
    if _cls.get_normalized_name() not in negative_sampler_resolver.lookup_dict:
        negative_sampler_resolver.register(_cls)

# The sealed kind of the sampler's state kept beside PyKEEN's checkpoint.
SAMPLER_STATE_KIND = "dans-pykeen-sampler"
# The SamplerCallback of the training loop under way, which bridged samplers join.
_TRAINING: dict[str, weakref.ref[SamplerCallback]] = {}


def training_callback(num_entities: int) -> SamplerCallback | None:
    """The SamplerCallback of the training loop under way, if its model has ``num_entities``.
    Held weakly: a loop that failed, and so never ended its callback, leaves none behind once
    it is gone."""
    held = _TRAINING.get("callback")
    callback = held() if held is not None else None
    if callback is None or callback.model.num_entities != num_entities:
        return None
    return callback


class SamplerCallback(TrainingCallback):
    """Gives the bridged sampler of a PyKEEN training loop its model, and keeps its state with
    the loop's checkpoints: given ``checkpoint``, PyKEEN's checkpoint file (the one of
    ``training_kwargs=dict(checkpoint_name=...)``), it writes the sampler's state beside it as
    ``<checkpoint>.dans-sampler.pt`` after every epoch and reads it back when PyKEEN resumes from
    that checkpoint. A state of another epoch than PyKEEN's checkpoint is refused, so have PyKEEN
    save every epoch (``checkpoint_frequency=0``)."""

    def __init__(self, checkpoint: str | Path | None = None) -> None:
        super().__init__()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.joined: set[int] = set()
        # The sampler that sampled last: PyKEEN may make one for a trial batch before the one
        # that trains, and the one that trains samples last in every epoch.
        self.active: DansNegativeSampler | None = None
        self._saved: dict[str, Any] | None = None

    @property
    def state_path(self) -> Path | None:
        if self.checkpoint is None:
            return None
        return self.checkpoint.with_name(self.checkpoint.name + ".dans-sampler.pt")

    def register_training_loop(self, training_loop: Any) -> None:
        """Called by PyKEEN as training starts (after a checkpoint was loaded, if any): the
        samplers made from here on join this loop, and take back the saved state."""
        super().register_training_loop(training_loop)
        _TRAINING["callback"] = weakref.ref(self)
        self.joined, self.active, self._saved = set(), None, None
        path, epoch = self.state_path, training_loop._epoch
        if path is not None and path.exists() and epoch > 0:
            saved = unseal(path, SAMPLER_STATE_KIND)
            if saved["epoch"] != epoch:
                raise DansError(
                    f"{path}: the sampler's state of epoch {saved['epoch']}, but PyKEEN resumes "
                    f"from epoch {epoch}; save PyKEEN's checkpoints every epoch "
                    "(checkpoint_frequency=0)"
                )
            self._saved = saved["sampler"]

    def sampling(self, sampler: DansNegativeSampler) -> None:
        """Called by a sampler before each batch: at its first, it takes the saved state."""
        if id(sampler) not in self.joined:
            self.joined.add(id(sampler))
            if self._saved is not None:
                sampler.load_training_state(self._saved)
        self.active = sampler

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
        path = self.state_path
        if path is None or self.active is None:
            return
        state = {"epoch": epoch, "sampler": self.active.training_state()}
        write_atomic(path, seal(state, SAMPLER_STATE_KIND))

    def post_train(self, losses: list[float], **kwargs: Any) -> None:
        held = _TRAINING.get("callback")
        if held is not None and held() is self:
            del _TRAINING["callback"]
