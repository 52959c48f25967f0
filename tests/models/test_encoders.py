"""The encoders' own parts: the RGCN encoder's ReLU and dropout between layers."""

import pytest
import torch

from dans.models.encoders import relu_dropout


def test_without_dropout_it_is_relu():
    x = torch.tensor([[-1.0, 0.0, 2.5], [3.0, -0.5, 1.0]])
    assert torch.equal(relu_dropout(x, 0.0), torch.relu(x))


def test_kept_entries_are_scaled_and_dropped_ones_are_zero():
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5  # all positive: every zero is a dropped entry
    out = relu_dropout(x, 0.2)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / 0.8)
    # 200,000 entries: the kept share is within 5 standard deviations (0.0045) of 0.8.
    assert kept.float().mean().item() == pytest.approx(0.8, abs=0.0045)


def test_negative_entries_stay_zero_and_the_mean_is_kept():
    torch.manual_seed(1)
    x = torch.randn(1000, 400)
    out = relu_dropout(x, 0.5)
    assert (out[x <= 0] == 0).all()
    # The mean's standard deviation is about 0.0015 against a mean of 0.4: 0.008 is 5 of them.
    assert out.mean().item() == pytest.approx(torch.relu(x).mean().item(), abs=0.008)


def test_the_gradient_flows_through_kept_positive_entries_only():
    torch.manual_seed(2)
    x = torch.randn(50, 40, requires_grad=True)
    out = relu_dropout(x, 0.3)
    out.sum().backward()
    expected = torch.where(out != 0, torch.full_like(x, 1 / 0.7), torch.zeros_like(x))
    assert torch.allclose(x.grad, expected)


def test_the_same_seed_draws_the_same_mask():
    x = torch.randn(30, 20)
    torch.manual_seed(5)
    first = relu_dropout(x, 0.4)
    torch.manual_seed(5)
    assert torch.equal(relu_dropout(x, 0.4), first)
