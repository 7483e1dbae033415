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

The pieces, one idea a file: the knobs and their defaults (:mod:`.config`), patches, statistics and
batches (:mod:`.data`), the state of a run (:mod:`.state`), one optimizer step (:mod:`.step`), the epoch's validation loss
(:mod:`.validation`), checkpoints and resume (:mod:`.checkpoint`), DDP (:mod:`.distributed`); this
file sets a run up and drives it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from precipdiff.nn.ema import EMA
from precipdiff.nn.loss import EDMLoss
from precipdiff.nn.residual import ResidualModel, build_model, model_config
from precipdiff.training.checkpoint import checkpoint_path, checkpoint_state, resume, run_fingerprint, save_checkpoint
from precipdiff.training.config import resolve_config
from precipdiff.training.data import PatchData, draw_batch, normalisation_stats, prepare_data
from precipdiff.training.distributed import DistributedContext, init_distributed, shutdown, wrap_model
from precipdiff.training.state import TrainJob, TrainState, new_accum
from precipdiff.training.step import WarmupCosine, train_step
from precipdiff.training.validation import validate

log = logging.getLogger(__name__)


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
        Columns ``sample_index`` (int into T), ``row``, ``col`` (top-left offsets into H, W),
        ``weight`` (float ≥ 0; patch-draw probability ∝ weight when ``wet_weighting``),
        ``split`` (``"train"`` | ``"validation"``).
    config : mapping
        Keys of :data:`~precipdiff.training.config.DEFAULT_CONFIG` (defaults = CPU profile; missing keys take them, unknown keys
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


def _fit(data: PatchData, stats: dict, cfg: dict, objective: str, ctx: DistributedContext,
         checkpoint_dir, seed: int, progress: bool) -> TrainResult:
    """Set up (seeded), resume if possible, run the steps, return the result."""
    torch.manual_seed(seed)
    spe, total = _schedule_lengths(data, cfg)
    job = TrainJob(data, cfg, objective, ctx, seed, stats,
               model_config(objective, data.cond.shape[1], cfg["model"], **stats), spe, total,
               checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None,
               run_fingerprint(cfg, objective, seed, data, stats))
    run, opts = _setup(job)
    resume(run, job)
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


def _one_step(run: TrainState, ddp: torch.nn.Module, job: TrainJob, opts: dict, bar) -> None:
    """Draw the global batch, step, update progress; end the epoch and checkpoint when due."""
    cfg = job.cfg
    t0 = time.perf_counter()
    batch = draw_batch(job.data, run.generator, cfg["batch_size"], wet_weighting=cfg["wet_weighting"],
                       augment=cfg["augment"], edm_loss=opts["edm_loss"])
    loss = train_step(run, ddp, batch, job.ctx, cfg, opts)
    _accumulate(run.accum, loss, cfg["batch_size"], time.perf_counter() - t0)
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{run.accum['samples'] / run.accum['train_seconds']:.1f}",
                    refresh=False)
    if run.step % job.steps_per_epoch == 0:
        _end_epoch(run, job, opts)
    every = cfg["checkpoint_every"]
    if job.checkpoint is not None and job.ctx.is_main and (
            run.step == job.total_steps or (every and run.step % every == 0)):
        save_checkpoint(checkpoint_state(run, job), job.checkpoint)


def _setup(job: TrainJob) -> tuple[TrainState, dict]:
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
    return TrainState(model, ema, optimizer, scheduler, generator), opts


def _schedule_lengths(data: PatchData, cfg: dict) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)``; ``steps_per_epoch: None`` = one pass over the train patches."""
    spe = cfg["steps_per_epoch"] or max(1, len(data.train["t"]) // cfg["batch_size"])
    return int(spe), int(spe) * cfg["epochs"]


def _end_epoch(run: TrainState, job: TrainJob, opts: dict) -> None:
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
    run.accum = new_accum()


def _accumulate(accum: dict, loss: float, batch_size: int, seconds: float) -> None:
    accum["loss_sum"] += loss
    accum["steps"] += 1
    accum["samples"] += batch_size
    accum["train_seconds"] += seconds


def _result(run: TrainState, job: TrainJob) -> TrainResult:
    """The EMA (edm) or trained (regression) model on CPU, eval mode, with its config and history."""
    model = run.ema.module if run.ema is not None else run.model
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return TrainResult(model=model, model_config=job.model_config, state_dict=state_dict,
                       history=pd.DataFrame(run.history), normalisation=dict(job.stats))
