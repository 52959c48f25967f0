"""Guarded optimizer steps: a non-finite loss or gradient leaves parameters and optimizer alone."""

import torch

from dans.optim import guarded_step


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
