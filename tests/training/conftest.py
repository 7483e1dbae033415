"""Tiny synthetic residual problem: the residual is a learnable function of the conditioning plus noise."""

import numpy as np
import pandas as pd
import pytest
import torch

T, H, W, P = 24, 24, 24, 16


def make_problem(seed: int = 0):
    """``(cond (T, 2, H, W), residual (T, 1, H, W), patches)``; one NaN block in the residual."""
    rng = np.random.default_rng(seed)
    field = rng.standard_normal((T, 1, H, W))
    for axis in (2, 3):  # smooth so that neighbouring pixels share information
        field = (field + np.roll(field, 1, axis) + np.roll(field, -1, axis)) / 3
    field /= field.std()
    slope = np.broadcast_to(np.linspace(-1, 1, W), (T, 1, H, W))
    cond = np.concatenate([field, slope], axis=1).astype(np.float32)
    residual = np.maximum(field, 0) - 0.3 * slope + 0.2 * rng.standard_normal((T, 1, H, W)) * (field > 0)
    residual = residual.astype(np.float32)
    residual[0, 0, :4, :4] = np.nan
    rows = [(t, r, c, float((field[t, 0, r:r + P, c:c + P] > 0).mean()) + 0.05,
             "train" if t < T - 4 else "validation") for t in range(T) for r in (0, 8) for c in (0, 8)]
    patches = pd.DataFrame(rows, columns=["sample_index", "row", "col", "weight", "split"])
    return cond, residual, patches


@pytest.fixture(scope="session")
def problem():
    return make_problem()


TINY = {"patch_size": P, "batch_size": 8, "epochs": 2, "steps_per_epoch": 3, "warmup_steps": 2, "lr": 5e-4, "cpu_bf16": False,
        "model": {"base_channels": 8, "channel_mult": [1, 2], "attn_levels": [1]}, "val_max_patches": 8,
        "edm": {"val_sigmas": [0.5, 2.0]}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models, and 2 OpenMP threads on a shared 2-core machine run up to ~8×
    slower than one (measured under load); results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
