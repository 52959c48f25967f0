"""Encoders, decoders and the model that joins them."""

from dans.models.context import BuildContext
from dans.models.decoders import (
    DECODERS,
    ComplEx,
    Decoder,
    DistanceOptions,
    DistMult,
    RotatE,
    TransE,
)
from dans.models.encoders import (
    ENCODERS,
    Encoder,
    LookupEncoder,
    LookupOptions,
    RGCNEncoder,
    RGCNOptions,
)
from dans.models.model import KGModel
from dans.models.rgcn import RelationalGraph, RGCNLayer

__all__ = [
    "DECODERS",
    "ENCODERS",
    "BuildContext",
    "ComplEx",
    "Decoder",
    "DistMult",
    "DistanceOptions",
    "Encoder",
    "KGModel",
    "LookupEncoder",
    "LookupOptions",
    "RGCNEncoder",
    "RGCNLayer",
    "RGCNOptions",
    "RelationalGraph",
    "RotatE",
    "TransE",
]
