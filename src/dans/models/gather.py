"""Row lookups whose gradients are reproducible on the CPU."""

from __future__ import annotations

from torch import LongTensor, Tensor

# The bytes of gathered rows a loop over blocks holds at once. Blocks this small are reused by
# the allocator; a block of hundreds of MB is mapped fresh at every step, and its page faults cost
# more than the arithmetic on it (NELL-995's KBGAN and NSCaching steps: 1.9x and 1.2x faster).
GATHER_BLOCK_BYTES = 4 * 2**20


def gather_rows(table: Tensor, ids: LongTensor) -> Tensor:
    """``table[ids]``: table shape (N, d), ids of any shape (...) -> (..., d).

    The backward of ``index_select`` is ``index_add``, which sums in a fixed order on the CPU;
    the backward of advanced indexing accumulates in an order that depends on thread timing
    there, which would make the same seed give slightly different numbers from run to run.
    """
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[-1])
