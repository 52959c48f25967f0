"""DANS: negatives from a FiLM-adapted two-way generator trained against a two-way discriminator.

Paper sections 3.2 to 3.4. For each positive, ``N_s`` negatives: a share made by the generator
(split between ``G_E`` and ``G_R``) and the rest drawn uniformly; each replaces the head or the tail
with probability 1/2. Replacing the tail conditions on ``e_h`` and ``r``; replacing the head
conditions on ``e_t`` and the decoder's inverse of ``r``, so one generator serves both sides.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import BoolTensor, LongTensor, Tensor, nn

from dans.data.graph import KnownTriples
from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.models.gather import gather_rows
from dans.optim import adam, guarded_step, is_row_sparse
from dans.options import Options, option
from dans.samplers.base import (
    Negatives,
    NegativeSampler,
    StepContext,
    average_one,
    join_weights,
)
from dans.samplers.dans.networks import Discriminator, Pathway, film_penalty
from dans.samplers.simple import UniformSampler, adversarial_weights
from dans.samplers.snap import nearest_allowed

DANS_PATHWAYS = ("entity", "relation", "both")
DANS_MODES = ("continuous", "snap")
DANS_OUTPUT_RANGES = ("unit", "entities")
DANS_NEGATIVE_PATHWAYS = ("all", "entity", "relation")


@dataclass(frozen=True)
class DANSOptions(Options):
    """The sampler's settings; every default is the paper's (see :class:`DANSSampler`). The
    sampler's ``dans-authors`` variant has the GAN schedule of the authors' released code."""

    prefix: ClassVar[str] = "dans_"
    renamed: ClassVar[dict[str, str]] = {
        "dans_adversarial_temperature": "dans_adversarial_alpha",
        "dans_fake_per_side": "dans_fake_per_condition",
    }

    pathways: str = option("both", "generator pathways G_E, G_R or both", choices=DANS_PATHWAYS)
    negative_pathways: str = option(
        "all",
        "pathways whose fakes are the base model's negatives: all those trained, or one of them "
        "(relation: as the authors' code runs, where G_E's fakes are overwritten by G_R's "
        "before the loss)",
        choices=DANS_NEGATIVE_PATHWAYS,
    )
    film: bool = option(True, "FiLM adaptation of the generator")
    mode: str = option(
        "continuous",
        "use generated vectors (continuous) or their nearest real entities (snap)",
        choices=DANS_MODES,
    )
    generated_share: float = option(
        0.5,
        "share of the negatives made by the generator (rounded up, split evenly between the "
        "pathways); the rest are uniform",
        above=0.0,
        maximum=1.0,
    )
    generator_layers: int = option(2, "hidden layers M of each pathway", minimum=1)
    noise_sigma: float = option(0.01, "std of the generator's input noise", minimum=0.0)
    film_lambda: float = option(1e-4, "FiLM regulariser weight lambda", minimum=0.0)
    generator_lr: float = option(1e-3, "generator learning rate", above=0.0)
    discriminator_lr: float = option(1e-4, "discriminator learning rate", above=0.0)
    gan_beta1: float = option(
        0.9,
        "Adam's first-moment decay for the generator and the discriminator (the authors' code: "
        "0.5)",
        minimum=0.0,
        below=1.0,
    )
    score_weight: float = option(
        0.0,
        "weight of a generator loss term, -log sigmoid(score), that rewards fakes the current "
        "base model scores high (0: off, the paper's objective)",
        minimum=0.0,
    )
    adversarial_alpha: float = option(
        0.0,
        "weight each negative in the loss by softmax(alpha * score) over its positive's "
        "negatives, as self-adv does (0: off, the paper's equal weights)",
        minimum=0.0,
    )
    generator_steps: int = option(
        5, "generator steps per mini-batch (the authors' code: 1)", minimum=0
    )
    discriminator_steps: int = option(
        1, "discriminator steps per mini-batch (the authors' code: 10)", minimum=0
    )
    gan_positives: int = option(
        0,
        "positives of each mini-batch, drawn at random, that the generator and discriminator "
        "steps train on (0: all of them, the paper's schedule)",
        minimum=0,
    )
    fake_per_condition: bool = option(
        False,
        "one fake per distinct conditioning vector and pathway (G_E: the kept entity; G_R: it, "
        "the relation and the side), shared by the generated negatives conditioned on it (off: "
        "a fake per negative, the paper's sampling)",
    )
    output_range: str = option(
        "unit",
        "generator output tanh in [-1, 1] (unit, the authors' code) or scaled to the largest "
        "entity coordinate (entities)",
        choices=DANS_OUTPUT_RANGES,
    )


@dataclass
class Conditioning:
    """One pathway's conditioning for a batch: its distinct conditioning vectors, shape (U, d),
    and for each (positive, side) row which of them it uses, shape (2B,); and the scale of the
    generator's tanh output.

    The FiLM factors depend on the conditioning vector alone, so they are computed once per
    distinct vector (once per entity for ``G_E``) rather than once per fake.
    """

    vectors: Tensor
    rows: LongTensor
    output_scale: Tensor | float = 1.0


class DANSSampler(NegativeSampler):
    """The paper's sampler. See the module docstring; its ``options`` (:class:`DANSOptions`)
    default to the paper's settings, and its ``dans-authors`` variant runs the GAN schedule of
    the authors' code.

    ``pathways``: which of ``G_E`` ("entity"), ``G_R`` ("relation") or both make the generated
    share; ``film``: FiLM adaptation on or off; ``mode``: "continuous" uses the generated vectors
    as negatives (the paper), "snap" replaces each by its nearest real entity that forms no
    known-true triple, so the negatives carry ids. ``generated_share`` of the negatives (rounded
    up) come from the generator, split evenly between the pathways (``G_E`` takes an odd one).
    ``output_range``: "unit" keeps the generator's tanh output in [-1, 1] as the authors' code
    does; "entities" scales it to the largest coordinate of the current entity embeddings.
    ``gan_positives``: the generator and discriminator steps of a mini-batch train on this many
    of its positives, drawn at random, so that their cost stops growing with the batch; 0 trains
    them on every positive, as the paper does. ``fake_per_condition``: the generated negatives
    conditioned on the same vector share one fake per pathway (all those of a positive's side,
    and for ``G_E`` those of every side kept by the same entity), so a batch runs each pathway
    once per distinct conditioning vector, at most two per positive, instead of once per
    negative; with the paper's small input noise the fakes of one vector are near-copies anyway.
    It applies to the training negatives only: :meth:`generate` draws every fake on its own
    unless asked, as the hardest-negatives query and the plots need.
    """

    name = "dans"
    scores_with_model = True
    needs_algebra = True
    # Snap mode replaces each generated vector by its nearest entity.
    ids_only_settings: ClassVar[dict[str, Any] | None] = {"dans_mode": "snap"}
    options_type = DANSOptions
    # The GAN schedule of the authors' released code, where the defaults are the paper's
    # (Section 4.1): first on UMLS validation, not significantly ahead on test (docs/results).
    # And the authors' code as it runs: in its ``distmult``, both blocks of generated
    # negatives are views of one tensor, so G_R's fakes overwrite G_E's in place and only G_R's
    # reach the base model's loss, while G_E still trains against the discriminator.
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "dans-authors": {"generator_steps": 1, "discriminator_steps": 10, "gan_beta1": 0.5},
        "dans-authors-code": {
            "generator_steps": 1,
            "discriminator_steps": 10,
            "gan_beta1": 0.5,
            "negative_pathways": "relation",
        },
    }

    @classmethod
    def diagnostics(cls, row: Mapping[str, Any]) -> dict[str, float]:
        """``score_gap``: the mean logit of the epoch's generated negatives minus that of its
        uniform ones, where the row has both (not in pretraining)."""
        generated, uniform = row.get("score_generated"), row.get("score_uniform")
        if generated in (None, "") or uniform in (None, ""):
            return {}
        return {"score_gap": float(generated) - float(uniform)}

    @classmethod
    def from_context(cls, context: BuildContext, options: DANSOptions) -> DANSSampler:
        return cls(
            context.num_entities,
            context.num_negatives,
            context.dim,
            context.known_triples,
            context.filter_negatives,
            options,
        )

    def __init__(
        self,
        num_entities: int,
        num_negatives: int,
        dim: int,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        options: DANSOptions = DANSOptions(),
    ) -> None:
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        if options.mode == "snap" and known_triples is None:
            raise ConfigError("--dans-mode snap needs the known-true triples")
        generated = math.ceil(options.generated_share * num_negatives)
        trained = ["entity", "relation"] if options.pathways == "both" else [options.pathways]
        # Negatives per pathway, laid out G_E's first.
        if options.negative_pathways != "all":
            if options.negative_pathways not in trained:
                raise ConfigError(
                    f"--dans-negative-pathways {options.negative_pathways} needs that pathway "
                    f"trained; --dans-pathways is {options.pathways}"
                )
            counts = {options.negative_pathways: generated}
        elif options.pathways == "both":
            counts = {"entity": generated - generated // 2, "relation": generated // 2}
        else:
            counts = {options.pathways: generated}
        self.counts = {name: count for name, count in counts.items() if count}
        self.num_uniform = num_negatives - generated
        self.mode = options.mode
        self.output_range = options.output_range
        self.noise_sigma = options.noise_sigma
        self.film_lambda = options.film_lambda
        self.generator_steps = options.generator_steps
        self.discriminator_steps = options.discriminator_steps
        self.gan_positives = options.gan_positives
        self.fake_per_condition = options.fake_per_condition
        # A pathway that makes no negative is not built, unless it trains against the
        # discriminator all the same (--dans-negative-pathways).
        built = trained if options.negative_pathways != "all" else self.counts
        self.pathways = nn.ModuleDict(
            {name: Pathway(dim, options.generator_layers, options.film) for name in built}
        )
        self.discriminator = Discriminator(dim)
        self.uniform = (
            UniformSampler(num_entities, self.num_uniform, known_triples, filter_negatives)
            if self.num_uniform
            else None
        )
        self.score_weight = options.score_weight
        self.adversarial_alpha = options.adversarial_alpha
        self.generator_optimizer = adam(
            self.pathways.parameters(), options.generator_lr, options.gan_beta1
        )
        self.discriminator_optimizer = adam(
            self.discriminator.parameters(), options.discriminator_lr, options.gan_beta1
        )
        self.skipped_steps.update(generator=0, discriminator=0)

    def conditions(
        self, step: StepContext, names: Iterable[str] | None = None
    ) -> dict[str, Conditioning]:
        """Each pathway's conditioning for the step's positives, ``{pathway: Conditioning}``:
        every pathway's, or those ``names`` says.

        Row ``2b`` replaces positive ``b``'s tail, conditioned on ``e_h`` and ``r``; row ``2b + 1``
        replaces its head, conditioned on ``e_t`` and the inverse of ``r``. ``G_E`` is
        conditioned on the anchor, ``G_R`` on ``anchor * relation`` in the decoder's algebra.
        """
        entities, relations = step.entities, step.relations
        anchor_ids, relation_ids, head_side = _rows(step.positives)
        keys = {
            "entity": anchor_ids,
            "relation": (anchor_ids * len(relations) + relation_ids) * 2 + head_side,
        }
        # "unit" is the authors' tanh in [-1, 1]; "entities" stretches it to the largest
        # coordinate of the real embeddings, which an RGCN does not keep within [-1, 1].
        scale = entities.abs().amax() if self.output_range == "entities" else 1.0
        conditioning = {}
        for name in self.pathways if names is None else names:
            distinct, rows = torch.unique(keys[name], return_inverse=True)
            first = rows.new_empty(len(distinct)).scatter_(
                0, rows, torch.arange(len(rows), device=rows.device)
            )
            vectors = gather_rows(entities, anchor_ids[first])
            if name == "relation":
                rel = gather_rows(relations, relation_ids[first])
                rel = step.decoder.query_relations(rel, head_side[first])
                vectors = step.decoder.compose(vectors, rel)
            conditioning[name] = Conditioning(vectors, rows, scale)
        return conditioning

    @staticmethod
    def queries(step: StepContext) -> tuple[Tensor, Tensor]:
        """Each conditioning row's query, as the base model scores it: the kept entity, shape
        (2B, d), and the relation, inverted on a head row, shape (2B, d_r)."""
        anchor_ids, relation_ids, head_side = _rows(step.positives)
        relations = gather_rows(step.relations, relation_ids)
        return gather_rows(step.entities, anchor_ids), step.decoder.query_relations(
            relations, head_side
        )

    @staticmethod
    def replaced(step: StepContext) -> Tensor:
        """The real entities the conditioning rows stand against: row ``2b`` positive ``b``'s
        tail, row ``2b + 1`` its head, shape (2B, d)."""
        return gather_rows(step.entities, step.positives[:, [2, 0]].flatten())

    def draw_sides(self, batch: int, generator: torch.Generator) -> dict[str, BoolTensor]:
        """Whether each fake replaces the head, ``{pathway: shape (B, n_pathway)}``."""
        return {
            name: torch.rand((batch, count), generator=generator, device=generator.device) < 0.5
            for name, count in self.counts.items()
        }

    def generate(
        self,
        conditioning: dict[str, Conditioning],
        sides: dict[str, BoolTensor],
        generator: torch.Generator,
        per_side: bool = False,
    ) -> dict[str, Tensor]:
        """Fake entity embeddings, ``{pathway: shape (B, n_pathway, d)}``, for the sides drawn:
        each its own draw, or with ``per_side`` one draw per distinct conditioning vector,
        shared by every negative conditioned on it."""
        return {
            name: gather_rows(table, rows)
            for name, (table, rows) in self.fake_tables(
                conditioning, sides, generator, per_side
            ).items()
        }

    def fake_tables(
        self,
        conditioning: dict[str, Conditioning],
        sides: dict[str, BoolTensor],
        generator: torch.Generator,
        per_side: bool = False,
    ) -> dict[str, tuple[Tensor, LongTensor]]:
        """:meth:`generate`'s fakes before they are laid out per negative: for each pathway a
        table of fakes, shape (T, d), and each negative's row in it, shape (B, n_pathway)."""
        tables = {}
        for name, c in conditioning.items():
            rows = torch.arange(len(sides[name]), device=sides[name].device)[:, None] * 2
            # The conditioning vector of each negative's (positive, side) row, (B, n_pathway).
            vectors = c.rows[rows + sides[name].long()]
            if per_side:
                tables[name] = (self._run(name, c, None, generator), vectors)
            else:
                made = self._run(name, c, vectors.flatten(), generator)
                tables[name] = (made, torch.arange(len(made), device=made.device).view_as(vectors))
        return tables

    def fakes_per_row(
        self,
        conditioning: dict[str, Conditioning],
        generator: torch.Generator,
        modulations: dict[str, Tensor | None] | None = None,
    ) -> dict[str, Tensor]:
        """One fake per (positive, side) row from each pathway, ``{pathway: shape (2B, d)}``."""
        return {
            name: self._run(name, c, c.rows, generator, modulations[name] if modulations else None)
            for name, c in conditioning.items()
        }

    def _run(
        self,
        name: str,
        conditioning: Conditioning,
        index: LongTensor | None,
        generator: torch.Generator,
        modulation: Tensor | None = None,
    ) -> Tensor:
        """Pathway ``name`` on conditioning vectors ``conditioning.vectors[index]``, shape (N, d),
        or on each of them once when ``index`` is None."""
        return self.pathways[name](
            conditioning.vectors,
            index,
            self.noise_sigma,
            generator,
            modulation,
            conditioning.output_scale,
        )

    def generator_step(
        self,
        conditioning: dict[str, Conditioning],
        generator: torch.Generator,
        scorer: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """One update of the generator on Eq. 13, discriminator and base model frozen.

        As in the authors' code, a step draws one fake per conditioning row (each positive's head
        and tail side). The generator minimises ``-log D_adv(fake)`` rather than maximising
        ``-log(1 - D_adv(fake))`` as Eq. 13 writes it: the same fixed point, without the
        vanishing gradient of the saturating form while the discriminator wins (Goodfellow et al.,
        2014). The FiLM penalty is averaged over distinct conditioning vectors, Eq. 13's sum over
        ``h``, so ``lambda`` does not depend on the batch size. With ``scorer`` (fakes (2B, d)
        -> the base model's logits (2B,)), the loss adds ``score_weight * -log sigmoid(logit)``,
        which the paper's objective lacks: it pulls the fakes towards what the base model still
        scores as true. Returns the fakes (detached), shape (2B, d) per pathway, and values to
        log.
        """
        modulations = {
            name: pathway.modulation(conditioning[name].vectors)
            for name, pathway in self.pathways.items()
        }
        self.discriminator.requires_grad_(False)
        try:
            fakes = self.fakes_per_row(conditioning, generator, modulations)
            adversarial = sum(_bce(self.discriminator(fake)[0], True) for fake in fakes.values())
            films = [m for m in modulations.values() if m is not None]
            penalty = sum(film_penalty(m) for m in films) if films else torch.zeros(())
            loss = adversarial + self.film_lambda * penalty
            if scorer is not None:
                logits = torch.cat([scorer(fake) for fake in fakes.values()])
                loss = loss + self.score_weight * F.softplus(-logits).mean()
            taken = guarded_step(self.generator_optimizer, loss)
        finally:
            self.discriminator.requires_grad_(True)
        self.skipped_steps["generator"] += not taken
        logs = {"generator_loss": loss.item()}
        if scorer is not None:
            logs["generator_fake_score"] = logits.mean().item()
        if films:
            logs["film_alpha_deviation"] = (
                torch.stack([m[0::2].abs().mean() for m in films]).mean().item()
            )
            logs["film_beta"] = torch.stack([m[1::2].abs().mean() for m in films]).mean().item()
        return {name: fake.detach() for name, fake in fakes.items()}, logs

    def discriminator_step(self, reals: Tensor, fakes: dict[str, Tensor]) -> dict[str, float]:
        """One update of the discriminator on Eq. 14, generator and base model frozen.

        ``reals``: shape (2B, d); ``fakes``: shape (2B, d) per pathway, made without gradient.
        """
        real_logits, _ = self.discriminator(reals)
        loss = _bce(real_logits, True)
        fake_right, aux_right = [], []
        for name, fake in fakes.items():
            adversarial, auxiliary = self.discriminator(fake)
            loss = loss + _bce(adversarial, False)
            fake_right.append(adversarial < 0)
            if len(fakes) == 2:
                # D_aux's label: 1 for a fake from G_E, 0 for one from G_R (Eq. 12).
                loss = loss + _bce(auxiliary, name == "entity")
                aux_right.append((auxiliary > 0) == (name == "entity"))
        taken = guarded_step(self.discriminator_optimizer, loss)
        self.skipped_steps["discriminator"] += not taken
        logs = {
            "discriminator_loss": loss.item(),
            "discriminator_real_accuracy": (real_logits > 0).float().mean().item(),
            "discriminator_fake_accuracy": torch.cat(fake_right).float().mean().item(),
        }
        if aux_right:
            logs["auxiliary_accuracy"] = torch.cat(aux_right).float().mean().item()
        return logs

    def update(self, step: StepContext) -> dict[str, float]:
        """Generator steps, then discriminator steps on the last generator step's fakes, as in
        the authors' code (Section 3.4), on ``gan_positives`` of the step's positives when set;
        returns the last step's values of each."""
        generator, positives = step.generator, step.positives
        if 0 < self.gan_positives < len(positives):
            chosen = torch.randperm(len(positives), generator=generator, device=generator.device)
            step = dataclasses.replace(step, positives=positives[chosen[: self.gan_positives]])
        conditioning = self.conditions(step)
        # The base model's logit of a row's fake, as a function of the fake alone.
        scorer = (
            functools.partial(step.decoder.score, *self.queries(step))
            if self.score_weight
            else None
        )
        logs: dict[str, float] = {}
        fakes = None
        for _ in range(self.generator_steps):
            fakes, generator_logs = self.generator_step(conditioning, generator, scorer)
            logs.update(generator_logs)
        if self.discriminator_steps and fakes is None:
            with torch.no_grad():
                fakes = self.fakes_per_row(conditioning, generator)
        for _ in range(self.discriminator_steps):
            logs.update(self.discriminator_step(self.replaced(step), fakes))
        return logs

    def sample(self, step: StepContext) -> Negatives:
        """Generated negatives (``G_E``'s, then ``G_R``'s), then uniform ones: shape (B, N_s, d).

        Generated vectors are fixed inputs to the base model's step: no gradient flows back
        through them into the generator or into the embeddings they were conditioned on. All
        the negatives are gathered at once from one source, the entities followed by the fakes,
        rather than laid out per pathway and joined: the (B, N_s, d) tensor is the step's
        largest after the encoder's, and is built once.
        """
        positives, entities, generator = step.positives, step.entities, step.generator
        with torch.no_grad():
            conditioning = self.conditions(step.detached(), self.counts)
            sides = self.draw_sides(len(positives), generator)
            tables = self.fake_tables(conditioning, sides, generator, self.fake_per_condition)
        head_replaced = torch.cat(list(sides.values()), 1)
        weights = None
        # A row-sparse table is gathered on its own: joined with the fakes it would be copied
        # whole at every step, and its gradient would be the whole table's.
        separate = self.mode != "snap" and is_row_sparse(entities)
        if self.mode == "snap":
            vectors = torch.cat([gather_rows(*table) for table in tables.values()], 1)
            rows, allowed = self.snap(positives, head_replaced, vectors, entities)
            weights = None if allowed.all() else average_one(allowed.float())
            source = entities
        else:
            # The uniform negatives' rows are entity ids, so the entities lead the source when
            # there are any (and are joined); the fakes follow, pathway by pathway.
            reals = [entities] if self.uniform is not None and not separate else []
            source = torch.cat([*reals, *(table for table, _ in tables.values())])
            parts, start = [], sum(map(len, reals))
            for table, index in tables.values():
                parts.append(index + start)
                start += len(table)
            rows = torch.cat(parts, 1)
        uniform_rows = None
        if self.uniform is not None:
            uniform_sides, ids, kept = self.uniform.pick(step)
            # Weighted as the uniform sampler weighs them, then renormalised over the whole row.
            kept_weights = None if kept is None else average_one(kept.float())
            weights = join_weights((weights, head_replaced), (kept_weights, uniform_sides))
            head_replaced = torch.cat([head_replaced, uniform_sides], 1)
            if separate:
                uniform_rows = gather_rows(entities, ids)
            else:
                rows = torch.cat([rows, ids], 1)
        gathered = gather_rows(source, rows)
        if uniform_rows is not None:
            gathered = torch.cat([gathered, uniform_rows], 1)
        negatives = Negatives(
            gathered,
            head_replaced,
            rows if self.mode == "snap" else None,
            weights,
            self._groups(),
        )
        if self.adversarial_alpha:
            hardness = adversarial_weights(step, negatives, self.adversarial_alpha)
            negatives.weights = average_one(hardness if weights is None else hardness * weights)
        return negatives

    def snap(
        self, positives: LongTensor, head_replaced: BoolTensor, vectors: Tensor, entities: Tensor
    ) -> tuple[LongTensor, BoolTensor]:
        """Each vector's nearest real entity forming no known-true triple: ids (B, G), and
        whether one exists (False also for a non-finite vector), shape (B, G)."""
        assert self.known_triples is not None
        kept = torch.where(head_replaced, positives[:, 2:3], positives[:, 0:1])
        relation = positives[:, 1:2].expand_as(kept)
        ids, distances = nearest_allowed(
            vectors.flatten(0, 1),
            kept.flatten(),
            relation.flatten(),
            head_replaced.flatten(),
            entities.detach(),
            self.known_triples,
        )
        return ids.view(kept.shape), distances.view(kept.shape).isfinite()

    def _groups(self) -> dict[str, slice]:
        """Named column ranges of the negatives, for logging their mean scores."""
        groups, start = {}, 0
        for name, count in self.counts.items():
            groups[f"{name}_pathway"] = slice(start, start + count)
            start += count
        groups["generated"] = slice(0, start)
        if self.num_uniform:
            groups["uniform"] = slice(start, start + self.num_uniform)
        return groups


def _bce(logits: Tensor, label: bool) -> Tensor:
    """Mean binary cross-entropy of logits against one label (Eqs. 11-12)."""
    target = torch.ones_like(logits) if label else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def _rows(positives: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
    """The (positive, side) rows of a batch, shape (2B,) each: the kept entity, the relation,
    and 1 where the head is replaced (row ``2b + 1``), 0 where the tail is (row ``2b``)."""
    anchor_ids = positives[:, [0, 2]].flatten()
    relation_ids = positives[:, 1].repeat_interleave(2)
    head_side = torch.arange(len(anchor_ids), device=anchor_ids.device) % 2
    return anchor_ids, relation_ids, head_side
