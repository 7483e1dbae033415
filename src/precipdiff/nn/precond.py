"""EDM preconditioning: the denoiser ``D(x; σ) = c_skip x + c_out F(c_in x ⊕ cond, c_noise)``.

Karras et al. (2022), "Elucidating the Design Space of Diffusion-Based Generative Models",
Table 1, column "Ours (EDM)". The conditioning fields are concatenated to the scaled noisy input on
the channel axis (Saharia et al. 2022 style conditioning); they are *not* scaled by ``c_in``.
"""

from __future__ import annotations

import torch
from torch import nn


class EDMPrecond(nn.Module):
    """Wrap a network ``F(input, noise_labels)`` into the EDM denoiser ``D(x; σ, cond)``.

    Parameters
    ----------
    net : nn.Module
        Called as ``net(cat([c_in x, cond], dim=1), c_noise)``; ``in_channels = x channels + cond channels``.
    sigma_data : float
        Standard deviation σ_data of the (scaled) training data, same units as ``x``.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: torch.Tensor) -> torch.Tensor:
        """Denoised estimate ``D(x; σ)`` (float32) of the clean ``x`` at noise level ``σ`` (scalar or ``(B,)``)."""
        x = x.float()
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        sigma = sigma.expand(x.shape[0], 1, 1, 1)  # scalar σ → one per sample
        sd = self.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)  # EDM Table 1: c_skip = σ_d² / (σ² + σ_d²)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()  # EDM Table 1: c_out = σ σ_d / √(σ² + σ_d²)
        c_in = 1 / (sd**2 + sigma**2).sqrt()  # EDM Table 1: c_in = 1 / √(σ² + σ_d²)
        c_noise = sigma.log() / 4  # EDM Table 1: c_noise = ¼ ln(σ)
        net_in = torch.cat([c_in * x, cond.to(x.dtype)], dim=1)
        F_x = self.net(net_in, c_noise.flatten())
        return c_skip * x + c_out * F_x.float()
