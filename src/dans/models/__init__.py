"""Encoders, decoders and the model that joins them."""

from dans.models.decoders import DECODERS, ComplEx, Decoder, DistMult, RotatE, TransE
from dans.models.encoders import ENCODERS, Encoder, LookupEncoder, RGCNEncoder
from dans.models.model import KGModel
from dans.models.rgcn import RelationalGraph, RGCNLayer

__all__ = [
    "DECODERS",
    "ENCODERS",
    "ComplEx",
    "Decoder",
    "DistMult",
    "Encoder",
    "KGModel",
    "LookupEncoder",
    "RGCNEncoder",
    "RGCNLayer",
    "RelationalGraph",
    "RotatE",
    "TransE",
]
