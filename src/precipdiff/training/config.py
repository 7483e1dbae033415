"""The training knobs: their defaults (the CPU profile) and how a partial config is completed.

:data:`DEFAULT_CONFIG` is what :func:`~precipdiff.training.loop.train` falls back on for any key a
caller leaves out; the Kedro pipelines always pass every key from ``conf/base/parameters_training.yml``
(``diffusion:`` / ``regression:``), and ``tests/training/test_config.py`` keeps the two equal.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

#: Defaults = the CPU profile of conf/base (the diffusion/regression blocks of both stages; ``batch_size``
#: is set per stage there: this default is the downscaling stage's). Units in brackets; "scaled" =
#: residual / residual_scale.
DEFAULT_CONFIG: dict = {
    "patch_size": 64,          # [cells] side of the square training patch; None = whole field (offsets 0)
    "batch_size": 16,          # [samples] per optimizer step, global over DDP ranks
    "epochs": 8,               # [epochs] validation + one history row after each
    "steps_per_epoch": 40,     # [steps] per epoch; None = n_train_patches // batch_size
    "lr": 1e-3,                # [1] peak AdamW learning rate
    "lr_min_ratio": 0.05,      # [1] final LR of the cosine decay, as a fraction of lr
    "weight_decay": 0.0,       # [1] AdamW decoupled weight decay
    "warmup_steps": 30,        # [steps] linear LR warm-up from lr/warmup_steps to lr
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
    "cpu_bf16": True,          # bf16 autocast on CPU (CUDA always uses bf16 autocast)
    "channels_last": "auto",   # channels_last memory format; "auto" = CUDA, or CPU in fp32 (measured faster)
}


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
