"""Row lookups whose gradients are reproducible on the CPU."""

from __future__ import annotations

import torch
from torch import LongTensor, Tensor

from dans.optim import gather_leaf_rows, is_row_sparse

# The bytes of gathered rows a loop over blocks holds at once. On the CPU, blocks this small are
# reused by the allocator, while a block of hundreds of MB is mapped fresh at every step and its
# page faults cost more than the arithmetic on it (NELL-995's KBGAN and NSCaching steps ran 1.9x
# and 1.2x faster); a GPU's caching allocator keeps its blocks, so there they only bound memory.
GATHER_BLOCK_BYTES = {"cpu": 4 * 2**20, "other": 64 * 2**20}


def block_rows(row_bytes: int, device: torch.device) -> int:
    """How many rows of ``row_bytes`` gathered bytes each to handle at once on ``device``."""
    budget = GATHER_BLOCK_BYTES["cpu" if device.type == "cpu" else "other"]
    return max(1, budget // max(1, row_bytes))


def gather_rows(table: Tensor, ids: LongTensor) -> Tensor:
    """``table[ids]``: table shape (N, d), ids of any shape (...) -> (..., d).

    The backward of ``index_select`` is ``index_add``, which sums in a fixed order on the CPU;
    the backward of advanced indexing accumulates in an order that depends on thread timing
    there, which would make the same seed give slightly different numbers from run to run.
    A table marked by :func:`~dans.optim.mark_row_sparse`, gathered with its gradient, is
    gathered by :func:`~dans.optim.gather_leaf_rows` instead: its gradient, once collected, is
    a sparse tensor of the rows gathered.
    """
    if is_row_sparse(table) and table.requires_grad and torch.is_grad_enabled():
        return gather_leaf_rows(table, ids)
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[-1])
