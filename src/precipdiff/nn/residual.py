"""Residual model: normalisation around the network, graphcast-style, so the U-Net sees unit-scale data.

Physical (transformed-intensity) residual ``r`` and conditioning ``c`` enter as

* ``c_n = (c − cond_mean) / cond_std`` per channel, NaN → 0 (i.e. the channel mean);
* ``r_s = r / residual_scale`` — the EDM data ``y`` (σ, σ_data and the losses live in these units).

Two objectives share this wrapper and the :class:`~precipdiff.nn.unet.UNet`:

* ``"edm"``: ``forward(x, σ, c_n) = D(x; σ)`` through :class:`~precipdiff.nn.precond.EDMPrecond`;
* ``"regression"``: the same U-Net with a zero ``x`` slot and noise label 0 (so both objectives have
  identical architectures and configs), whose output is the mean residual.

Sampling either kind is :mod:`precipdiff.nn.sampling`'s (the project's one sampling path).

An ``"edm"`` model may carry a ``"regression"`` model as its ``mean`` (the CorrDiff residual base,
Mardani et al. 2024, eq. 4: ``y = μ(c) + r`` with the diffusion model learning ``r``): its samples are
then ``μ(c) + r`` with ``μ`` that regression's prediction, so every sampling path gets the full residual.

A model is persisted as ``(model_config, state_dict)``: :func:`build_model` rebuilds it from the
plain-dict config (see :func:`model_config`), then ``load_state_dict`` restores weights and buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from precipdiff.nn.precond import EDMPrecond
from precipdiff.nn.unet import UNet

OBJECTIVES = ("edm", "regression")
FORMAT_VERSION = 1


class ResidualModel(nn.Module):
    """Network + normalisation buffers for one residual (correction or downscaling) model.

    Parameters
    ----------
    net : UNet
        ``in_channels = 1 + cond_channels``, ``out_channels = 1``.
    objective : {"edm", "regression"}
    cond_mean, cond_std : sequence of float
        Per-channel statistics of the conditioning (physical units of each channel).
    residual_scale : float
        Residual units per unit of the network's data space (transformed-intensity units).
    sigma_data : float
        EDM σ_data in scaled units (ignored for regression).
    mean : ResidualModel, optional
        A ``"regression"`` model whose prediction is the base of this ``"edm"`` model's residual
        (CorrDiff); its weights are part of this model's ``state_dict`` (``mean.*``).
    """

    def __init__(self, net: UNet, objective: str, cond_mean: Sequence[float], cond_std: Sequence[float],
                 residual_scale: float = 1.0, sigma_data: float = 1.0, mean: "ResidualModel | None" = None):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"ResidualModel: objective must be one of {OBJECTIVES}; got {objective!r}")
        if mean is not None and (objective != "edm" or mean.objective != "regression"):
            raise ValueError(f"ResidualModel: a mean (residual base) must be a 'regression' model under an "
                             f"'edm' one; got {getattr(mean, 'objective', mean)!r} under {objective!r}")
        self.mean = mean
        self.objective = objective
        # One owner per weight, so the state_dict holds it once: "precond.net.*" or "regressor.*".
        self.precond = EDMPrecond(net, sigma_data) if objective == "edm" else None
        self.regressor = net if objective == "regression" else None
        self.register_buffer("cond_mean", torch.as_tensor(cond_mean, dtype=torch.float32).reshape(-1))
        self.register_buffer("cond_std", torch.as_tensor(cond_std, dtype=torch.float32).reshape(-1))
        self.register_buffer("residual_scale", torch.as_tensor(float(residual_scale), dtype=torch.float32))

    @property
    def net(self) -> UNet:
        """The U-Net, whichever objective owns it."""
        return self.precond.net if self.precond is not None else self.regressor

    def normalise_cond(self, cond: torch.Tensor) -> torch.Tensor:
        """``(cond − mean) / std`` per channel with missing values (NaN) set to 0."""
        if cond.shape[1] != self.cond_mean.numel():
            raise ValueError(f"ResidualModel: cond has {cond.shape[1]} channels (B, C, H, W); the model "
                             f"was trained with {self.cond_mean.numel()}")
        cond = (cond.float() - self.cond_mean[:, None, None]) / self.cond_std[:, None, None]
        return torch.nan_to_num(cond, nan=0.0)

    def forward(self, x: torch.Tensor | None, sigma: torch.Tensor | float | None, cond: torch.Tensor) -> torch.Tensor:
        """Training-space forward on *scaled* ``x`` and *normalised* ``cond``.

        ``"edm"``: the denoiser ``D(x; σ)``. ``"regression"``: the mean residual; ``x`` and ``sigma`` are ignored.
        """
        if self.precond is not None:
            return self.precond(x, sigma, cond)
        b, _, h, w = cond.shape
        empty_x = torch.zeros(b, 1, h, w, dtype=cond.dtype, device=cond.device)
        return self.regressor(torch.cat([empty_x, cond], dim=1), torch.zeros(b, device=cond.device))

    def mean_residual(self, cond: torch.Tensor) -> torch.Tensor | float:
        """The residual base ``μ(c)`` ``(B, 1, H, W)`` in physical units for *raw* ``cond``: the
        ``mean`` model's prediction, or 0 without one (call under the caller's autocast / inference mode)."""
        if self.mean is None:
            return 0.0
        return self.mean(None, None, self.mean.normalise_cond(cond)).float() * self.mean.residual_scale


def model_config(objective: str, cond_channels: int, unet: dict, *, cond_mean: Sequence[float],
                 cond_std: Sequence[float], residual_scale: float, sigma_data: float) -> dict:
    """The plain-dict (JSON/YAML-serialisable) description :func:`build_model` rebuilds a model from
    (:func:`with_mean` adds a residual base)."""
    return {
        "format_version": FORMAT_VERSION,
        "objective": objective,
        "cond_channels": int(cond_channels),
        "unet": {"in_channels": 1 + int(cond_channels), "out_channels": 1, **_plain(unet)},
        "sigma_data": float(sigma_data),
        "cond_mean": [float(v) for v in cond_mean],
        "cond_std": [float(v) for v in cond_std],
        "residual_scale": float(residual_scale),
    }


def with_mean(model: ResidualModel, config: dict, mean: ResidualModel, mean_config: dict
              ) -> tuple[ResidualModel, dict]:
    """``model`` (``"edm"``) with ``mean`` (``"regression"``) as its residual base, and the config
    that rebuilds both (``mean_model``: the regression's :func:`model_config`)."""
    if model.objective != "edm" or mean.objective != "regression":
        raise ValueError(f"with_mean: a residual base must be a 'regression' model under an 'edm' one; got "
                         f"{mean.objective!r} under {model.objective!r}")
    combined = build_model({**config, "mean_model": mean_config})
    combined.load_state_dict({**model.state_dict(), **{f"mean.{k}": v for k, v in mean.state_dict().items()}})
    return combined, {**config, "mean_model": mean_config}


def build_model(config: dict) -> ResidualModel:
    """Rebuild a :class:`ResidualModel` from :func:`model_config`'s dict (weights then via ``load_state_dict``)."""
    missing = {"objective", "cond_channels", "unet", "sigma_data", "cond_mean", "cond_std",
               "residual_scale"} - set(config)
    if missing:
        raise KeyError(f"build_model: model_config lacks {sorted(missing)}; got keys {sorted(config)}")
    if config.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"build_model: model_config format_version {config['format_version']} "
                         f"is not the supported {FORMAT_VERSION}")
    unet = dict(config["unet"])
    for key in ("channel_mult", "attn_levels"):
        if key in unet:
            unet[key] = tuple(unet[key])
    mean = build_model(config["mean_model"]) if config.get("mean_model") else None
    return ResidualModel(UNet(**unet), config["objective"], config["cond_mean"], config["cond_std"],
                         config["residual_scale"], config["sigma_data"], mean)


def _plain(unet: dict) -> dict:
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in unet.items()}
