"""Optimiser steps, shared by the base model's training and the samplers that learn: the
optimiser every part uses, and a step that refuses a non-finite loss or gradient."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from dans.distributed import all_true, average_gradients


def adam(parameters: Iterable[nn.Parameter], lr: float, beta1: float = 0.9) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over all the parameters per step instead of a dozen
    small operations per tensor, a large share of a DANS generator step on the CPU. ``beta1``:
    the decay of the first moment (0.9, Adam's default; GANs often use 0.5)."""
    return torch.optim.Adam(parameters, lr=lr, betas=(beta1, 0.999), fused=True)


def guarded_step(
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    grad_clip: float = 0.0,
    average: bool = True,
) -> bool:
    """Backpropagate ``loss`` and step ``optimizer``; skip the step when anything is not finite.

    The gradient norm of the optimizer's parameters is clipped to ``grad_clip`` (0: no clipping,
    but the norm is still checked). Returns whether the step was taken; a skipped step leaves the
    parameters and the optimizer's state as they were.

    In data-parallel training every process takes the same decision: the step is skipped when
    the loss is not finite on any process. With ``average`` the gradients are averaged over the
    processes before the step (leave it off for a model that DistributedDataParallel averages).
    """
    optimizer.zero_grad(set_to_none=True)
    if not all_true(bool(torch.isfinite(loss.detach()).item()), loss.device):
        return False
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    if average:
        average_gradients(parameters)
    # Gradients are now equal on every process, so their norm and the decision below are too.
    norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else math.inf)
    if not torch.isfinite(norm).item():
        optimizer.zero_grad(set_to_none=True)
        return False
    optimizer.step()
    return True
