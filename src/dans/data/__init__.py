"""Knowledge-graph data: split files, vocabularies, the known-true index, named datasets."""

from dans.data.datasets import DATASETS, load_dataset
from dans.data.graph import SPLITS, KnowledgeGraph, KnownTriples
from dans.data.triples import read_triples

__all__ = ["DATASETS", "SPLITS", "KnowledgeGraph", "KnownTriples", "load_dataset", "read_triples"]
