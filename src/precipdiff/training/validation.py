"""The validation loss at the end of every epoch: fixed patches, fixed σ, fixed noise.

Deterministic by construction (no augmentation, evenly spaced patches, a noise generator seeded
afresh on every call), so epochs — and a resumed run's epochs — compare like with like.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from precipdiff.nn.loss import EDMLoss
from precipdiff.nn.residual import ResidualModel
from precipdiff.training.data import Batch, PatchData
from precipdiff.training.distributed import DistributedContext
from precipdiff.training.step import batch_loss

VAL_SEED_OFFSET = 1_000_003  # validation noise: a fixed stream independent of the training one


@torch.no_grad()
def validate(model: ResidualModel, data: PatchData, cfg: dict, objective: str, *, seed: int,
             device: torch.device, autocast: bool = False) -> dict[str, float]:
    """Mean validation loss on (at most ``val_max_patches``) validation patches, no augmentation.

    EDM: the λ-weighted loss at each fixed σ in ``edm.val_sigmas`` with noise from a generator seeded
    afresh every call (so epochs compare like with like); ``val_loss`` is their mean. Regression: MSE.
    """
    n = len(data.val["t"])
    if n == 0:
        return {"val_loss": math.nan}
    idx = np.unique(np.linspace(0, n - 1, min(n, cfg["val_max_patches"])).round().astype(int))
    sigmas = [float(s) for s in cfg["edm"]["val_sigmas"]] if objective == "edm" else [None]
    gen = torch.Generator().manual_seed(seed + VAL_SEED_OFFSET)
    edm_loss = EDMLoss(cfg["edm"]["P_mean"], cfg["edm"]["P_std"], model.precond.sigma_data) \
        if objective == "edm" else None
    ctx = DistributedContext(device=device)
    sums = dict.fromkeys(sigmas, 0.0)
    counts = dict.fromkeys(sigmas, 0.0)
    for chunk in np.array_split(idx, math.ceil(len(idx) / cfg["batch_size"])):
        cond, res = data.crop(data.val, chunk)
        for s in sigmas:
            batch = Batch(cond, res)
            if s is not None:
                batch.sigma = torch.full((len(chunk),), s)
                batch.noise = torch.randn(res.shape, generator=gen)
            _, mean = batch_loss(model, batch, ctx, objective=objective, edm_loss=edm_loss, autocast=autocast)
            valid = float(torch.isfinite(res).sum())
            sums[s] += float(mean) * valid
            counts[s] += valid
    per_sigma = {s: sums[s] / counts[s] if counts[s] else math.nan for s in sigmas}
    out = {"val_loss": float(np.mean(list(per_sigma.values())))}
    if objective == "edm":
        out.update({f"val_loss_sigma_{s:g}": v for s, v in per_sigma.items()})
    return out
