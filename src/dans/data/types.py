"""Entity types (concepts) of a graph, for the samplers that use them (CAKE): from a
``types.tsv`` beside the splits, from names of the form ``type:name`` (NELL-995), or derived from
the graph itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import BoolTensor, LongTensor

from dans.errors import DataError

TYPES_FILE = "types.tsv"
# Clusters of derived types: about sqrt(E / 2), the usual rule of thumb for k-means, within
# these bounds.
MIN_DERIVED, MAX_DERIVED = 2, 1000
# Above this many entities the types are clustered by mini-batch k-means: full k-means over a
# million signatures with its hundreds of clusters runs for hours, mini-batches for a minute.
FULL_KMEANS_ENTITIES = 100_000


@dataclass(frozen=True)
class EntityTypes:
    """Which types each entity has: ``pairs``, shape (M, 2), of (entity id, type id), an entity
    with any number of types (none included); ``names``, the type names by id; ``source``, in a
    few words, where they came from."""

    names: list[str]
    pairs: LongTensor
    source: str

    def membership(self, num_entities: int) -> BoolTensor:
        """shape (E, T): whether entity e has type t."""
        matrix = torch.zeros(num_entities, len(self.names), dtype=torch.bool)
        matrix[self.pairs[:, 0], self.pairs[:, 1]] = True
        return matrix


def read_types(path: Path, entity_to_id: dict[str, int]) -> EntityTypes:
    """``path``: one ``entity<TAB>type`` per line (an entity may have several lines); an entity
    the graph lacks, or a line without exactly two fields, is refused naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    entities, types = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not all(field.strip() for field in fields):
            raise DataError(f"{path}:{number}: expected entity<TAB>type, got {line[:60]!r}")
        entity, kind = (field.strip() for field in fields)
        if entity not in entity_to_id:
            raise DataError(f"{path}:{number}: entity {entity[:60]!r} is in no split")
        entities.append(entity_to_id[entity])
        types.append(kind)
    if not entities:
        raise DataError(f"{path}: names no types")
    return _pairs(entities, types, f"{path.name}")


def prefix_types(entity_names: list[str]) -> EntityTypes | None:
    """Types from names of the form ``type:name`` (NELL-995's ``academicfield:physics``), when
    every entity's name has one; None otherwise."""
    prefixes = [name.split(":", 1)[0] if ":" in name else "" for name in entity_names]
    if not entity_names or not all(prefixes):
        return None
    return _pairs(list(range(len(entity_names))), prefixes, "the prefixes of entity names")


def derived_types(train: LongTensor, num_entities: int, num_relations: int) -> EntityTypes:
    """One type per entity, by k-means over its relation signature: the share of its train
    triples that has each relation with it as head, and as tail (2R features). Entities with
    the same relations in the same roles fall together, as entities of one type do; k is about
    sqrt(E / 2). Seeded, so the same graph gets the same types. Graphs of more than
    :data:`FULL_KMEANS_ENTITIES` entities are clustered by mini-batches."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    counts = torch.zeros(num_entities, 2 * num_relations, dtype=torch.float64)
    ones = torch.ones(len(train), dtype=torch.float64)
    counts.index_put_((train[:, 0], train[:, 1]), ones, accumulate=True)
    counts.index_put_((train[:, 2], num_relations + train[:, 1]), ones, accumulate=True)
    # In place: at a million entities a copy is another 1.6 GB.
    signatures = counts.div_(counts.sum(1, keepdim=True).clamp_min(1.0))
    k = min(num_entities, max(MIN_DERIVED, min(MAX_DERIVED, round(math.sqrt(num_entities / 2)))))
    clustering = (
        KMeans(n_clusters=k, n_init=10, random_state=0)
        if num_entities <= FULL_KMEANS_ENTITIES
        else MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=10_000, random_state=0)
    )
    labels = clustering.fit_predict(signatures.numpy())
    return _pairs(
        list(range(num_entities)),
        [f"cluster{label}" for label in labels.tolist()],
        f"{k} clusters of the entities' relation signatures",
    )


def _pairs(entities: list[int], types: list[str], source: str) -> EntityTypes:
    """(entity, type) pairs with the type names given ids in sorted order, each pair once."""
    names, type_ids = np.unique(np.asarray(types, dtype=object).astype(str), return_inverse=True)
    pairs = torch.unique(
        torch.stack([torch.tensor(entities), torch.from_numpy(type_ids.reshape(-1))], 1), dim=0
    )
    return EntityTypes(names.tolist(), pairs.long(), source)
