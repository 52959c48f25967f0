"""dans's samplers inside PyKEEN: each sampler whose negatives can be entity ids without weights
(:attr:`~dans.samplers.base.NegativeSampler.ids_only_settings`) as a PyKEEN
``NegativeSampler``, by class or, once this package is imported, by name::

    import dans.pykeen
    from pykeen.pipeline import pipeline

    pipeline(
        dataset="Nations",
        model="DistMult",
        negative_sampler="nscaching",
        training_kwargs=dict(callbacks=dans.pykeen.SamplerCallback()),
    )

PyKEEN makes a negative sampler from the training triples alone. The samplers that score with
the model (MCNS, NSCaching, KBGAN, DANS: their ``scores_with_model``) get it through
:class:`SamplerCallback`, a PyKEEN training callback, which the training loop makes them with;
as in dans, a learned sampler updates once per batch, just before it samples the batch's
negatives. The callback saves the sampler's state beside PyKEEN's checkpoint after every epoch
and restores it when PyKEEN resumes from that checkpoint.
"""

from pykeen.sampling import negative_sampler_resolver

from dans.pykeen.callback import SAMPLER_STATE_KIND, SamplerCallback
from dans.pykeen.decoder import ALGEBRA, InteractionDecoder, representations
from dans.pykeen.sampler import DansNegativeSampler, bridged_samplers, training_graph

# Every bridged sampler by name, registered with PyKEEN's resolver under it.
BRIDGED = bridged_samplers()
for _bridged in BRIDGED.values():
    if _bridged.get_normalized_name() not in negative_sampler_resolver.lookup_dict:
        negative_sampler_resolver.register(_bridged)

# The bridged samplers by class name, as PyKEEN's own are named.
PopularityNegativeSampler = BRIDGED["popularity"]
MCNSNegativeSampler = BRIDGED["mcns"]
NSCachingNegativeSampler = BRIDGED["nscaching"]
KBGANNegativeSampler = BRIDGED["kbgan"]
SANSNegativeSampler = BRIDGED["sans"]
DANSNegativeSampler = BRIDGED["dans"]

__all__ = [
    "ALGEBRA",
    "BRIDGED",
    "SAMPLER_STATE_KIND",
    "DANSNegativeSampler",
    "DansNegativeSampler",
    "InteractionDecoder",
    "KBGANNegativeSampler",
    "MCNSNegativeSampler",
    "NSCachingNegativeSampler",
    "PopularityNegativeSampler",
    "SANSNegativeSampler",
    "SamplerCallback",
    "representations",
    "training_graph",
]
