"""Data-parallel training in the same code path as single-process training.

Launched by ``torchrun`` (env ``WORLD_SIZE > 1``), :func:`init_distributed` starts the process group
(NCCL on CUDA, Gloo on CPU); every rank draws the *same* global batch from the same seeded generator
and trains on its slice (:func:`rank_slice`), the model is wrapped in ``DistributedDataParallel``
(gradients averaged over ranks), and only rank 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from precipdiff.nn.sampling import pick_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``, and whether we own the group."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group if ``WORLD_SIZE > 1`` (env ``RANK``, ``LOCAL_RANK``, ``MASTER_*``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(device)
    if world_size <= 1:
        return DistributedContext(device=dev)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=dev, owns_group=owns)


def shutdown(ctx: DistributedContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistributedContext) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` unchanged."""
    if not ctx.enabled:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # 1×1-conv weight gradients come back with equivalent but different strides; harmless here
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def rank_slice(global_batch: int, ctx: DistributedContext) -> slice:
    """This rank's contiguous share of a global batch (``torch.tensor_split`` sizes)."""
    if global_batch < ctx.world_size:
        raise ValueError(f"batch_size {global_batch} is smaller than the world size {ctx.world_size}; "
                         f"every rank needs at least one sample")
    base, extra = divmod(global_batch, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return slice(start, start + base + (ctx.rank < extra))


def all_reduce_sum(value: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Sum of ``value`` over ranks (a copy; the input itself when not distributed)."""
    if not ctx.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value
