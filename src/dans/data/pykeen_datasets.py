"""PyKEEN's datasets and triples factories as knowledge graphs: ``--dataset pykeen:NAME``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch

from dans.data.graph import SPLITS, KnowledgeGraph
from dans.errors import DataError

if TYPE_CHECKING:
    from pykeen.triples import CoreTriplesFactory

PREFIX = "pykeen:"


def is_pykeen_dataset(name: str) -> bool:
    return name.lower().startswith(PREFIX)


def load_pykeen_dataset(name: str) -> KnowledgeGraph:
    """PyKEEN's dataset ``pykeen:NAME`` (``pykeen:Nations``), with its own splits, ids and
    labels; PyKEEN downloads the ones it does not ship into its own cache."""
    wanted = name[len(PREFIX) :]
    try:
        from pykeen.datasets import dataset_resolver
    except ImportError:
        raise DataError(f"--dataset {name} needs PyKEEN: pip install 'dans-kge[pykeen]'") from None
    try:
        dataset_class = dataset_resolver.lookup(wanted)
    except (KeyError, ValueError):
        known = ", ".join(sorted(dataset_resolver.options))
        raise DataError(f"unknown PyKEEN dataset {wanted!r}; PyKEEN has: {known}") from None
    try:
        dataset = dataset_class()
    except OSError as exc:  # a dataset PyKEEN must download, offline
        raise DataError(f"PyKEEN cannot load {wanted!r} ({exc})") from None
    return from_triples_factories(
        dataset.training,
        dataset.validation,
        dataset.testing,
        name=f"{PREFIX}{dataset_class.__name__}",
    )


def from_triples_factories(
    training: CoreTriplesFactory,
    validation: CoreTriplesFactory | None,
    testing: CoreTriplesFactory,
    name: str = "pykeen",
) -> KnowledgeGraph:
    """A graph with PyKEEN's own ids: entity ``i`` is PyKEEN's entity ``i``, named by its label
    (by its id where the factory has no labels). The splits must share the training factory's
    ids, as a PyKEEN dataset's do; a missing validation split is refused. Each split's checksum
    is that of its id triples together with the labels, so that other triples or other names
    change it."""
    if validation is None:
        raise DataError(f"{name}: has no validation split, which early stopping needs")
    factories = dict(zip(SPLITS, (training, validation, testing), strict=True))
    entities, relations = _labels(training, "entity"), _labels(training, "relation")
    for split, factory in factories.items():
        if factory is not training and (
            (factory.num_entities, factory.num_relations)
            != (training.num_entities, training.num_relations)
            or _labels(factory, "entity") != entities
        ):
            raise DataError(f"{name}: the {split} split has other ids than the training split")
    tensors = {split: factory.mapped_triples.to(torch.long) for split, factory in factories.items()}
    vocabulary = hashlib.sha256("\n".join([*entities, "", *relations]).encode()).digest()
    return KnowledgeGraph(
        entity_names=entities,
        relation_names=relations,
        name=name,
        checksums={
            split: hashlib.sha256(vocabulary + triples.numpy().tobytes()).hexdigest()
            for split, triples in tensors.items()
        },
        **tensors,
    )


def _labels(factory: CoreTriplesFactory, kind: str) -> list[str]:
    """The factory's labels of its entities or relations in id order; ids as text without any."""
    count = factory.num_entities if kind == "entity" else factory.num_relations
    by_id = getattr(factory, f"{kind}_id_to_label", None)
    return [by_id[i] for i in range(count)] if by_id else [str(i) for i in range(count)]
