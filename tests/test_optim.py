"""Guarded optimizer steps: a non-finite loss or gradient leaves parameters and optimizer alone;
row-sparse tables take a lazy Adam that matches torch's SparseAdam."""

import torch

from dans.models.gather import gather_rows
from dans.optim import (
    LazyAdam,
    SplitAdam,
    clip_gradients,
    collect_row_gradients,
    guarded_step,
    mark_row_sparse,
    model_optimizer,
)
from dans.training.schedule import set_lr


def _setup():
    weight = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    return weight, optimizer


def test_a_finite_step_is_taken():
    weight, optimizer = _setup()
    assert guarded_step(optimizer, (weight**2).sum())
    assert not torch.equal(weight.detach(), torch.tensor([1.0, 2.0]))


def test_a_nan_loss_is_skipped_and_changes_nothing():
    weight, optimizer = _setup()
    guarded_step(optimizer, (weight**2).sum())
    before = weight.detach().clone()
    state = {k: v.clone() for k, v in optimizer.state[weight].items()}
    assert not guarded_step(optimizer, (weight * torch.nan).sum())
    assert torch.equal(weight.detach(), before)
    for key, value in optimizer.state[weight].items():
        assert torch.equal(value, state[key]), key


def test_an_infinite_gradient_with_a_finite_loss_is_skipped():
    zero = torch.nn.Parameter(torch.tensor([0.0]))
    optimizer = torch.optim.SGD([zero], lr=0.1)
    # d sqrt(x) / dx is infinite at 0 while sqrt(0) is finite.
    assert not guarded_step(optimizer, zero.sqrt().sum())
    assert zero.item() == 0.0
    assert zero.grad is None


def test_clipping_bounds_the_update():
    weight = torch.nn.Parameter(torch.tensor([0.0, 0.0]))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    # Gradient (300, 400) has norm 500; clipped to norm 1 the SGD step is (-0.6, -0.8).
    assert guarded_step(optimizer, (weight * torch.tensor([300.0, 400.0])).sum(), grad_clip=1.0)
    torch.testing.assert_close(weight.detach(), torch.tensor([-0.6, -0.8]))


def _row_sparse_table(rows=6, dim=3, seed=0):
    torch.manual_seed(seed)
    table = torch.nn.Parameter(torch.randn(rows, dim))
    mark_row_sparse(table)
    return table


def _loss(table, ids, weights):
    return (gather_rows(table, ids) * weights).sum()


def test_lazy_adam_moves_the_rows_torchs_sparse_adam_moves_and_no_other():
    ours, theirs = _row_sparse_table(), torch.nn.Parameter(_row_sparse_table().detach().clone())
    lazy, reference = LazyAdam([ours], lr=0.1), torch.optim.SparseAdam([theirs], lr=0.1)
    # Row 1 gathered twice in the first step; rows 0 and 5 never.
    steps = [torch.tensor([1, 1, 3]), torch.tensor([2, 3]), torch.tensor([4, 1, 2, 2])]
    for ids in steps:
        weights = torch.randn(len(ids), 3)
        before = ours.detach().clone()
        for table, optimizer, sparse in ((ours, lazy, False), (theirs, reference, True)):
            optimizer.zero_grad()
            looked_up = torch.nn.functional.embedding(ids, table, sparse=True) if sparse else None
            loss = (looked_up * weights).sum() if sparse else _loss(table, ids, weights)
            loss.backward()
            collect_row_gradients([table])
            assert table.grad.is_sparse
            optimizer.step()
        torch.testing.assert_close(ours.detach(), theirs.detach())
        untouched = [row for row in range(6) if row not in ids.tolist()]
        assert torch.equal(ours.detach()[untouched], before[untouched])
    assert torch.equal(ours.detach()[[0, 5]], _row_sparse_table().detach()[[0, 5]])


def test_split_adam_steps_both_parts_and_its_state_round_trips():
    table, dense = _row_sparse_table(), torch.nn.Parameter(torch.ones(2))
    optimizer = model_optimizer([table, dense], lr=0.1)
    assert isinstance(optimizer, SplitAdam)
    assert isinstance(model_optimizer([dense], lr=0.1), torch.optim.Adam)
    assert guarded_step(optimizer, _loss(table, torch.tensor([2, 4]), 1.0) + dense.sum())
    assert not torch.equal(dense.detach(), torch.ones(2))
    again = SplitAdam([table, dense], lr=0.1)
    again.load_state_dict(optimizer.state_dict())
    assert again.parts[1].state[table]["step"] == 1
    set_lr(optimizer, 0.5)
    assert [group["lr"] for group in optimizer.param_groups] == [0.5, 0.5]


def test_clipping_a_row_sparse_gradient_counts_a_row_gathered_twice_once():
    table = _row_sparse_table()
    # Row 2 gathered twice with weight 3 each: its gradient row is (6, 6, 6); row 4 gets (2, 2, 2).
    weights = torch.tensor([[3.0], [3.0], [2.0]]).expand(3, 3)
    _loss(table, torch.tensor([2, 2, 4]), weights).backward()
    collect_row_gradients([table])
    norm = clip_gradients([table], max_norm=1.0)
    torch.testing.assert_close(norm, torch.tensor((3 * 36 + 3 * 4) ** 0.5))
    clipped = table.grad.to_dense()
    torch.testing.assert_close(clipped.norm(), torch.tensor(1.0), rtol=1e-5, atol=1e-5)
    assert table.grad.is_coalesced() and clipped[[0, 1, 3, 5]].abs().sum() == 0


def test_the_gathers_of_a_step_give_one_gradient_summed_by_row_as_dense_indexing_would():
    table = _row_sparse_table(rows=7, dim=2)
    dense = torch.nn.Parameter(table.detach().clone())
    # Three gathers in one loss, rows 1 and 4 reached by more than one of them.
    gathers = [torch.tensor([1, 4]), torch.tensor([[4, 6], [1, 1]]), torch.tensor([0])]
    weights = [torch.randn(*ids.shape, 2) for ids in gathers]
    for t in (table, dense):
        pairs = zip(gathers, weights, strict=True)
        sum((gather_rows(t, ids) * w).sum() for ids, w in pairs).backward()
    assert table.grad is None  # until collected
    collect_row_gradients([table])
    assert table.grad.is_coalesced() and table.grad._indices().tolist() == [[0, 1, 4, 6]]
    torch.testing.assert_close(table.grad.to_dense(), dense.grad)


def test_gathers_without_a_gradient_are_forgotten_and_no_grad_gathers_are_not_kept():
    table = _row_sparse_table()
    gather_rows(table, torch.tensor([5]))  # a step whose loss was never backpropagated
    with torch.no_grad():
        assert not gather_rows(table, torch.tensor([3])).requires_grad
    _loss(table, torch.tensor([2]), 1.0).backward()
    collect_row_gradients([table])
    assert table.grad._indices().tolist() == [[2]]
    collect_row_gradients([table])  # nothing new: the gradient stays
    assert table.grad._indices().tolist() == [[2]]
