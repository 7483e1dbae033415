"""One optimizer step: the batch's loss (DDP-normalised), backward, clipping, AdamW, LR schedule, EMA.

:func:`batch_loss` is shared with validation (:mod:`.validation`) and the training benchmark;
:func:`train_step` applies one step to a run's :class:`~precipdiff.training.state.TrainState`.
"""

from __future__ import annotations

import math

import torch

from precipdiff.nn.loss import EDMLoss, RegressionLoss, valid_mask
from precipdiff.training.data import Batch
from precipdiff.training.distributed import DistributedContext, all_reduce_sum, rank_slice
from precipdiff.training.state import TrainState


class NonFiniteLossError(FloatingPointError):
    """The loss (or gradient norm) became NaN/inf; nothing from that step was applied or saved."""


class WarmupCosine:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_loss(model: torch.nn.Module, batch: Batch, ctx: DistributedContext, *, objective: str,
               edm_loss: EDMLoss | None = None, autocast: bool = False,
               channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of this rank's share of ``batch`` for backward, and the global mean loss (detached).

    ``model`` may be DDP-wrapped; its ``module`` (or itself) is the :class:`ResidualModel`. The loss is
    normalised by the number of valid pixels summed over ranks (× world size, since DDP averages
    gradients), so the gradient equals that of one process on the whole global batch.
    """
    inner = getattr(model, "module", model)
    dev = ctx.device
    cond = inner.normalise_cond(batch.cond.to(dev))
    if channels_last:
        cond = cond.contiguous(memory_format=torch.channels_last)
    y = batch.residual.to(dev) / inner.residual_scale
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
        if objective == "edm":
            per_pixel = edm_loss(model, y, cond, sigma=batch.sigma, noise=batch.noise)
        else:
            per_pixel = RegressionLoss()(lambda c: model(None, None, c), y, cond)
    count = all_reduce_sum(valid_mask(y).sum().float(), ctx).clamp(min=1)
    total = per_pixel.float().sum()
    return total * ctx.world_size / count, all_reduce_sum(total.detach(), ctx) / count


def train_step(run: TrainState, ddp: torch.nn.Module, batch: Batch, ctx: DistributedContext, cfg: dict,
               opts: dict) -> float:
    """One optimizer step on the global ``batch``; returns its loss. Raises on a non-finite loss."""
    loss, value = batch_loss(ddp, batch.slice(rank_slice(cfg["batch_size"], ctx)), ctx, **opts)
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteLossError(f"train: non-finite loss {value} at step {run.step + 1} "
                                 f"(objective {opts['objective']!r}); nothing was applied or saved. "
                                 f"Check inputs for inf, or lower lr ({cfg['lr']}) / raise grad_clip.")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg["grad_clip"] or math.inf)
    if not torch.isfinite(norm):
        raise NonFiniteLossError(f"train: non-finite gradient norm {float(norm)} at step {run.step + 1} "
                                 f"(loss {value}); nothing was applied or saved.")
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    if run.ema is not None:
        run.ema.update(run.model, cfg["batch_size"], run.step * cfg["batch_size"])
    return value
