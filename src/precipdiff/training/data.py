"""Training data: the patch tables as arrays, normalisation statistics, and the batches a step draws.

:func:`prepare_data` checks the fields against the patch table; :func:`normalisation_stats` gives
the per-channel condition moments, ``residual_scale`` and EDM's ``σ_data``; :func:`draw_batch`
draws a global batch (wet-weighted patch choice, flips/rot90, EDM σ and noise) from one seeded
generator, in a fixed order, so a resumed run draws exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from precipdiff.nn.loss import EDMLoss

log = logging.getLogger(__name__)


@dataclass
class PatchData:
    """Fields plus the train/validation patch tables as arrays (``t``, ``row``, ``col``, ``weight``)."""

    cond: np.ndarray
    residual: np.ndarray
    size: tuple[int, int]
    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]

    def crop(self, part: dict[str, np.ndarray], idx) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked ``(cond, residual)`` patches for rows ``idx`` of ``part``, float32 CPU tensors."""
        ph, pw = self.size
        rows = [(int(part["t"][i]), int(part["row"][i]), int(part["col"][i])) for i in idx]
        cond = np.stack([self.cond[t, :, r:r + ph, c:c + pw] for t, r, c in rows])
        res = np.stack([self.residual[t, :, r:r + ph, c:c + pw] for t, r, c in rows])
        return torch.from_numpy(cond.astype(np.float32)), torch.from_numpy(res.astype(np.float32))


@dataclass
class Batch:
    """A global batch in physical units (NaN residual = missing) and its EDM draws."""

    cond: torch.Tensor
    residual: torch.Tensor
    sigma: torch.Tensor | None = None
    noise: torch.Tensor | None = None

    def slice(self, sl: slice) -> Batch:
        return Batch(*(None if v is None else v[sl] for v in (self.cond, self.residual, self.sigma, self.noise)))


def prepare_data(cond: np.ndarray, residual: np.ndarray, patches: pd.DataFrame, cfg: dict) -> PatchData:
    """Check shapes and patch offsets against the fields; split the patch table into arrays."""
    if cond.ndim != 4 or residual.ndim != 4 or residual.shape[1] != 1 or (
            cond.shape[0], *cond.shape[2:]) != (residual.shape[0], *residual.shape[2:]):
        raise ValueError(f"train: need cond (T, C, H, W) and residual (T, 1, H, W) on the same T, H, W; "
                         f"got cond {cond.shape}, residual {residual.shape}")
    missing = {"sample_index", "row", "col", "weight", "split"} - set(patches.columns)
    if missing:
        raise KeyError(f"train: patches lacks columns {sorted(missing)}; has {list(patches.columns)}")
    splits = set(patches["split"].unique()) - {"train", "validation"}
    if splits:
        raise ValueError(f"train: patches.split must be 'train' or 'validation'; found {sorted(splits)}")
    T, _, H, W = cond.shape
    size = (H, W) if cfg["patch_size"] is None else (int(cfg["patch_size"]),) * 2
    _check_offsets(patches, T, H, W, size)
    parts = {}
    for name in ("train", "validation"):
        p = patches[patches["split"] == name]
        parts[name] = {"t": p["sample_index"].to_numpy(np.int64), "row": p["row"].to_numpy(np.int64),
                       "col": p["col"].to_numpy(np.int64), "weight": p["weight"].to_numpy(np.float64)}
    if len(parts["train"]["t"]) == 0:
        raise ValueError("train: patches has no rows with split == 'train'")
    w = parts["train"]["weight"]
    if cfg["wet_weighting"] and (not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0):
        raise ValueError("train: patches.weight of the train split must be finite, >= 0 and not all 0 "
                         "(or set wet_weighting: false)")
    return PatchData(cond, residual, size, parts["train"], parts["validation"])


def _check_offsets(patches: pd.DataFrame, T: int, H: int, W: int, size: tuple[int, int]) -> None:
    t, r, c = (patches[k].to_numpy() for k in ("sample_index", "row", "col"))
    bad = (t < 0) | (t >= T) | (r < 0) | (r + size[0] > H) | (c < 0) | (c + size[1] > W)
    if bad.any():
        first = patches[bad].iloc[0].to_dict()
        raise ValueError(f"train: {int(bad.sum())} patches fall outside the fields (T={T}, H={H}, W={W}) for "
                         f"patch_size {size}; first: {first}")


def normalisation_stats(data: PatchData, cfg: dict) -> dict:
    """Per-channel cond mean/std (train time steps), ``residual_scale`` and ``sigma_data``.

    ``residual_scale`` ("auto") is the root-mean-square of the residual over the valid pixels of all
    training patches (uniformly), so the scaled residual has unit RMS. ``sigma_data`` ("auto") is the
    RMS of the *scaled* residual under the training draw (patches ∝ ``weight`` when ``wet_weighting``),
    i.e. of the data the loss actually sees; wet weighting makes it > 1. RMS rather than std because
    the network sees the uncentred residual and σ_data sets the input scale ``c_in = 1/√(σ² + σ_d²)``.
    """
    tr = data.train
    mean, std = _cond_moments(data.cond, np.unique(tr["t"]))
    sq, n = _patch_moments(data, tr)
    w = tr["weight"] if cfg["wet_weighting"] else np.ones_like(tr["weight"])
    scale = cfg["residual_scale"]
    if scale == "auto":
        scale = math.sqrt(sq.sum() / max(n.sum(), 1))
        if not scale > 0:
            log.warning("residual is 0 on every training patch; residual_scale set to 1")
            scale = 1.0
    sigma_data = cfg["edm"]["sigma_data"]
    if sigma_data == "auto":
        sigma_data = math.sqrt((w * sq).sum() / max((w * n).sum(), 1)) / scale or 1.0
    return {"cond_mean": mean.tolist(), "cond_std": std.tolist(), "residual_scale": float(scale),
            "sigma_data": float(sigma_data)}


def _cond_moments(cond: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware per-channel mean and std over ``times`` (float64 accumulation; std 0 → 1)."""
    s = np.zeros(cond.shape[1]); ss = np.zeros(cond.shape[1]); n = np.zeros(cond.shape[1])
    for t in times:
        x = cond[t].reshape(cond.shape[1], -1).astype(np.float64)
        ok = np.isfinite(x)
        x = np.where(ok, x, 0.0)
        s += x.sum(1); ss += (x * x).sum(1); n += ok.sum(1)
    mean = s / np.maximum(n, 1)
    std = np.sqrt(np.maximum(ss / np.maximum(n, 1) - mean**2, 0.0))
    return mean, np.where(std > 1e-6, std, 1.0)


def _patch_moments(data: PatchData, part: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: sum of squared residuals and number of valid pixels."""
    ph, pw = data.size
    sq, n = np.zeros(len(part["t"])), np.zeros(len(part["t"]))
    for i, (t, r, c) in enumerate(zip(part["t"], part["row"], part["col"])):
        x = data.residual[t, 0, r:r + ph, c:c + pw].astype(np.float64)
        ok = np.isfinite(x)
        sq[i], n[i] = np.square(x[ok]).sum(), ok.sum()
    return sq, n


def draw_batch(data: PatchData, generator: torch.Generator, batch_size: int, *, wet_weighting: bool,
               augment: bool, edm_loss: EDMLoss | None) -> Batch:
    """A global batch: patches (∝ weight or uniform), augmentation, then EDM σ and unit noise.

    The draw order is fixed (patches, rotations, flips, σ, noise), all from ``generator``.
    """
    w = data.train["weight"] if wet_weighting else np.ones(len(data.train["t"]))
    idx = torch.multinomial(torch.tensor(w, dtype=torch.float64), batch_size, replacement=True,
                            generator=generator)
    cond, res = data.crop(data.train, idx.tolist())
    if augment:
        square = cond.shape[-1] == cond.shape[-2]
        k = torch.randint(0, 4, (batch_size,), generator=generator) * (1 if square else 2)
        flip = torch.randint(0, 2, (batch_size,), generator=generator).bool()
        cond, res = _augment(cond, k, flip), _augment(res, k, flip)
    batch = Batch(cond, res)
    if edm_loss is not None:
        batch.sigma = edm_loss.sample_sigma(batch_size, generator)
        batch.noise = torch.randn(res.shape, generator=generator)
    return batch


def _augment(x: torch.Tensor, k: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Rotate sample ``i`` by ``k[i]`` quarter turns and mirror it left-right where ``flip[i]``."""
    out = [torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)]
    return torch.stack([xi.flip(-1) if fi else xi for xi, fi in zip(out, flip)])
