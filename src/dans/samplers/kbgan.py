"""KBGAN: negatives picked by a small generator KGE model trained with REINFORCE.

Cai and Wang, "KBGAN: Adversarial Learning for Knowledge Graph Embeddings" (NAACL 2018); checked
against the authors' code (github.com/cai-lw/KBGAN, ``base_model.py: gen_step``, ``gan_train.py``,
``corrupter.py``, ``distmult.py``). For each negative, ``N_c`` candidate entities are drawn
uniformly; the generator, a DistMult model with its own entity and relation embeddings, scores
them and one is drawn from the softmax of its scores. The base model is the discriminator: its
logit of the drawn negative is the generator's reward, and the generator follows the REINFORCE
gradient ``-(reward - baseline) * log p(negative)`` with a moving-average baseline.

Each of a positive's K negatives is an independent KBGAN draw, with its own replaced side (head or
tail with probability 1/2, as every sampler here) and its own candidate set: the authors draw one
negative per positive from one candidate set, which a set shared by K draws would turn into K
picks from the same 20 entities, repeats included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import BoolTensor, LongTensor, Tensor, nn
from torch.autograd.function import FunctionCtx

from dans.data.graph import KnownTriples
from dans.models.context import BuildContext
from dans.models.gather import block_rows, gather_rows
from dans.models.model import score_corrupted
from dans.optim import adam, guarded_step
from dans.options import Options, option
from dans.samplers.base import NegativeSampler, StepContext, corrupt

# The authors' DistMult initialisation (distmult.py): N(0, 1) entries divided by
# (dim / sigma^2)^(1/6), so a three-way product summed over dim has std sigma at the start and the
# generator's first softmax over candidates is close to uniform.
_INIT_SIGMA = 0.2


@dataclass(frozen=True)
class KBGANOptions(Options):
    prefix: ClassVar[str] = "kbgan_"

    candidates: int = option(
        20, "uniform candidates the generator picks each negative from", minimum=1
    )
    generator_dim: int = option(
        50, "embedding size of the generator's own DistMult model", minimum=1
    )
    generator_lr: float = option(1e-3, "generator Adam learning rate", above=0.0)
    temperature: float = option(1.0, "softmax temperature on the generator's logits", above=0.0)
    baseline_momentum: float = option(
        0.9,
        "momentum of the REINFORCE reward baseline's moving average",
        minimum=0.0,
        below=1.0,
    )


class KBGANSampler(NegativeSampler):
    """The KBGAN sampler. See the module docstring.

    ``candidates``: uniformly drawn candidates per negative, ``N_c`` (the paper's ``N_s``, 20;
    renamed since ``N_s`` here is the negatives per positive);
    ``generator_dim``: the generator's embedding size (50 in the authors' configs);
    ``generator_lr``: its Adam learning rate (the authors' Adam default, 1e-3); ``temperature``:
    divides its logits before the softmax (the authors' ``adv.temperature``, 1.0);
    ``baseline_momentum``: of the reward baseline's exponential moving average.

    The generator is always DistMult, whatever the base model's decoder: the authors pair a
    DistMult (or ComplEx) generator with each discriminator, since a generator only needs a
    softmax-friendly score over candidates; DistMult is the cheapest such score and is symmetric,
    so one query vector per kept side serves head and tail replacement alike.
    """

    name = "kbgan"
    scores_with_model = True
    ids_only_settings: ClassVar[dict[str, Any] | None] = {}
    options_type = KBGANOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: KBGANOptions) -> KBGANSampler:
        return cls(
            context.num_entities,
            context.num_relations,
            context.num_negatives,
            context.known_triples,
            context.filter_negatives,
            options,
        )

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        num_negatives: int,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        options: KBGANOptions = KBGANOptions(),
    ) -> None:
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        self.candidates = options.candidates
        self.temperature = options.temperature
        self.baseline_momentum = options.baseline_momentum
        generator_dim = options.generator_dim
        self.entity_embeddings = nn.Embedding(num_entities, generator_dim)
        self.relation_embeddings = nn.Embedding(num_relations, generator_dim)
        std = (_INIT_SIGMA**2 / generator_dim) ** (1 / 6)
        for table in (self.entity_embeddings, self.relation_embeddings):
            nn.init.normal_(table.weight, std=std)
        # Buffers, so a checkpoint keeps them: the reward baseline and how many finite rewards
        # it has seen (0: not started, and the first batch's mean reward starts it).
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.generator_optimizer = adam(
            [self.entity_embeddings.weight, self.relation_embeddings.weight], options.generator_lr
        )
        self.skipped_steps.update(generator=0)

    def generator_logits(
        self, positives: LongTensor, head_replaced: BoolTensor, candidates: LongTensor
    ) -> Tensor:
        """The generator's tempered DistMult logits of the corrupted triples.

        ``positives``: (B, 3); ``head_replaced``: (B, K); ``candidates``: (B, K, N) entity ids ->
        (B, K, N). A head candidate ``c`` scores ``<c, r, t>`` and a tail candidate ``<h, r, c>``.
        """
        batch, count, width = candidates.shape
        relation = gather_rows(self.relation_embeddings.weight, positives[:, 1])
        anchors = gather_rows(self.entity_embeddings.weight, positives[:, [0, 2]])  # (B, 2, d)
        # Column 0 scores tail candidates, column 1 head candidates (DistMult is symmetric).
        queries = (anchors * relation[:, None]).transpose(1, 2)  # (B, d, 2)
        both = _CandidateScores.apply(
            self.entity_embeddings.weight, queries, candidates.reshape(batch, -1)
        ).view(batch, count, width, 2)
        side = head_replaced.long()[..., None, None].expand(-1, -1, width, 1)
        return both.gather(3, side).squeeze(3) / self.temperature

    def propose(
        self, positives: LongTensor, head_replaced: BoolTensor, generator: torch.Generator
    ) -> tuple[LongTensor, Tensor]:
        """Uniform candidates for each negative and the generator's logits of them.

        Returns ids (B, K, N) and logits (B, K, N), N = ``candidates``. With ``filter_negatives``,
        known-true candidates get a logit of -inf, so the generator neither draws them nor is
        rewarded for them (the discriminator would score a true triple high); a set whose every
        candidate is known-true keeps its logits, and the base class redraws or drops its pick.
        """
        shape = (*head_replaced.shape, self.candidates)
        ids = torch.randint(self.num_entities, shape, generator=generator, device=generator.device)
        logits = self.generator_logits(positives, head_replaced, ids)
        if self.filter_negatives:
            assert self.known_triples is not None
            sides = head_replaced[..., None].expand(shape).reshape(len(ids), -1)
            triples = corrupt(positives, sides, ids.reshape(len(ids), -1))
            known = self.known_triples.contains(triples).view(shape)
            known = known & ~known.all(-1, keepdim=True)
            logits = logits.masked_fill(known, -torch.inf)
        return ids, logits

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """One entity per negative from the generator's softmax over its candidates: (B, K)."""
        with torch.no_grad():
            ids, logits = self.propose(step.positives, head_replaced, step.generator)
            return _pick(ids, _gumbel_argmax(logits, step.generator))

    def update(self, step: StepContext) -> dict[str, float]:
        """One REINFORCE step of the generator on a fresh draw of K negatives per positive.

        The reward of a negative is the base model's logit of it, from the step's
        representations, which are only read. As in the authors' ``gan_train.py``, the
        baseline subtracted is the one from before this batch; they average the previous
        epoch's rewards, and this is the per-batch analogue, an exponential moving average
        started at the first batch's mean. The loss is a mean over negatives (the authors sum),
        so the learning rate does not depend on the batch size. A non-finite loss or gradient
        skips the step and is counted; a non-finite mean reward leaves the baseline alone.
        """
        positives, generator = step.positives, step.generator
        shape = (len(positives), self.num_negatives)
        head_replaced = torch.rand(shape, generator=generator, device=generator.device) < 0.5
        ids, logits = self.propose(positives, head_replaced, generator)
        log_probs = F.log_softmax(logits, -1)
        with torch.no_grad():
            choice = _gumbel_argmax(logits, generator)
            picked = gather_rows(step.entities, _pick(ids, choice))
            rewards = score_corrupted(
                step.decoder, step.entities, step.relations, positives, head_replaced, picked
            )
            mean_reward = rewards.mean()
            # Tensor selects rather than Python branches: no device synchronisation.
            started = self.updates > 0
            baseline = torch.where(started, self.baseline, mean_reward)
            advantage = rewards - baseline
            entropy = torch.special.entr(log_probs.exp()).sum(-1).mean()
        chosen = log_probs.gather(2, choice[..., None]).squeeze(2)
        loss = -(advantage * chosen).mean()
        taken = guarded_step(self.generator_optimizer, loss)
        self.skipped_steps["generator"] += not taken
        with torch.no_grad():
            finite = mean_reward.isfinite()
            moved = self.baseline_momentum * baseline + (1 - self.baseline_momentum) * mean_reward
            self.baseline.copy_(torch.where(finite, moved, self.baseline))
            self.updates += finite.long()
        return {
            "generator_loss": loss.item(),
            "generator_reward": mean_reward.item(),
            "generator_baseline": self.baseline.item(),
            "generator_entropy": entropy.item(),
        }


class _CandidateScores(torch.autograd.Function):
    """``table[ids[b]] @ queries[b]`` for each positive b: shapes (E, d), (B, d, 2), (B, M) ->
    (B, M, 2), one batched product per block of positives, whose gathered embeddings are
    never all held at once (the backward gathers them again, block by block)."""

    @staticmethod
    def forward(ctx: FunctionCtx, table: Tensor, queries: Tensor, ids: LongTensor) -> Tensor:
        ctx.save_for_backward(table, queries, ids)
        out = queries.new_empty(len(ids), ids.shape[1], queries.shape[2])
        for rows in _blocks(ids, table.shape[1] * table.element_size()):
            torch.bmm(gather_rows(table, ids[rows]), queries[rows], out=out[rows])
        return out

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        table, queries, ids = ctx.saved_tensors  # type: ignore[attr-defined]
        grad = grad.contiguous()
        grad_table = torch.zeros_like(table) if ctx.needs_input_grad[0] else None
        grad_queries = torch.empty_like(queries) if ctx.needs_input_grad[1] else None
        for rows in _blocks(ids, table.shape[1] * table.element_size()):
            if grad_queries is not None:
                embedded = gather_rows(table, ids[rows])
                torch.bmm(embedded.transpose(1, 2), grad[rows], out=grad_queries[rows])
            if grad_table is not None:
                # index_add sums in a fixed order on the CPU, block after block.
                rows_grad = torch.bmm(grad[rows], queries[rows].transpose(1, 2))
                grad_table.index_add_(0, ids[rows].reshape(-1), rows_grad.flatten(0, 1))
        return grad_table, grad_queries, None


def _blocks(ids: LongTensor, row_bytes: int) -> Iterator[slice]:
    """Consecutive blocks of positives (rows of ``ids``, shape (B, M)) whose gathered
    embeddings, ``row_bytes`` per id, fill :func:`block_rows`'s budget (one (B, M, d) block
    would be 800 MB for 10,000 positives on NELL-995)."""
    size = block_rows(ids.shape[1] * row_bytes, ids.device)
    for start in range(0, len(ids), size):
        yield slice(start, start + size)


def _gumbel_argmax(logits: Tensor, generator: torch.Generator) -> LongTensor:
    """A draw from ``softmax(logits)`` over the last axis: (..., N) -> (...).

    Gumbel-max takes one uniform number per candidate from ``generator``, is exact, and unlike
    ``torch.multinomial`` does not fail on non-finite logits: a generator gone NaN still yields
    valid ids while its update is skipped.
    """
    uniform = torch.rand(logits.shape, generator=generator, device=generator.device)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny)))
    return (logits.detach() + gumbel).argmax(-1)


def _pick(ids: LongTensor, choice: LongTensor) -> LongTensor:
    """``ids[b, k, choice[b, k]]``: (B, K, N), (B, K) -> (B, K)."""
    return ids.gather(2, choice[..., None]).squeeze(2)
