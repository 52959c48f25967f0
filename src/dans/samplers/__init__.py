"""Negative samplers behind one interface, resolved by name from :data:`SAMPLERS`; each with
its own options class where it has settings."""

from dans.samplers.all_entities import AllEntitiesOptions, AllEntitiesSampler
from dans.samplers.base import SAMPLERS, Negatives, NegativeSampler, StepContext
from dans.samplers.cake import CAKEOptions, CAKESampler
from dans.samplers.dans import DANSOptions, DANSSampler
from dans.samplers.kbgan import KBGANOptions, KBGANSampler
from dans.samplers.mcns import MCNSOptions, MCNSSampler
from dans.samplers.nscaching import NSCachingOptions, NSCachingSampler
from dans.samplers.sans import SANSOptions, SANSSampler
from dans.samplers.simple import (
    PopularitySampler,
    SelfAdversarialOptions,
    SelfAdversarialSampler,
    UniformOptions,
    UniformSampler,
)
from dans.samplers.smile import SMiLEOptions, SMiLESampler

__all__ = [
    "SAMPLERS",
    "AllEntitiesOptions",
    "AllEntitiesSampler",
    "CAKEOptions",
    "CAKESampler",
    "DANSOptions",
    "DANSSampler",
    "KBGANOptions",
    "KBGANSampler",
    "MCNSOptions",
    "MCNSSampler",
    "NSCachingOptions",
    "NSCachingSampler",
    "NegativeSampler",
    "Negatives",
    "PopularitySampler",
    "SANSOptions",
    "SANSSampler",
    "SMiLEOptions",
    "SMiLESampler",
    "SelfAdversarialOptions",
    "SelfAdversarialSampler",
    "StepContext",
    "UniformOptions",
    "UniformSampler",
]
