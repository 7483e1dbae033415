"""Exponential moving average of model weights, with EDM's half-life-in-samples and ramp-up.

NVlabs/edm ``training_loop``: ``β = 0.5 ** (batch_size / h)`` where the half-life ``h`` (in training
samples; EDM's ``ema_halflife_kimg × 1000``) is capped at ``ema_rampup_ratio × samples seen`` so that
the average forgets the random initialisation quickly early on.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` whose parameters track an exponential moving average.

    Parameters
    ----------
    model : nn.Module
        The trained module; it is deep-copied (buffers included) at construction.
    halflife : float, optional
        Half-life in training samples. Exactly one of ``halflife`` and ``decay`` is given.
    rampup : float, optional
        If given, the half-life is at most ``rampup × samples seen`` (EDM default 0.05).
    decay : float, optional
        Fixed per-update decay β instead of a half-life.
    """

    def __init__(self, model: nn.Module, halflife: float | None = None, rampup: float | None = 0.05,
                 decay: float | None = None):
        if (halflife is None) == (decay is None):
            raise ValueError(f"EMA: give exactly one of halflife (samples) or decay; got {halflife=}, {decay=}")
        self.halflife, self.rampup, self.decay = halflife, rampup, decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def beta(self, batch_size: int, samples_seen: int) -> float:
        """Decay β for one update of ``batch_size`` samples after ``samples_seen`` (this batch included)."""
        if self.decay is not None:
            return float(self.decay)
        halflife = float(self.halflife)
        if self.rampup is not None:
            halflife = min(halflife, samples_seen * self.rampup)
        return 0.5 ** (batch_size / max(halflife, 1e-8))

    @torch.no_grad()
    def update(self, model: nn.Module, batch_size: int, samples_seen: int) -> None:
        """``θ_ema ← β θ_ema + (1 − β) θ``; buffers are copied."""
        beta = self.beta(batch_size, samples_seen)
        for p_ema, p in zip(self.module.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.module.load_state_dict(state_dict)
