"""Optimiser steps, shared by the base model's training and the samplers that learn: the
optimiser every part uses, and a step that refuses a non-finite loss or gradient."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import LongTensor, Tensor, nn

from dans.distributed import all_true, average_gradients

# The attribute that marks a parameter table as updated by rows (see mark_row_sparse).
_ROW_SPARSE = "dans_row_sparse"
# The attribute that holds a row-sparse table's gathers since their gradients were collected.
_GATHERS = "dans_row_gathers"


def mark_row_sparse(table: nn.Parameter) -> None:
    """Have ``table`` gathered so that its gradient is row-sparse, the rows gathered and not
    the table (:func:`gather_leaf_rows`), and updated by :class:`LazyAdam`."""
    setattr(table, _ROW_SPARSE, True)


def is_row_sparse(table: Tensor) -> bool:
    return getattr(table, _ROW_SPARSE, False)


def gather_leaf_rows(table: nn.Parameter, ids: LongTensor) -> Tensor:
    """``table[ids]`` for a row-sparse table: ids of any shape (...) -> (..., d), gathered as a
    leaf of its own whose gradient :func:`collect_row_gradients` later hands to the table.

    Autograd would sum the sparse gradients of a table's several gathers in a step (positives,
    negatives, penalty) one addition at a time, each copying every row before it into freshly
    zeroed memory: more than half of a million-entity step. Collected at once, each gather's
    rows are added where they belong in one sum by row.
    """
    flat = ids.reshape(-1)
    rows = table.detach().index_select(0, flat).requires_grad_()
    if not hasattr(table, _GATHERS):
        setattr(table, _GATHERS, [])
    getattr(table, _GATHERS).append((flat, rows))
    return rows.view(*ids.shape, table.shape[-1])


def collect_row_gradients(parameters: Iterable[Tensor]) -> None:
    """Give each row-sparse table among ``parameters`` the gradient its gathers received since
    the last collection (added to the one it has): a coalesced sparse tensor, shape (N, d),
    of the rows reached, summed. The gathers are forgotten, those that received none too."""
    for table in parameters:
        gathers = getattr(table, _GATHERS, None)
        if not gathers:
            continue
        reached = [(ids, rows.grad) for ids, rows in gathers if rows.grad is not None]
        gathers.clear()
        if not reached:
            continue
        rows, inverse = torch.unique(torch.cat([ids for ids, _ in reached]), return_inverse=True)
        summed = reached[0][1].new_zeros(len(rows), table.shape[1])
        # Each gather's rows added where they belong, the gathers never concatenated.
        pieces = inverse.split([len(ids) for ids, _ in reached])
        for piece, (_, values) in zip(pieces, reached, strict=True):
            summed.index_add_(0, piece, values.reshape(len(piece), -1))
        grad = torch.sparse_coo_tensor(
            rows[None], summed, table.shape, is_coalesced=True, check_invariants=False
        )
        table.grad = grad if table.grad is None else coalesce_rows(table.grad + grad)


def adam(parameters: Iterable[nn.Parameter], lr: float, beta1: float = 0.9) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over all the parameters per step instead of a dozen
    small operations per tensor, a large share of a DANS generator step on the CPU. ``beta1``:
    the decay of the first moment (0.9, Adam's default; GANs often use 0.5)."""
    return torch.optim.Adam(parameters, lr=lr, betas=(beta1, 0.999), fused=True)


def coalesce_rows(grad: Tensor) -> Tensor:
    """A row-sparse gradient (shape (N, d), rows stored once or many times) with each row
    stored once, its values summed: ``Tensor.coalesce`` by a ``unique`` of the row ids and one
    ``index_add``, which took less time on the CPU than its sort of the stored entries in a
    profile of a million-entity step."""
    if grad.is_coalesced():
        return grad
    ids, values = grad._indices()[0], grad._values()
    rows, inverse = torch.unique(ids, return_inverse=True)
    summed = values.new_zeros(len(rows), values.shape[1]).index_add_(0, inverse, values)
    return torch.sparse_coo_tensor(
        rows[None], summed, grad.shape, is_coalesced=True, check_invariants=False
    )


class LazyAdam(torch.optim.Optimizer):
    """Adam over the rows a row-sparse gradient holds: those rows and their moments move, the
    others stay as they are (the update of torch's ``SparseAdam``, with the step counted per
    table). Its cost is that of the rows a step touches: the moments are read and written by
    row, and nothing of the table's size is made."""

    def __init__(
        self,
        parameters: Iterable[nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(parameters, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            collect_row_gradients(group["params"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = coalesce_rows(p.grad)
                rows, values = grad._indices()[0], grad._values()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                mean = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
                square = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
                square.addcmul_(values, values, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, mean)
                state["exp_avg_sq"].index_copy_(0, rows, square)
                step_size = group["lr"] * math.sqrt(1 - beta2 ** state["step"])
                step_size /= 1 - beta1 ** state["step"]
                update = mean.div_(square.sqrt_().add_(group["eps"])).mul_(-step_size)
                p.index_add_(0, rows, update)


class SplitAdam:
    """:func:`adam` for the dense parameters and :class:`LazyAdam` for the row-sparse tables
    among them (see :func:`mark_row_sparse`), so that a step costs what it touches. It offers
    what the trainer uses of an optimizer: ``param_groups`` (both parts'), ``zero_grad``,
    ``step`` and the state dicts."""

    def __init__(self, parameters: Iterable[nn.Parameter], lr: float) -> None:
        parameters = list(parameters)
        self.parts: list[torch.optim.Optimizer] = [
            adam([p for p in parameters if not is_row_sparse(p)], lr),
            LazyAdam([p for p in parameters if is_row_sparse(p)], lr),
        ]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for part in self.parts for group in part.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for part, own in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(own)


Optimizer = torch.optim.Optimizer | SplitAdam


def model_optimizer(parameters: Iterable[nn.Parameter], lr: float) -> Optimizer:
    """:func:`adam`, or :class:`SplitAdam` where a parameter is a row-sparse table."""
    parameters = list(parameters)
    if any(is_row_sparse(p) for p in parameters):
        return SplitAdam(parameters, lr)
    return adam(parameters, lr)


def clip_gradients(parameters: list[nn.Parameter], max_norm: float) -> Tensor:
    """Clip the gradients' joint norm to ``max_norm`` and return the norm before clipping, as
    ``clip_grad_norm_`` does, for row-sparse gradients too (coalesced first, so that a row
    gathered twice counts once, summed)."""
    if not any(p.grad is not None and p.grad.is_sparse for p in parameters):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    values = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = coalesce_rows(p.grad)
            values.append(p.grad._values())
        else:
            values.append(p.grad)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in values]))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for v in values:
            v.mul_(scale)
    return norm


def guarded_step(
    optimizer: Optimizer,
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
    collect_row_gradients(parameters)
    if average:
        average_gradients(parameters)
    # Gradients are now equal on every process, so their norm and the decision below are too.
    norm = clip_gradients(parameters, grad_clip if grad_clip > 0 else math.inf)
    if not torch.isfinite(norm).item():
        optimizer.zero_grad(set_to_none=True)
        return False
    optimizer.step()
    return True
