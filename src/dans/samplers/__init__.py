"""Negative samplers behind one interface, resolved by name from :data:`SAMPLERS`."""

from dans.samplers.base import SAMPLERS, Negatives, NegativeSampler, score_negatives
from dans.samplers.dans import DANSSampler
from dans.samplers.simple import PopularitySampler, SelfAdversarialSampler, UniformSampler

__all__ = [
    "SAMPLERS",
    "DANSSampler",
    "NegativeSampler",
    "Negatives",
    "PopularitySampler",
    "SelfAdversarialSampler",
    "UniformSampler",
    "score_negatives",
]
