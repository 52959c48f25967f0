"""The negative-sampler interface and the template shared by samplers that pick real entities."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor, nn

from dans.data.graph import KnownTriples
from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.models.decoders import BilinearDecoder, Decoder
from dans.models.gather import gather_rows
from dans.models.model import score_corrupted, score_corrupted_ids, score_corrupted_shared
from dans.optim import is_row_sparse
from dans.options import Options
from dans.registry import Registry

SAMPLERS: Registry[NegativeSampler] = Registry("sampler")

# Rounds of redrawing known-true negatives before the rest are dropped by a zero weight.
_FILTER_ROUNDS = 3

# Real negatives are scored against the whole entity table when it has at most this many
# entities per negative of a positive: one product of the B x 2 queries with the table then costs
# less than gathering B x K candidate vectors and their gradient. Forward and backward, 1,000
# positives, 20 negatives, width 100, DistMult, on two CPU threads: 135 entities 1.5 ms against
# 4.9 ms gathered, 300 entities 2.8 against 3.2, 600 entities 5.1 against 3.3.
ALL_ENTITIES_PER_NEGATIVE = 10


@dataclass(frozen=True)
class StepContext:
    """What a sampler sees of one training step, handed to it on every call.

    ``positives``: shape (B, 3), the step's positive triples; ``entities``, shape (E, d), and
    ``relations``, shape (R, d_r): the base model's current representations (attached to its
    graph in :meth:`NegativeSampler.sample`, so the picked entities' embeddings carry gradient;
    detached in :meth:`NegativeSampler.update`); ``decoder``: the base model's decoder, to
    score with, never to train; ``generator``: the step's random-number generator.
    """

    positives: LongTensor
    entities: Tensor
    relations: Tensor
    decoder: Decoder
    generator: torch.Generator

    def detached(self) -> StepContext:
        """The same step with the representations cut from the base model's graph."""
        return dataclasses.replace(
            self, entities=self.entities.detach(), relations=self.relations.detach()
        )


class Negatives:
    """K corrupted triples for each of B positives.

    ``embeddings``: shape (B, K, d), the replacing entity. ``head_replaced``: shape (B, K), True
    where the head was replaced and False where the tail was (never both). ``ids``: shape (B, K)
    when the negatives are real entities. ``weights``: shape (B, K), each negative's weight in the
    loss, averaging 1 over a positive's negatives; zero drops a negative. None means all ones.
    ``groups``: named column ranges (such as the negatives of one generator pathway) whose mean
    scores the trainer logs. ``table``: shape (E, d), the entity table whose rows ``ids`` the
    negatives are, when they are (see :meth:`of_rows`). ``shared_by``: how many consecutive
    rows of ``ids`` are one draw (the last group may be shorter), so that each group's entities
    are gathered and scored once.
    """

    def __init__(
        self,
        embeddings: Tensor | None,
        head_replaced: BoolTensor,
        ids: LongTensor | None = None,
        weights: Tensor | None = None,
        groups: dict[str, slice] | None = None,
        table: Tensor | None = None,
        shared_by: int = 1,
    ) -> None:
        if embeddings is None and (table is None or ids is None):
            raise ValueError("negatives need their embeddings, or a table and the ids of its rows")
        self._embeddings = embeddings
        self.head_replaced = head_replaced
        self.ids = ids
        self.weights = weights
        self.groups = groups or {}
        self.table = table
        self.shared_by = shared_by

    @classmethod
    def of_rows(
        cls, table: Tensor, head_replaced: BoolTensor, ids: LongTensor, shared_by: int = 1
    ) -> Negatives:
        """The entities ``ids`` (shape (B, K)) of ``table`` (shape (E, d)) as negatives, each
        ``shared_by`` consecutive rows of ``ids`` the same."""
        return cls(None, head_replaced, ids, table=table, shared_by=shared_by)

    @property
    def embeddings(self) -> Tensor:
        """shape (B, K, d). Negatives made by :meth:`of_rows` gather them at their first use: a
        step that scores them against the whole table never does."""
        if self._embeddings is None:
            assert self.table is not None and self.ids is not None
            # Kept for later reads, so gathered with the table's gradient even when the first
            # read is under no_grad (self-adversarial weighting reads them so).
            with torch.enable_grad():
                self._embeddings = gather_rows(self.table, self.ids)
        return self._embeddings

    def scores(
        self, decoder: Decoder, entities: Tensor, relations: Tensor, positives: LongTensor
    ) -> Tensor:
        """Logits of the corrupted triples of ``positives`` (shape (B, 3)), shape (B, K).

        Negatives that are rows of ``entities`` itself, scored by a bilinear decoder, are scored
        against the whole table when it has at most ``ALL_ENTITIES_PER_NEGATIVE`` x K rows and
        is not row-sparse (whose gradient must hold only the rows a step touches); negatives
        drawn once for each ``shared_by`` positives are gathered once per group and scored in
        one product per group.
        """
        if (
            self.table is entities
            and self.ids is not None
            and isinstance(decoder, BilinearDecoder)
            and len(entities) <= ALL_ENTITIES_PER_NEGATIVE * self.ids.shape[1]
            and not is_row_sparse(entities)
        ):
            return score_corrupted_ids(
                decoder, entities, relations, positives, self.head_replaced, self.ids
            )
        if self.shared_by > 1 and self.ids is not None and isinstance(decoder, BilinearDecoder):
            assert self.table is not None
            drawn = gather_rows(self.table, self.ids[:: self.shared_by])
            return score_corrupted_shared(
                decoder, entities, relations, positives, self.head_replaced, drawn, self.shared_by
            )
        return score_corrupted(
            decoder, entities, relations, positives, self.head_replaced, self.embeddings
        )

    def triples(self, positives: LongTensor) -> LongTensor:
        """The corrupted id triples, shape (B, K, 3); needs ``ids``."""
        if self.ids is None:
            raise ValueError("these negatives are not real entities and have no ids")
        return corrupt(positives, self.head_replaced, self.ids)


def sampler_variants() -> dict[str, dict[str, Any]]:
    """Every registered sampler variant by name, as the config keys it stands for: its base
    sampler's name under ``sampler``, then the options it fixes under their keys."""
    found: dict[str, dict[str, Any]] = {}
    for name in SAMPLERS.names():
        cls = SAMPLERS.get(name)
        prefix = cls.options_type.prefix if cls.options_type is not None else ""
        for variant, options in cls.__dict__.get("variants", {}).items():
            found[variant] = {"sampler": name, **{prefix + key: v for key, v in options.items()}}
    return found


def sampler_names() -> list[str]:
    """Every name a sampler setting takes: the registered samplers and their variants, sorted."""
    return sorted([*SAMPLERS.names(), *sampler_variants()])


def average_one(weights: Tensor) -> Tensor:
    """Scale each row of ``weights`` (B, K) to average 1; rows of zeros stay zero."""
    total = weights.sum(1, keepdim=True)
    return torch.where(total > 0, weights * weights.shape[1] / total.clamp_min(1e-12), weights)


def join_weights(*parts: tuple[Tensor | None, BoolTensor]) -> Tensor | None:
    """Loss weights of parts of rows of negatives laid side by side: each part's weights, shape
    (B, K_i), or None for ones in the shape of its ``head_replaced``; renormalised to average 1
    over the whole row, shape (B, sum K_i). None when every part is None."""
    if all(weights is None for weights, _ in parts):
        return None
    return average_one(
        torch.cat(
            [torch.ones(like.shape, device=like.device) if w is None else w for w, like in parts],
            1,
        )
    )


def corrupt(positives: LongTensor, head_replaced: BoolTensor, ids: LongTensor) -> LongTensor:
    """Positives (B, 3) with the head or tail replaced by ``ids`` (B, K) -> shape (B, K, 3)."""
    corrupted = positives[:, None, :].expand(-1, ids.shape[1], -1).clone()
    corrupted[..., 0] = torch.where(head_replaced, ids, corrupted[..., 0])
    corrupted[..., 2] = torch.where(head_replaced, corrupted[..., 2], ids)
    return corrupted


class NegativeSampler(nn.Module):
    """Produces negatives for a batch of positives from the current embeddings.

    Subclasses that pick real entities implement :meth:`draw` (which entities) and optionally
    :meth:`weigh` (how much each counts); the base class chooses the replaced side, filters
    known-true triples when asked, and gathers embeddings. Learned samplers also override
    :meth:`update`, called once per mini-batch before :meth:`sample`, and count the updates they
    skipped for a non-finite loss in :attr:`skipped_steps`. What they learn lives in parameters
    and buffers, and in optimizers held as attributes: :meth:`training_state` finds them all.
    Every call gets the step's :class:`StepContext`; a sampler keeps nothing of it between
    calls.
    """

    name: ClassVar[str] = ""
    # The sampler's own settings, declared once: its config keys, flags, defaults and ranges.
    options_type: ClassVar[type[Options] | None] = None
    # Named variants, {variant name: {option field: value}}: a variant's name stands for this
    # sampler with those options fixed, wherever a sampler's name is taken (see
    # :func:`sampler_variants`). Only the class that declares them owns them.
    variants: ClassVar[dict[str, dict[str, Any]]] = {}
    # False for a sampler that draws no negatives but trains the model with a loss of its own
    # over the step (:meth:`loss`), such as scoring every entity.
    draws_negatives: ClassVar[bool] = True
    # True for a sampler whose step reaches every entity's embedding (row-sparse updates of the
    # entity table cannot serve it).
    touches_every_entity: ClassVar[bool] = False
    # True for a sampler that scores candidates with the model being trained, and for one that
    # also needs its decoder's algebra (compose, inverse): what a framework that hosts the
    # sampler must hand it.
    scores_with_model: ClassVar[bool] = False
    needs_algebra: ClassVar[bool] = False
    # The settings with which the sampler's negatives are entity ids without loss weights, all
    # that frameworks which take only ids (PyKEEN) can use; None where no settings make them so.
    ids_only_settings: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        SAMPLERS.register(cls)
        taken = set(cls.__dict__.get("variants", {})) & set(SAMPLERS.names())
        if taken:
            raise ValueError(f"sampler variant {sorted(taken)[0]!r} is a sampler's name")

    @classmethod
    def from_context(cls, context: BuildContext, options: Options | None) -> NegativeSampler:
        """The sampler for ``context``'s graph, with ``options`` (of :attr:`options_type`), for a
        constructor that takes this class's arguments and then, if it has options, ``options``; a
        subclass whose constructor takes others overrides this."""
        shared = (
            context.num_entities,
            context.num_negatives,
            context.known_triples,
            context.filter_negatives,
        )
        return cls(*shared, options)

    def __init__(
        self,
        num_entities: int,
        num_negatives: int,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        options: Options | None = None,
    ) -> None:
        """``options``: the sampler's own settings, of :attr:`options_type` (its defaults when
        None)."""
        super().__init__()
        if num_negatives < 1:
            raise ConfigError(f"--negatives must be at least 1, got {num_negatives}")
        if filter_negatives and known_triples is None:
            raise ConfigError("filtering negatives needs the known-true triples")
        self.num_entities = num_entities
        self.num_negatives = num_negatives
        self.known_triples = known_triples
        self.filter_negatives = filter_negatives
        if options is None and self.options_type is not None:
            options = self.options_type()
        self.options = options
        self.skipped_steps: dict[str, int] = {}

    def training_state(self) -> dict[str, Any]:
        """What a resumed run needs: the state dict, every optimizer's state, the skip counts."""
        return {
            "module": self.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self._optimizers().items()},
            "skipped_steps": dict(self.skipped_steps),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state`; raises ``KeyError`` or ``RuntimeError`` when it is
        another sampler's."""
        self.load_state_dict(state["module"])
        optimizers = self._optimizers()
        if optimizers.keys() != state["optimizers"].keys():
            raise KeyError(
                f"optimizers {sorted(state['optimizers'])}, expected {sorted(optimizers)}"
            )
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        if self.skipped_steps.keys() != state["skipped_steps"].keys():
            raise KeyError(f"skip counts {sorted(state['skipped_steps'])}")
        self.skipped_steps.update(state["skipped_steps"])

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            name: value
            for name, value in vars(self).items()
            if isinstance(value, torch.optim.Optimizer)
        }

    def sample(self, step: StepContext) -> Negatives:
        """Negatives for the step's positives, shape (B, K, d)."""
        head_replaced, ids, keep = self.pick(step)
        negatives = Negatives.of_rows(
            step.entities, head_replaced, ids, shared_by=self.negatives_shared_by
        )
        weights = self.weigh(step, negatives)
        if keep is not None:
            # Renormalised so each positive's kept negatives still average weight 1.
            weights = average_one(keep.float() if weights is None else weights * keep)
        negatives.weights = weights
        return negatives

    @property
    def negatives_shared_by(self) -> int:
        """How many consecutive positives share each draw of negatives (see
        :attr:`Negatives.shared_by`)."""
        return 1

    def pick(self, step: StepContext) -> tuple[BoolTensor, LongTensor, BoolTensor | None]:
        """The negatives :meth:`sample` makes, as ids: whether each replaces the head, shape
        (B, K); the replacing entities, shape (B, K); and, when filtering, which of them form no
        known-true triple, shape (B, K) (None when not filtering)."""
        generator = step.generator
        shape = (len(step.positives), self.num_negatives)
        head_replaced = torch.rand(shape, generator=generator, device=generator.device) < 0.5
        ids = self.draw(step, head_replaced)
        keep = None
        if self.filter_negatives:
            ids, keep = self._redraw_known_true(step, head_replaced, ids)
        return head_replaced.to(step.entities.device), ids, keep

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Entity ids for the replaced slots (``head_replaced``: shape (B, K)), shape (B, K)."""
        raise NotImplementedError

    def weigh(self, step: StepContext, negatives: Negatives) -> Tensor | None:
        """Loss weights for the negatives, shape (B, K), or None for equal weights."""
        return None

    def loss(self, step: StepContext) -> Tensor:
        """The base model's loss on the step, for a sampler that draws no negatives
        (:attr:`draws_negatives`); the others' negatives go into Eq. 2."""
        raise NotImplementedError(f"{self.name} draws negatives; the trainer scores them")

    def update(self, step: StepContext) -> dict[str, float]:
        """Train the sampler on this mini-batch (detached representations); returns values to
        log."""
        return {}

    @classmethod
    def diagnostics(cls, row: Mapping[str, Any]) -> dict[str, float]:
        """What the sampler derives from an epoch's log row (numbers, or log.csv's strings)
        for trackers and plots, by name; nothing unless a sampler says otherwise."""
        return {}

    def _redraw_known_true(
        self, step: StepContext, head_replaced: BoolTensor, ids: LongTensor
    ) -> tuple[LongTensor, BoolTensor]:
        assert self.known_triples is not None
        positives = step.positives
        known = self.known_triples.contains(corrupt(positives, head_replaced, ids))
        # Redrawing one slot of a shared draw would make it no longer shared.
        for _ in range(_FILTER_ROUNDS if self.negatives_shared_by == 1 else 0):
            if not known.any():
                break
            redrawn = self.draw(step, head_replaced)
            ids = torch.where(known, redrawn, ids)
            known = self.known_triples.contains(corrupt(positives, head_replaced, ids))
        return ids, ~known
