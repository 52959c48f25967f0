"""Negative samplers behind one interface, resolved by name from :data:`SAMPLERS`."""

from dans.samplers.base import SAMPLERS, Negatives, NegativeSampler, StepContext
from dans.samplers.dans import DANSSampler
from dans.samplers.kbgan import KBGANSampler
from dans.samplers.mcns import MCNSSampler
from dans.samplers.nscaching import NSCachingSampler
from dans.samplers.sans import SANSSampler
from dans.samplers.simple import PopularitySampler, SelfAdversarialSampler, UniformSampler

__all__ = [
    "SAMPLERS",
    "DANSSampler",
    "KBGANSampler",
    "MCNSSampler",
    "NSCachingSampler",
    "NegativeSampler",
    "Negatives",
    "PopularitySampler",
    "SANSSampler",
    "SelfAdversarialSampler",
    "StepContext",
    "UniformSampler",
]
