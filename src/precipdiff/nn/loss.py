"""Training losses: the EDM denoising loss and the masked MSE of the deterministic baseline.

Both return the *unreduced* per-pixel loss (zero where the target is missing), like NVlabs/edm
``training/loss.py``; reduce with :func:`masked_mean` (or divide by a count summed over DDP ranks).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def valid_mask(y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixels to score: finite targets, and ``mask`` (bool or 0/1) where given."""
    valid = torch.isfinite(y)
    return valid if mask is None else valid & mask.bool()


def masked_mean(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``loss`` over the pixels where ``mask`` is true (0 if none is)."""
    return loss.sum() / mask.sum().clamp(min=1)


class EDMLoss:
    """EDM denoising loss, Karras et al. (2022) eq. 2 with the Table 1 training choices.

    ``ln σ ~ N(P_mean, P_std²)``, ``n ~ N(0, σ² I)``, per-pixel loss ``λ(σ) ‖D(y + n; σ) − y‖²`` with
    ``λ(σ) = (σ² + σ_d²) / (σ σ_d)²``, which makes the expected loss of every σ start near 1.

    Parameters
    ----------
    P_mean, P_std : float
        Mean and standard deviation of ``ln σ`` during training (σ in the units of the scaled data).
    sigma_data : float
        σ_d, the standard deviation of the scaled training data (must match the preconditioner's).
    """

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5):
        self.P_mean, self.P_std, self.sigma_data = float(P_mean), float(P_std), float(sigma_data)

    def weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """λ(σ) = (σ² + σ_d²) / (σ σ_d)²  (EDM Table 1, "loss weighting")."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    def sample_sigma(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` noise levels ``σ = exp(P_mean + P_std ξ)``, ξ ~ N(0, 1), on the generator's device."""
        device = generator.device if generator is not None else "cpu"
        xi = torch.randn(n, generator=generator, device=device)
        return (self.P_mean + self.P_std * xi).exp()

    def __call__(self, denoiser: Callable, y: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None,
                 *, generator: torch.Generator | None = None, sigma: torch.Tensor | float | None = None,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel weighted loss ``(B, C, H, W)``, zero at missing (NaN or masked-out) targets.

        ``denoiser(x, sigma, cond)`` is the preconditioned ``D``. ``sigma`` (scalar or ``(B,)``) and
        ``noise`` (standard normal, shape of ``y``) fix the random draws; otherwise they come from
        ``generator``, drawn on its device and moved to ``y``'s (so a CPU generator gives the same
        numbers for CUDA runs).
        """
        valid = valid_mask(y, mask)
        y = torch.where(valid, y, 0.0)
        if sigma is None:
            sigma = self.sample_sigma(y.shape[0], generator)
        sigma = torch.as_tensor(sigma, dtype=y.dtype).to(y.device).reshape(-1, 1, 1, 1).expand(y.shape[0], 1, 1, 1)
        if noise is None:
            device = generator.device if generator is not None else "cpu"
            noise = torch.randn(y.shape, generator=generator, device=device)
        n = noise.to(y.device, y.dtype) * sigma
        D_yn = denoiser(y + n, sigma.flatten(), cond)
        return self.weight(sigma) * (D_yn - y).square() * valid


class RegressionLoss:
    """Masked squared error of a deterministic prediction (the CorrDiff-style regression stage).

    ``regressor(cond)`` returns the prediction; in :class:`~precipdiff.nn.residual.ResidualModel`
    that is the same U-Net as the diffusion model, fed a zero ``x`` slot and noise label 0.
    """

    def __call__(self, regressor: Callable, y: torch.Tensor, cond: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel squared error ``(B, C, H, W)``, zero at missing (NaN or masked-out) targets."""
        valid = valid_mask(y, mask)
        pred = regressor(cond).float()
        return (pred - torch.where(valid, y, 0.0)).square() * valid
