"""Data-parallel training on ``torch.distributed``: the process group, and the collectives the
trainer, the samplers and evaluation share.

Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
address), every process trains the same model on its own shard of the positives. The base model
is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; the samplers' own networks
average their gradients here; everything else that a sampler learns without gradients is
broadcast from rank 0 after every epoch. A process started without ``torchrun`` is a world of
one, and none of this runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dans.errors import DansError
from dans.sealed import first_line


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process is rank 0, the one that writes and prints."""
        return self.rank == 0


def world() -> World:
    """The process group this process trains in, or a world of one."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """The rank ``torchrun`` gave this process (0 when it did not start it), known before the
    process joins its group."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def start(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` set up: gloo on the CPU, NCCL on GPUs, where each
    process takes the GPU of its ``LOCAL_RANK``. Returns the device this process trains on."""
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise DansError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                "start at most one process per GPU"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop() -> None:
    """Leave the process group once every process has reached this point: one that tore the
    group down while another still used it could abort both.

    A collective barrier alone is not enough: a process returns from it once its own part is
    done, and shutting its connections down then can catch a peer still finishing the same
    barrier. So each process also checks in through the rendezvous store, which the
    connections do not carry, and none shuts down before every one has left the barrier.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        store = dist.distributed_c10d._get_default_store()
        here = world()
        store.set(f"dans/stopped/{here.rank}", "1")
        store.wait([f"dans/stopped/{rank}" for rank in range(here.size)])
        dist.destroy_process_group()


# The rendezvous store's key under which the first process to fail leaves its error.
ERROR_KEY = "dans/error"


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Do a command's work in the process group ``torchrun`` set up (if any), then leave it:
    together when every process got to the end (:func:`stop`), at once when one failed.

    The process that fails first leaves its error in the rendezvous store, which outlives it,
    and leaves without waiting for the others; each of them fails in its next collective,
    finds that error and ends with it. So an error only one process sees (a folder only rank 0
    writes, a full disk) ends every process within seconds instead of leaving the others
    waiting in a collective until the backend's timeout.
    """
    try:
        yield
    except BaseException as exc:
        first = _leave_failed(str(exc) if isinstance(exc, DansError) else first_line(exc))
        if first is not None and not _is_own(first, exc):
            raise DansError(first) from None
        raise
    stop()


def _leave_failed(message: str) -> str | None:
    """Leave the store this process's error unless another one's is there; returns the first
    error left (None outside a process group, or where the store is gone too)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    try:
        store = dist.distributed_c10d._get_default_store()
        first = store.compare_set(ERROR_KEY, "", message)
    except (RuntimeError, ValueError):  # the store's host is gone as well
        return None
    return first.decode(errors="replace") if isinstance(first, bytes) else str(first)


def _is_own(first: str, exc: BaseException) -> bool:
    return first == (str(exc) if isinstance(exc, DansError) else first_line(exc))


def all_true(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process (a world of one: ``flag``)."""
    if world().size == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def average_gradients(parameters: list[Tensor]) -> None:
    """Average the gradients of ``parameters`` over the processes, in one flattened all-reduce.

    A parameter with a gradient on some process only takes part as zeros elsewhere; one with a
    gradient on none keeps none, as it would in a world of one.
    """
    size = world().size
    if size == 1 or not parameters:
        return
    device = parameters[0].device
    present = torch.tensor([p.grad is not None for p in parameters], device=device).int()
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    used = [p for p, flag in zip(parameters, present.tolist(), strict=True) if flag]
    if not used:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in used]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for parameter, grad in zip(used, grads, strict=True):
        parameter.grad = flat[offset : offset + grad.numel()].view_as(grad)
        offset += grad.numel()


def broadcast_state(module: nn.Module) -> None:
    """Give every process rank 0's parameters and buffers of ``module``."""
    if world().size == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def gather_objects(value: Any) -> list[Any]:
    """Every process's ``value``, in rank order (a world of one: ``[value]``)."""
    if world().size == 1:
        return [value]
    gathered: list[Any] = [None] * world().size
    dist.all_gather_object(gathered, value)
    return gathered


def shard(count: int) -> slice:
    """This process's contiguous share of ``count`` items: shares differ by at most one, and
    concatenating them in rank order gives back all ``count``."""
    rank, size = world().rank, world().size
    return slice(rank * count // size, (rank + 1) * count // size)


def largest(value: float, device: torch.device) -> float:
    """The largest of every process's ``value`` (a world of one: ``value``)."""
    if world().size == 1:
        return value
    found = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(found, op=dist.ReduceOp.MAX)
    return float(found.item())
