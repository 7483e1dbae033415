"""Deterministic and stochastic EDM sampling: Karras et al. (2022) Algorithm 2 with the eq. 5 schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# the sampler vocabulary (SAMPLER_KEYS: the keyword arguments of edm_sampler a setting may give) is
# torch-free, so the command line checks a request without importing torch
from precipdiff.sampler_settings import (SAMPLER_KEYS, SOLVERS, SamplerSettingError, check_sampler,  # noqa: F401
                                         network_calls)


def sigma_steps(num_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Noise levels ``t_0 = σ_max > … > t_{N-1} = σ_min`` followed by ``t_N = 0``; shape ``(num_steps + 1,)``.

    EDM eq. 5: ``t_i = (σ_max^(1/ρ) + i/(N−1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ``; ``num_steps = 1`` gives ``[σ_max, 0]``.
    """
    if num_steps < 1 or not 0 < sigma_min <= sigma_max:
        raise ValueError(f"sigma_steps: need num_steps >= 1 and 0 < sigma_min <= sigma_max; got "
                         f"num_steps={num_steps}, sigma_min={sigma_min}, sigma_max={sigma_max}")
    i = torch.arange(num_steps, dtype=dtype, device=device)
    frac = i / max(num_steps - 1, 1)
    t = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros_like(t[:1])])


def edm_sampler(denoise: Callable, cond: torch.Tensor, latents: torch.Tensor, num_steps: int = 18,
                sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0, S_churn: float = 0.0,
                S_min: float = 0.0, S_max: float = math.inf, S_noise: float = 1.0, solver: str = "heun",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw samples by integrating the probability-flow ODE (or SDE with churn) from σ_max to 0.

    Parameters
    ----------
    denoise : callable
        ``denoise(x, sigma, cond) -> D(x; σ)``, e.g. :class:`~precipdiff.nn.precond.EDMPrecond`.
    cond : Tensor
        Conditioning passed through to ``denoise`` unchanged.
    latents : Tensor
        Standard normal ``(B, C, H, W)``; scaled by σ_max here. Its dtype is the integration dtype.
    num_steps, sigma_min, sigma_max, rho
        Discretisation (EDM eq. 5; σ in the units of the data ``denoise`` was trained on).
    S_churn, S_min, S_max, S_noise
        Stochasticity: noise is raised by ``γ = min(S_churn/N, √2 − 1)`` when ``S_min ≤ t_i ≤ S_max``.
    solver : {"heun", "euler"}
        Heun's 2nd-order correction (Algorithm 2) or plain Euler steps.
    generator : torch.Generator, optional
        Source of the churn noise (drawn on its device, moved to ``latents``' device).

    Returns
    -------
    Tensor
        Samples ``x_N``, same shape and dtype as ``latents``.
    """
    if solver not in ("heun", "euler"):
        raise ValueError(f"edm_sampler: solver must be 'heun' or 'euler'; got {solver!r}")
    t_steps = sigma_steps(num_steps, sigma_min, sigma_max, rho, device=latents.device, dtype=latents.dtype)
    gen_device = generator.device if generator is not None else latents.device
    x_next = latents * t_steps[0]  # Alg. 2 line 2: sample x_0 ~ N(0, t_0² I)
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):  # line 3: for i in 0..N-1
        x_cur = x_next
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0.0  # line 4
        eps = torch.randn(x_cur.shape, generator=generator, device=gen_device).to(x_cur) if gamma > 0 else 0.0
        t_hat = t_cur + gamma * t_cur  # line 6: t̂_i = t_i + γ_i t_i
        x_hat = x_cur + (t_hat**2 - t_cur**2).sqrt() * S_noise * eps  # lines 5, 7: ε ~ N(0, S_noise² I)
        d_cur = (x_hat - denoise(x_hat, t_hat, cond).to(x_hat)) / t_hat  # line 8: d_i = (x̂ − D(x̂; t̂)) / t̂
        x_next = x_hat + (t_next - t_hat) * d_cur  # line 8: Euler step from t̂_i to t_{i+1}
        if solver == "heun" and i < num_steps - 1:  # line 9: 2nd-order correction unless t_{i+1} = 0
            d_prime = (x_next - denoise(x_next, t_next, cond).to(x_next)) / t_next  # line 10
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)  # line 11
    return x_next  # line 12
