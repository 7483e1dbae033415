"""In-memory models and fields for the inference tests: a pixel-local denoiser, small random U-Nets.

Imported as ``from tests.inference.chain_models import …``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from precipdiff.nn import build_model, model_config
from precipdiff.nn.residual import ResidualModel
from precipdiff.model_card import Conditioning, Domain, ModelCard, Provenance, TrainedModel

CHANNELS = ["base", "lat", "lon"]
COND_MEAN, COND_STD = [0.5, 47.2, -122.2], [0.5, 0.2, 0.2]


class PixelNet(nn.Module):
    """A denoiser network whose output at a pixel depends on that pixel only (elementwise ops,
    fixed order), so sampling with it is exactly tile-invariant."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.7, -0.4, 0.3, 0.2]))

    def forward(self, x: torch.Tensor, noise_labels: torch.Tensor) -> torch.Tensor:
        s = noise_labels.float().reshape(-1, 1, 1, 1)
        return (self.w[0] * x[:, 0:1] + self.w[1] * torch.tanh(x[:, 1:2]) + self.w[2] * x[:, 2:3]
                + self.w[3] * x[:, 3:4]) * (1 + 0.1 * torch.tanh(s))


def card(stage: str, objective: str = "edm", domain: Domain | None = None, source: str = "synthetic") -> ModelCard:
    return ModelCard(stage=stage, objective=objective, transform="log1p", upsampling="bilinear",
                     residual_base="input" if objective == "edm" else None,
                     sampler={"num_steps": 3} if objective == "edm" else {},
                     conditioning=Conditioning(tuple(CHANNELS[1:])),
                     provenance=Provenance(source=source, domain=domain or Domain(47.05, 47.35, -122.35, -122.05),
                                           period=("2022-10-01T01:00Z", "2022-10-21T12:00Z"),
                                           data_fingerprint="abc123"))


def pixel_model(stage: str, source: str = "synthetic") -> TrainedModel:
    model = ResidualModel(PixelNet(), "edm", COND_MEAN, COND_STD, residual_scale=0.5, sigma_data=1.0)
    return TrainedModel({}, model.eval(), card(stage, source=source))


def unet_model(stage: str, seed: int, objective: str = "edm") -> TrainedModel:
    """A small U-Net with random (non-zero) weights, so its output has spatial structure."""
    torch.manual_seed(seed)
    cfg = model_config(objective, 3, {"base_channels": 8, "channel_mult": [1, 2], "attn_levels": [1]},
                       cond_mean=COND_MEAN, cond_std=COND_STD, residual_scale=0.5, sigma_data=1.0)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.normal_(0.0, 0.6 / np.sqrt(p[0].numel()))
    return TrainedModel(cfg, model.eval(), card(stage, objective))


def grids(h: int, w: int, lat0: float = 47.0, lon0: float = -122.4):
    """Coarse (0.1°) and fine (0.01°) cell centres of an ``h × w`` coarse domain."""
    coarse = (np.round(lat0 + 0.05 + 0.1 * np.arange(h), 6), np.round(lon0 + 0.05 + 0.1 * np.arange(w), 6))
    fine = (np.round(lat0 + 0.005 + 0.01 * np.arange(10 * h), 6), np.round(lon0 + 0.005 + 0.01 * np.arange(10 * w), 6))
    return coarse, fine


def satellite(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Transformed (log1p) satellite fields with dry and wet cells, ``(t, h, w)`` float32."""
    rng = np.random.default_rng(seed)
    return np.log1p(np.maximum(rng.gamma(0.6, 3.0, (t, h, w)) - 0.5, 0.0)).astype(np.float32)
