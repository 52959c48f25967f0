"""The knowledge graph: vocabularies, id triples per split, and the known-true index."""

from __future__ import annotations

import hashlib
import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import LongTensor, Tensor

from dans.data.triples import parse_triples, read_bytes
from dans.data.types import TYPES_FILE, EntityTypes, derived_types, prefix_types, read_types
from dans.errors import DataError

SPLITS = ("train", "valid", "test")


class KnownTriples:
    """Sorted index of every known-true triple, for filtered ranking and negative filtering.

    For tail queries the key is ``head * R + relation`` and the values are the true tails; for head
    queries the key is ``tail * R + relation`` and the values are the true heads. Looking up a block
    of queries is two binary searches and a ``repeat_interleave``: no Python loop over triples.
    """

    def __init__(self, triples: LongTensor, num_entities: int, num_relations: int) -> None:
        """``triples``: shape (N, 3), every known-true (head, relation, tail)."""
        self.num_entities = num_entities
        self.num_relations = num_relations
        codes = torch.unique(self._encode(triples))
        heads, rels, tails = self._decode(codes)
        self._tail_keys, self._tails = self._sorted_pairs(heads * num_relations + rels, tails)
        self._head_keys, self._heads = self._sorted_pairs(tails * num_relations + rels, heads)
        self._codes = codes

    def _encode(self, triples: LongTensor) -> LongTensor:
        heads, rels, tails = triples.unbind(-1)
        return (heads * self.num_relations + rels) * self.num_entities + tails

    def _decode(self, codes: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
        pair, tails = codes // self.num_entities, codes % self.num_entities
        return pair // self.num_relations, pair % self.num_relations, tails

    def _sorted_pairs(self, keys: LongTensor, values: LongTensor) -> tuple[LongTensor, LongTensor]:
        order = torch.argsort(keys * self.num_entities + values)
        return keys[order], values[order]

    def answers(
        self, anchors: LongTensor, relations: LongTensor, predict_head: bool
    ) -> tuple[LongTensor, LongTensor]:
        """Every known-true answer of a block of queries, as coordinates.

        ``anchors``, ``relations``: shape (Q,). For tail prediction the anchor is the head; for
        head prediction it is the tail. Returns ``(query_index, entity)``, both shape (M,): entity
        ``entity[m]`` completes query ``query_index[m]`` into a known-true triple.
        """
        keys, values = (
            (self._head_keys, self._heads) if predict_head else (self._tail_keys, self._tails)
        )
        query_keys = anchors.cpu() * self.num_relations + relations.cpu()
        starts = torch.searchsorted(keys, query_keys, side="left")
        counts = torch.searchsorted(keys, query_keys, side="right") - starts
        query_index = torch.repeat_interleave(torch.arange(len(query_keys)), counts)
        offsets = torch.cumsum(counts, 0) - counts
        positions = starts[query_index] + torch.arange(len(query_index)) - offsets[query_index]
        return query_index, values[positions]

    def contains(self, triples: LongTensor) -> torch.BoolTensor:
        """``triples``: shape (..., 3) -> shape (...): whether each triple is known-true."""
        codes = self._encode(triples.cpu())
        index = torch.searchsorted(self._codes, codes).clamp_max(len(self._codes) - 1)
        return (self._codes[index] == codes).to(triples.device)


@dataclass
class KnowledgeGraph:
    """Entity and relation vocabularies over all splits, and id triples for each split.

    ``train``, ``valid``, ``test``: LongTensor shape (n, 3) of (head, relation, tail) ids.
    """

    entity_names: list[str]
    relation_names: list[str]
    train: LongTensor
    valid: LongTensor
    test: LongTensor
    name: str = "custom"
    source: str = ""
    # SHA-256 of each split file's bytes, by split, for graphs read from files.
    checksums: dict[str, str] = field(default_factory=dict)
    entity_to_id: dict[str, int] = field(init=False, repr=False)
    relation_to_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.entity_to_id = {name: i for i, name in enumerate(self.entity_names)}
        self.relation_to_id = {name: i for i, name in enumerate(self.relation_names)}

    @property
    def num_entities(self) -> int:
        return len(self.entity_names)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    def entity_id(self, name: str) -> int:
        """The id of entity ``name``; raises :class:`DataError` when the graph has none."""
        return _lookup(self.entity_to_id, name, "entity", self.name)

    def relation_id(self, name: str) -> int:
        """The id of relation ``name``; raises :class:`DataError` when the graph has none."""
        return _lookup(self.relation_to_id, name, "relation", self.name)

    def split(self, name: str) -> LongTensor:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self, name)

    @cached_property
    def known_triples(self) -> KnownTriples:
        """Train, valid and test triples together: the filter of the filtered setting."""
        everything = torch.cat([self.train, self.valid, self.test])
        return KnownTriples(everything, self.num_entities, self.num_relations)

    @cached_property
    def train_known_triples(self) -> KnownTriples:
        """Train triples alone: what a sampler may filter against without seeing valid or test."""
        return KnownTriples(self.train, self.num_entities, self.num_relations)

    @cached_property
    def entity_types(self) -> EntityTypes:
        """The entities' types: from ``types.tsv`` beside the splits, else from names of the
        form ``type:name``, else derived from train (with a warning that says so)."""
        if self.source and (Path(self.source) / TYPES_FILE).exists():
            return read_types(Path(self.source) / TYPES_FILE, self.entity_to_id)
        found = prefix_types(self.entity_names)
        if found is not None:
            return found
        derived = derived_types(self.train, self.num_entities, self.num_relations)
        warnings.warn(
            f"{self.name}: no {TYPES_FILE} and no type: prefixes in the entity names, so entity "
            f"types were derived from the graph ({derived.source})",
            stacklevel=2,
        )
        return derived

    @cached_property
    def train_entity_counts(self) -> Tensor:
        """shape (E,): how often each entity occurs as head or tail in train."""
        return torch.bincount(self.train[:, [0, 2]].reshape(-1), minlength=self.num_entities)

    @classmethod
    def from_folder(cls, folder: Path, name: str | None = None) -> KnowledgeGraph:
        """Load ``train.txt``, ``valid.txt`` and ``test.txt`` from ``folder``.

        Ids are assigned in sorted name order over all three splits, so entities that occur only
        in valid or test are counted, as in the published entity counts.
        """
        # Each file is read once, for its triples and for its SHA-256.
        raw = {split: read_bytes(folder / f"{split}.txt") for split in SPLITS}
        splits = [parse_triples(raw[split], folder / f"{split}.txt") for split in SPLITS]
        return cls._from_labelled(
            splits,
            name=name or folder.name,
            where=[str(folder / f"{split}.txt") for split in SPLITS],
            source=str(folder.resolve()),
            checksums={split: hashlib.sha256(raw[split]).hexdigest() for split in SPLITS},
        )

    @classmethod
    def from_triples(
        cls,
        train: Sequence[tuple[str, str, str]],
        valid: Sequence[tuple[str, str, str]],
        test: Sequence[tuple[str, str, str]],
        name: str = "custom",
    ) -> KnowledgeGraph:
        """A graph from labelled ``(head, relation, tail)`` triples, one sequence per split, as
        :meth:`from_folder` reads them from files (ids in sorted name order over all three).
        :func:`split` cuts one list of triples into the three."""
        splits = [[tuple(map(str, triple)) for triple in part] for part in (train, valid, test)]
        for split, part in zip(SPLITS, splits, strict=True):
            bad = next((t for t in part if len(t) != 3 or not all(t)), None)
            if bad is not None:
                raise DataError(f"{name}: a {split} triple is not three non-empty names: {bad!r}")
        if not splits[0]:
            raise DataError(f"{name}: no train triples")
        return cls._from_labelled(splits, name=name, where=[f"{name}'s {s}" for s in SPLITS])

    @classmethod
    def _from_labelled(
        cls,
        splits: list[list[tuple[str, str, str]]],
        name: str,
        where: list[str],
        source: str = "",
        checksums: dict[str, str] | None = None,
    ) -> KnowledgeGraph:
        """The graph of three splits' labelled triples; ``where`` names each split in warnings."""
        arrays = [np.asarray(part, dtype=object).reshape(-1, 3) for part in splits]
        every = np.concatenate(arrays)
        entity_names, entity_ids = np.unique(every[:, [0, 2]], return_inverse=True)
        relation_names, relation_ids = np.unique(every[:, 1], return_inverse=True)
        entity_ids = entity_ids.reshape(-1, 2)
        ids = np.stack([entity_ids[:, 0], relation_ids.reshape(-1), entity_ids[:, 1]], axis=1)
        bounds = np.cumsum([0] + [len(part) for part in arrays])
        tensors = [
            torch.from_numpy(ids[a:b].astype(np.int64)) for a, b in itertools.pairwise(bounds)
        ]
        for split, label, triples in zip(SPLITS[1:], where[1:], tensors[1:], strict=True):
            _warn_unseen(label, split, triples, tensors[0])
        return cls(
            entity_names=entity_names.tolist(),
            relation_names=relation_names.tolist(),
            train=tensors[0],
            valid=tensors[1],
            test=tensors[2],
            name=name,
            source=source,
            checksums=checksums or {},
        )


def _lookup(vocabulary: dict[str, int], name: str, kind: str, graph: str) -> int:
    try:
        return vocabulary[name]
    except KeyError:
        raise DataError(f"unknown {kind} {name!r}: it does not occur in {graph}") from None


def _warn_unseen(path: Path | str, split: str, triples: LongTensor, train: LongTensor) -> None:
    """Warn, with counts, when triples of ``split`` name entities or relations that train never
    does: no model can learn their embeddings, so their ranks are near chance."""
    entities = torch.unique(train[:, [0, 2]])
    relations = torch.unique(train[:, 1])
    unseen_entities = ~torch.isin(triples[:, [0, 2]], entities)
    unseen_relations = ~torch.isin(triples[:, 1], relations)
    affected = int((unseen_entities.any(1) | unseen_relations).sum())
    if affected:
        warnings.warn(
            f"{path}: {affected} of {len(triples)} {split} triples name entities or relations "
            f"that train never does ({len(torch.unique(triples[:, [0, 2]][unseen_entities]))} "
            f"entities, {len(torch.unique(triples[:, 1][unseen_relations]))} relations); they "
            "are kept and ranked like the others",
            stacklevel=3,
        )
