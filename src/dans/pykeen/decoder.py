"""A PyKEEN model as dans's samplers see it: its interaction as a decoder, its representations
as tables."""

from __future__ import annotations

import torch
from pykeen.models import ERModel
from pykeen.nn.modules import DistMultInteraction, Interaction, TransEInteraction
from torch import Tensor

from dans.errors import DansError
from dans.models.decoders import Decoder
from dans.samplers.base import NegativeSampler

# Interactions whose algebra InteractionDecoder knows.
ALGEBRA = (DistMultInteraction, TransEInteraction)


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


class NoDecoder(Decoder):
    """The decoder of a step without a model: sampling that needs none never calls it."""

    name = ""

    def __init__(self) -> None:
        torch.nn.Module.__init__(self)


# Stateless: one serves every step without a model.
NO_DECODER = NoDecoder()


def representations(model: ERModel, sampler: type[NegativeSampler]) -> tuple[Tensor, Tensor]:
    """All entities' and relations' representations of a PyKEEN model with one of each, shapes
    (E, d), (R, d_r), cut from its graph; refused where the sampler needs an algebra the
    interaction lacks."""
    if len(model.entity_representations) != 1 or len(model.relation_representations) != 1:
        raise DansError(
            f"negative sampler {sampler.name}: needs a model with one entity and one relation "
            f"representation, {type(model).__name__} has others"
        )
    if sampler.needs_algebra and not isinstance(model.interaction, ALGEBRA):
        raise DansError(
            f"negative sampler {sampler.name}: needs the algebra of DistMult or TransE, not "
            f"{type(model.interaction).__name__}"
        )
    with torch.no_grad():
        entities = model.entity_representations[0](indices=None)
        relations = model.relation_representations[0](indices=None)
    # Detached too: an embedding returns its very parameter, which no_grad leaves attached.
    return entities.detach(), relations.detach()
