"""The state of one training run: what it restores from a checkpoint (:class:`TrainState`) and what
it is checked against (:class:`TrainJob`).

Its own module so that the driver (:mod:`.loop`), one optimizer step (:mod:`.step`) and the
checkpoints (:mod:`.checkpoint`) all import it from below, and none of them imports another back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from precipdiff.nn.ema import EMA
from precipdiff.nn.residual import ResidualModel
from precipdiff.training.data import PatchData
from precipdiff.training.distributed import DistributedContext


def new_accum() -> dict:
    """Fresh sums of an epoch: loss, steps, samples and training seconds."""
    return {"loss_sum": 0.0, "steps": 0, "samples": 0, "train_seconds": 0.0}


@dataclass
class TrainState:
    """Mutable state of one training run (everything a checkpoint restores)."""

    model: ResidualModel
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    step: int = 0
    history: dict = field(default_factory=dict)
    accum: dict = field(default_factory=new_accum)


@dataclass(frozen=True)
class TrainJob:
    """The fixed inputs of a run (what a checkpoint is checked against, not what it restores)."""

    data: PatchData
    cfg: dict
    objective: str
    ctx: DistributedContext
    seed: int
    stats: dict
    model_config: dict
    steps_per_epoch: int
    total_steps: int
    checkpoint: Path | None
    fingerprint: str
