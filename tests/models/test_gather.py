"""Row lookups: the same rows as indexing, and the block sizes of loops over gathered rows."""

import torch

from dans.models.gather import block_rows, gather_rows


def test_gather_rows_is_indexing_in_any_shape():
    table = torch.arange(12.0).view(4, 3)
    ids = torch.tensor([[3, 0], [1, 3]])
    assert torch.equal(gather_rows(table, ids), table[ids])


def test_blocks_hold_4_mb_on_the_cpu_64_mb_elsewhere_and_at_least_one_row():
    row = 400 * 50 * 4  # KBGAN's candidates of one positive on NELL-995: 80,000 bytes
    assert block_rows(row, torch.device("cpu")) == 4 * 2**20 // row == 52
    assert block_rows(row, torch.device("cuda")) == 64 * 2**20 // row == 838
    assert block_rows(2**30, torch.device("cpu")) == 1
