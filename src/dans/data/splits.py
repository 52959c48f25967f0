"""Cutting one list of labelled triples into train, valid and test."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from dans.errors import DataError

Triple = tuple[str, str, str]


def split(
    triples: Sequence[Triple], valid: float = 0.1, test: float = 0.1, seed: int = 0
) -> tuple[list[Triple], list[Triple], list[Triple]]:
    """``triples`` shuffled with ``seed`` and cut into train, valid and test, the last two
    ``valid`` and ``test`` of them (shares, rounded down). Duplicates are dropped first.

    A valid or test triple that names an entity or a relation train does not is moved to train,
    with a warning that counts them, so that every entity and relation held out is one a model
    can learn; the held-out shares are then a little smaller than asked.
    """
    if valid < 0 or test < 0 or valid + test >= 1:
        raise DataError(f"valid ({valid}) and test ({test}) must be shares that leave train some")
    unique = list(dict.fromkeys(tuple(map(str, triple)) for triple in triples))
    if not unique:
        raise DataError("no triples to split")
    order = np.random.default_rng(seed).permutation(len(unique))
    table = np.asarray(unique, dtype=object).reshape(-1, 3)[order]
    sizes = [int(len(table) * valid), int(len(table) * test)]
    held = table[: sum(sizes)]
    train = table[sum(sizes) :]
    seen_entities = np.union1d(train[:, 0], train[:, 2])
    seen_relations = np.unique(train[:, 1])
    known = (
        np.isin(held[:, 0], seen_entities)
        & np.isin(held[:, 2], seen_entities)
        & np.isin(held[:, 1], seen_relations)
    )
    moved = int((~known).sum())
    if moved:
        warnings.warn(
            f"{moved} of {len(held)} held-out triples name entities or relations that train "
            "would not; they were moved to train",
            stacklevel=2,
        )
    in_valid = np.arange(len(held)) < sizes[0]
    train = np.concatenate([train, held[~known]])
    train_rows, valid_rows, test_rows = (
        [(h, r, t) for h, r, t in part.tolist()]
        for part in (train, held[known & in_valid], held[known & ~in_valid])
    )
    return train_rows, valid_rows, test_rows
