"""Knowledge-graph data: split files, vocabularies, the known-true index, named datasets, and
PyKEEN's datasets and triples factories."""

from dans.data.datasets import DATASETS, load_dataset
from dans.data.graph import SPLITS, KnowledgeGraph, KnownTriples
from dans.data.pykeen_datasets import from_triples_factories
from dans.data.splits import split
from dans.data.triples import read_triples

__all__ = [
    "DATASETS",
    "SPLITS",
    "KnowledgeGraph",
    "KnownTriples",
    "from_triples_factories",
    "load_dataset",
    "read_triples",
    "split",
]
