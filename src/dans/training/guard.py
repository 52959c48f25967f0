"""Optimizer steps that refuse to apply a non-finite loss or gradient."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def guarded_step(optimizer: torch.optim.Optimizer, loss: Tensor, grad_clip: float = 0.0) -> bool:
    """Backpropagate ``loss`` and step ``optimizer``; skip the step when anything is not finite.

    The gradient norm of the optimizer's parameters is clipped to ``grad_clip`` (0: no clipping,
    but the norm is still checked). Returns whether the step was taken; a skipped step leaves the
    parameters and the optimizer's state as they were.
    """
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss.detach()).item():
        return False
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else math.inf)
    if not torch.isfinite(norm).item():
        optimizer.zero_grad(set_to_none=True)
        return False
    optimizer.step()
    return True
