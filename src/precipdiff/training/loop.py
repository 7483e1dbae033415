"""One training loop for both residual models (correction, downscaling) and both objectives.

:func:`train` takes numpy fields and a table of patches, fits a :class:`~precipdiff.nn.residual.ResidualModel`
with the EDM loss (``objective="edm"``) or masked MSE (``objective="regression"``), and returns a
:class:`TrainResult`. A step is: draw a *global* batch from a seeded generator (wet-weighted patch
choice, flips/rot90, EDM σ and noise), take this rank's slice, loss, backward (DDP-averaged), clip,
AdamW, LR schedule, EMA. Every epoch ends with a deterministic validation loss; every
``checkpoint_every`` steps rank 0 writes a resumable checkpoint, and calling :func:`train` again
with the same ``checkpoint_dir`` resumes from it, bit-exactly on CPU.

Units: the residual enters in transformed-intensity units; the network works on
``residual / residual_scale`` (σ, σ_data, ``val_sigmas`` and the losses are in those scaled units).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from precipdiff.nn.ema import EMA
from precipdiff.nn.loss import EDMLoss, RegressionLoss, valid_mask
from precipdiff.nn.residual import ResidualModel, build_model, model_config
from precipdiff.training.checkpoint import capture_rng, checkpoint_path, load_checkpoint, restore_rng, save_checkpoint
from precipdiff.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    init_distributed,
    rank_slice,
    shutdown,
    wrap_model,
)

log = logging.getLogger(__name__)

#: Defaults = the CPU profile. Units in brackets; "scaled" = residual / residual_scale.
DEFAULT_CONFIG: dict = {
    "patch_size": 64,          # [cells] side of the square training patch; None = whole field (offsets 0)
    "batch_size": 16,          # [samples] per optimizer step, global over DDP ranks
    "epochs": 4,               # [epochs] validation + one history row after each
    "steps_per_epoch": 50,     # [steps] per epoch; None = n_train_patches // batch_size
    "lr": 5e-4,                # [1] peak AdamW learning rate
    "lr_min_ratio": 0.05,      # [1] final LR of the cosine decay, as a fraction of lr
    "weight_decay": 0.0,       # [1] AdamW decoupled weight decay
    "warmup_steps": 20,        # [steps] linear LR warm-up from lr/warmup_steps to lr
    "grad_clip": 1.0,          # [scaled-loss units] max global gradient L2 norm; None/0 = no clipping
    "ema_halflife": 2000,      # [samples] EMA half-life (EDM ema_halflife_kimg × 1000); edm only
    "ema_rampup": 0.05,        # [1] half-life ≤ ema_rampup × samples seen; None = no ramp-up
    "residual_scale": "auto",  # [residual units] "auto" = RMS of the residual over training patches
    "model": {
        "base_channels": 32,   # [channels] at full resolution
        "channel_mult": [1, 2, 2],  # per level; level i at 1/2**i resolution
        "num_res_blocks": 1,   # residual blocks per level
        "attn_levels": [2],    # levels with self-attention (indices into channel_mult)
        "dropout": 0.0,        # [1] dropout probability in residual blocks
    },
    "edm": {
        "sigma_data": "auto",  # [scaled] σ_data; "auto" = RMS of the scaled residual as sampled (weights)
        "P_mean": -1.2,        # [ln scaled] mean of ln σ during training (EDM Table 1)
        "P_std": 1.2,          # [ln scaled] std of ln σ during training
        "val_sigmas": [0.05, 0.2, 0.5, 1.0, 2.0, 5.0],  # [scaled] fixed σ of the validation loss
    },
    "checkpoint_every": 100,   # [steps] between checkpoints (also written at the end); None/0 = end only
    "augment": True,           # random flips / rot90, identical for cond and residual
    "wet_weighting": True,     # draw patches ∝ the patches' `weight` column; False = uniformly
    "val_max_patches": 64,     # [patches] cap on validation patches (evenly spaced); cost ∝ × len(val_sigmas)
    "device": "auto",          # "auto" (CUDA > MPS > CPU) or a torch device string
    "cpu_bf16": False,         # bf16 autocast on CPU (CUDA always uses bf16 autocast)
    "channels_last": "auto",   # channels_last memory format; "auto" = CUDA, or CPU in fp32 (measured faster)
}

VAL_SEED_OFFSET = 1_000_003  # validation noise: a fixed stream independent of the training one


class NonFiniteLossError(FloatingPointError):
    """The loss (or gradient norm) became NaN/inf; nothing from that step was applied or saved."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``model`` carries the EMA weights for ``"edm"`` and the trained weights for ``"regression"``;
    ``state_dict`` is its CPU state_dict and ``model_config`` the dict :func:`~precipdiff.nn.build_model`
    rebuilds it from. ``history`` has one row per epoch: ``epoch``, ``step``, ``train_loss`` (mean over the
    epoch's steps), ``val_loss`` (mean over ``val_sigmas`` for edm; NaN without validation patches or
    on ranks > 0), ``lr`` (at the end of the epoch), ``samples_per_s`` (training only), ``seconds``
    (epoch wall time incl. validation) and, for edm, ``val_loss_sigma_<σ>`` per validation σ.
    ``normalisation``: ``cond_mean``, ``cond_std`` (per channel), ``residual_scale``, ``sigma_data``.
    """

    model: ResidualModel
    model_config: dict
    state_dict: dict
    history: pd.DataFrame
    normalisation: dict


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


@dataclass
class _Run:
    """Mutable state of one training run (everything a checkpoint restores)."""

    model: ResidualModel
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    step: int = 0
    history: dict = field(default_factory=dict)
    accum: dict = field(default_factory=lambda: _new_accum())


class WarmupCosine:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------
# Public entry point


def train(cond: np.ndarray, residual: np.ndarray, patches: pd.DataFrame, config: Mapping, *, objective: str,
          checkpoint_dir: str | Path | None = None, seed: int = 0, progress: bool = True) -> TrainResult:
    """Train a residual model on patches of ``(cond, residual)`` fields.

    Parameters
    ----------
    cond : np.ndarray
        ``(T, C, H, W)`` float32 conditioning (transformed intensity and any static channels); NaN = missing.
    residual : np.ndarray
        ``(T, 1, H, W)`` float32 target residual in transformed-intensity units; NaN = missing (masked).
    patches : pd.DataFrame
        Columns ``time_index`` (int into T), ``row``, ``col`` (top-left offsets into H, W),
        ``weight`` (float ≥ 0; patch-draw probability ∝ weight when ``wet_weighting``),
        ``split`` (``"train"`` | ``"validation"``).
    config : mapping
        Keys of :data:`DEFAULT_CONFIG` (defaults = CPU profile; missing keys take them, unknown keys
        raise ``KeyError``). Units: ``patch_size`` cells (None = whole field); ``batch_size`` samples
        (global); ``epochs``; ``steps_per_epoch`` steps (None = one pass over train patches); ``lr``,
        ``lr_min_ratio``, ``weight_decay`` dimensionless; ``warmup_steps`` steps; ``grad_clip`` L2 norm
        (None/0 = off); ``ema_halflife`` samples, ``ema_rampup`` fraction; ``residual_scale`` residual
        units ("auto" = RMS); ``model``: ``base_channels``, ``channel_mult``, ``num_res_blocks``,
        ``attn_levels``, ``dropout``; ``edm``: ``sigma_data`` ("auto"), ``P_mean``, ``P_std`` (ln σ),
        ``val_sigmas`` (scaled units); ``checkpoint_every`` steps; ``augment``, ``wet_weighting``
        bools; ``val_max_patches`` patches; ``device`` ("auto"); ``cpu_bf16`` bool; ``channels_last``
        ("auto" | bool).
    objective : {"edm", "regression"}
    checkpoint_dir : path, optional
        Where ``latest.pt`` is written every ``checkpoint_every`` steps and at the end; if it holds a
        checkpoint of the same config and data, training resumes from it.
    seed : int
        Seeds initialisation, dropout and the batch/noise generator.
    progress : bool
        Show a tqdm bar (rank 0 only).

    Returns
    -------
    TrainResult
    """
    cfg = resolve_config(config)
    if objective not in ("edm", "regression"):
        raise ValueError(f"train: objective must be 'edm' or 'regression'; got {objective!r}")
    data = prepare_data(cond, residual, patches, cfg)
    stats = normalisation_stats(data, cfg)
    ctx = init_distributed(cfg["device"])
    cuda = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda):  # leave the caller's global RNG untouched
            return _fit(data, stats, cfg, objective, ctx, checkpoint_dir, seed, progress)
    finally:
        shutdown(ctx)


def resolve_config(config: Mapping) -> dict:
    """:data:`DEFAULT_CONFIG` updated with ``config`` (nested ``model``/``edm`` merged); unknown keys raise."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in dict(config or {}).items():
        if key not in cfg:
            raise KeyError(f"training config: unknown key {key!r}; known keys: {sorted(cfg)}")
        if isinstance(cfg[key], dict):
            unknown = set(value or {}) - set(cfg[key])
            if unknown:
                raise KeyError(f"training config: unknown key(s) {sorted(unknown)} in {key!r}; "
                               f"known: {sorted(cfg[key])}")
            cfg[key].update(value or {})
        else:
            cfg[key] = value
    for key in ("batch_size", "epochs", "steps_per_epoch"):
        if key == "steps_per_epoch" and cfg[key] is None:  # one pass over the train patches
            continue
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 1:
            raise ValueError(f"training config: {key} must be a positive integer"
                             f"{' or null' if key == 'steps_per_epoch' else ''}; got {cfg[key]!r}")
    return cfg


# ----------------------------------------------------------------------------------------------
# Data: validation, statistics, batches


def prepare_data(cond: np.ndarray, residual: np.ndarray, patches: pd.DataFrame, cfg: dict) -> PatchData:
    """Check shapes and patch offsets against the fields; split the patch table into arrays."""
    if cond.ndim != 4 or residual.ndim != 4 or residual.shape[1] != 1 or (
            cond.shape[0], *cond.shape[2:]) != (residual.shape[0], *residual.shape[2:]):
        raise ValueError(f"train: need cond (T, C, H, W) and residual (T, 1, H, W) on the same T, H, W; "
                         f"got cond {cond.shape}, residual {residual.shape}")
    missing = {"time_index", "row", "col", "weight", "split"} - set(patches.columns)
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
        parts[name] = {"t": p["time_index"].to_numpy(np.int64), "row": p["row"].to_numpy(np.int64),
                       "col": p["col"].to_numpy(np.int64), "weight": p["weight"].to_numpy(np.float64)}
    if len(parts["train"]["t"]) == 0:
        raise ValueError("train: patches has no rows with split == 'train'")
    w = parts["train"]["weight"]
    if cfg["wet_weighting"] and (not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0):
        raise ValueError("train: patches.weight of the train split must be finite, >= 0 and not all 0 "
                         "(or set wet_weighting: false)")
    return PatchData(cond, residual, size, parts["train"], parts["validation"])


def _check_offsets(patches: pd.DataFrame, T: int, H: int, W: int, size: tuple[int, int]) -> None:
    t, r, c = (patches[k].to_numpy() for k in ("time_index", "row", "col"))
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


# ----------------------------------------------------------------------------------------------
# One step


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


def _train_step(run: _Run, ddp: torch.nn.Module, batch: Batch, ctx: DistributedContext, cfg: dict,
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


# ----------------------------------------------------------------------------------------------
# Validation


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


# ----------------------------------------------------------------------------------------------
# The run: set-up, resume, loop, checkpoint


@dataclass(frozen=True)
class _Job:
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


def _fit(data: PatchData, stats: dict, cfg: dict, objective: str, ctx: DistributedContext,
         checkpoint_dir, seed: int, progress: bool) -> TrainResult:
    """Set up (seeded), resume if possible, run the steps, return the result."""
    torch.manual_seed(seed)
    spe, total = _schedule_lengths(data, cfg)
    job = _Job(data, cfg, objective, ctx, seed, stats,
               model_config(objective, data.cond.shape[1], cfg["model"], **stats), spe, total,
               checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None,
               _fingerprint(cfg, objective, seed, data, stats))
    run, opts = _setup(job)
    _maybe_resume(run, job)
    ddp = wrap_model(run.model, ctx)
    ddp.train()
    bar = tqdm(total=total, initial=run.step, disable=not (progress and ctx.is_main),
               desc=f"train {objective}", unit="step", dynamic_ncols=True)
    try:
        while run.step < total:
            _one_step(run, ddp, job, opts, bar)
    finally:
        bar.close()
    return _result(run, job)


def _one_step(run: _Run, ddp: torch.nn.Module, job: _Job, opts: dict, bar) -> None:
    """Draw the global batch, step, update progress; end the epoch and checkpoint when due."""
    cfg = job.cfg
    t0 = time.perf_counter()
    batch = draw_batch(job.data, run.generator, cfg["batch_size"], wet_weighting=cfg["wet_weighting"],
                       augment=cfg["augment"], edm_loss=opts["edm_loss"])
    loss = _train_step(run, ddp, batch, job.ctx, cfg, opts)
    _accumulate(run.accum, loss, cfg["batch_size"], time.perf_counter() - t0)
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{run.accum['samples'] / run.accum['train_seconds']:.1f}",
                    refresh=False)
    if run.step % job.steps_per_epoch == 0:
        _end_epoch(run, job, opts)
    every = cfg["checkpoint_every"]
    if job.checkpoint is not None and job.ctx.is_main and (
            run.step == job.total_steps or (every and run.step % every == 0)):
        save_checkpoint(_checkpoint_state(run, job), job.checkpoint)


def _setup(job: _Job) -> tuple[_Run, dict]:
    """Model on its device, EMA, AdamW, warm-up + cosine schedule, batch generator; step options."""
    cfg, dev = job.cfg, job.ctx.device
    model = build_model(job.model_config).to(dev)
    autocast = dev.type == "cuda" or (dev.type == "cpu" and bool(cfg["cpu_bf16"]))
    # "auto": on CUDA; on CPU only in fp32 (1.3× faster here, but slower than NCHW under bf16 autocast)
    auto_cl = dev.type == "cuda" or (dev.type == "cpu" and not autocast)
    channels_last = cfg["channels_last"] is True or (cfg["channels_last"] == "auto" and auto_cl)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    edm = job.objective == "edm"
    ema = EMA(model, halflife=cfg["ema_halflife"], rampup=cfg["ema_rampup"]) if edm else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(cfg["warmup_steps"], job.total_steps, cfg["lr_min_ratio"]))
    generator = torch.Generator().manual_seed(job.seed)
    edm_loss = EDMLoss(cfg["edm"]["P_mean"], cfg["edm"]["P_std"], job.model_config["sigma_data"]) if edm else None
    opts = {"objective": job.objective, "edm_loss": edm_loss, "autocast": autocast, "channels_last": channels_last}
    return _Run(model, ema, optimizer, scheduler, generator), opts


def _schedule_lengths(data: PatchData, cfg: dict) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)``; ``steps_per_epoch: None`` = one pass over the train patches."""
    spe = cfg["steps_per_epoch"] or max(1, len(data.train["t"]) // cfg["batch_size"])
    return int(spe), int(spe) * cfg["epochs"]


def _end_epoch(run: _Run, job: _Job, opts: dict) -> None:
    """Validate (rank 0, EMA weights for edm), append a history row, log it, reset the epoch sums."""
    a = run.accum
    row = {"epoch": run.step // job.steps_per_epoch, "step": run.step,
           "train_loss": a["loss_sum"] / max(a["steps"], 1), "val_loss": math.nan,
           "lr": run.optimizer.param_groups[0]["lr"], "samples_per_s": a["samples"] / max(a["train_seconds"], 1e-9)}
    t0 = time.perf_counter()
    if job.ctx.is_main:
        eval_model = run.ema.module if run.ema is not None else run.model
        was_training = eval_model.training
        eval_model.eval()
        row.update(validate(eval_model, job.data, job.cfg, job.objective, seed=job.seed,
                            device=job.ctx.device, autocast=opts["autocast"]))
        eval_model.train(was_training)
    row["seconds"] = a["train_seconds"] + time.perf_counter() - t0  # training + validation
    for key, value in row.items():
        run.history.setdefault(key, []).append(int(value) if key in ("epoch", "step") else float(value))
    log.info("%s epoch %d step %d: train_loss %.4f val_loss %.4f lr %.2e %.1f samples/s", job.objective,
             row["epoch"], row["step"], row["train_loss"], row["val_loss"], row["lr"], row["samples_per_s"])
    run.accum = _new_accum()


def _new_accum() -> dict:
    return {"loss_sum": 0.0, "steps": 0, "samples": 0, "train_seconds": 0.0}


def _accumulate(accum: dict, loss: float, batch_size: int, seconds: float) -> None:
    accum["loss_sum"] += loss
    accum["steps"] += 1
    accum["samples"] += batch_size
    accum["train_seconds"] += seconds


def _fingerprint(cfg: dict, objective: str, seed: int, data: PatchData, stats: dict) -> str:
    """Hash of what determines the run: config, objective, seed, shapes, patch table, data statistics."""
    h = hashlib.sha256(json.dumps([cfg, objective, seed, data.cond.shape, data.residual.shape, stats],
                                  sort_keys=True, default=str).encode())
    for part in (data.train, data.val):
        for key in sorted(part):
            h.update(np.ascontiguousarray(part[key]).tobytes())
    return h.hexdigest()


def _checkpoint_state(run: _Run, job: _Job) -> dict:
    """Everything :func:`_maybe_resume` needs, as a ``weights_only``-loadable dict."""
    return {
        "step": run.step,
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else {},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": capture_rng(run.generator),
        "history": run.history,
        "epoch_accum": dict(run.accum),
        "model_config": job.model_config,
        "train_config": json.loads(json.dumps(job.cfg, default=str)),
        "fingerprint": job.fingerprint,
    }


def _maybe_resume(run: _Run, job: _Job) -> None:
    """Load the checkpoint into ``run`` if it exists and matches the job's fingerprint; else start afresh."""
    state = load_checkpoint(job.checkpoint) if job.checkpoint is not None else None  # on CPU: RNG states
    if state is None:
        return
    if state.get("fingerprint") != job.fingerprint:
        old = state.get("train_config", {})
        new = json.loads(json.dumps(job.cfg, default=str))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        log.warning("checkpoint %s is from a different run (config keys differing: %s; else data, seed or "
                    "objective); starting afresh, it will be overwritten", job.checkpoint, changed or "none")
        return
    run.model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], run.generator)
    run.step, run.history, run.accum = int(state["step"]), state["history"], dict(state["epoch_accum"])
    log.info("resumed from %s at step %d of %d", job.checkpoint, run.step, job.total_steps)


def _result(run: _Run, job: _Job) -> TrainResult:
    """The EMA (edm) or trained (regression) model on CPU, eval mode, with its config and history."""
    model = run.ema.module if run.ema is not None else run.model
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return TrainResult(model=model, model_config=job.model_config, state_dict=state_dict,
                       history=pd.DataFrame(run.history), normalisation=dict(job.stats))
