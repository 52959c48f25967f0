"""Row lookups whose gradients are reproducible on the CPU."""

from __future__ import annotations

from torch import LongTensor, Tensor


def gather_rows(table: Tensor, ids: LongTensor) -> Tensor:
    """``table[ids]``: table shape (N, d), ids of any shape (...) -> (..., d).

    The backward of ``index_select`` is ``index_add``, which sums in a fixed order on the CPU;
    the backward of advanced indexing accumulates in an order that depends on thread timing
    there, which would make the same seed give slightly different numbers from run to run.
    """
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[-1])
