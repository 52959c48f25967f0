"""benchmarks/step_floor.py: the operator counter against hand-worked counts."""

import torch
from scripts import load_script

step_floor = load_script("step_floor")


def test_products_count_two_operations_per_multiply_add_and_views_move_nothing():
    a, b = torch.ones(3, 4), torch.ones(4, 5)
    sparse = torch.eye(3).to_sparse_csr()  # 3 stored entries, as message passing stores them
    with step_floor.OperatorCounter() as counter:
        a @ b  # 3 * 4 * 5 multiply-adds; reads 12 + 20 floats, writes 15
    assert (counter.flops, counter.bytes) == (2 * 60, 4 * (12 + 20 + 15))
    with step_floor.OperatorCounter() as counter:
        torch.bmm(a[None].expand(2, 3, 4), b[None].expand(2, 4, 5))
    assert counter.flops == 2 * 2 * 60
    with step_floor.OperatorCounter() as counter:
        sparse @ a  # one multiply-add per stored entry and column
    assert counter.flops == 2 * 3 * 4
    with step_floor.OperatorCounter() as counter:
        a.view(4, 3).t()
    assert (counter.flops, counter.bytes) == (0, 0)
