"""DANS, the paper's sampler: its networks and the sampler that trains and uses them."""

from dans.samplers.dans.sampler import DANSOptions, DANSSampler

__all__ = ["DANSOptions", "DANSSampler"]
