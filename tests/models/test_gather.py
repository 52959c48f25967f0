"""Row lookups: the same rows as indexing, and the block sizes of loops over gathered rows."""

import torch

from dans.models.gather import block_rows, gather_rows
from dans.optim import collect_row_gradients, mark_row_sparse


def test_gather_rows_is_indexing_in_any_shape():
    table = torch.arange(12.0).view(4, 3)
    ids = torch.tensor([[3, 0], [1, 3]])
    assert torch.equal(gather_rows(table, ids), table[ids])


def test_blocks_hold_4_mb_on_the_cpu_64_mb_elsewhere_and_at_least_one_row():
    row = 400 * 50 * 4  # KBGAN's candidates of one positive on NELL-995: 80,000 bytes
    assert block_rows(row, torch.device("cpu")) == 4 * 2**20 // row == 52
    assert block_rows(row, torch.device("cuda")) == 64 * 2**20 // row == 838
    assert block_rows(2**30, torch.device("cpu")) == 1


def test_a_row_sparse_table_gathers_the_same_rows_with_a_gradient_of_those_rows():
    dense = torch.nn.Parameter(torch.randn(7, 3))
    sparse = torch.nn.Parameter(dense.detach().clone())
    mark_row_sparse(sparse)
    ids = torch.tensor([[1, 4], [4, 6]])
    weights = torch.randn(2, 2, 3)
    for table in (dense, sparse):
        (gather_rows(table, ids) * weights).sum().backward()
    collect_row_gradients([sparse])
    assert torch.equal(gather_rows(sparse, ids), gather_rows(dense, ids))
    assert sparse.grad.is_sparse and sparse.grad._nnz() == 3  # one stored row per row reached
    torch.testing.assert_close(sparse.grad.to_dense(), dense.grad)
    # A detached copy is a plain tensor again.
    assert not gather_rows(sparse.detach(), ids).requires_grad
