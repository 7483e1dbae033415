"""Algorithm 2 on Gaussian data, where the exact denoiser is known: D(x; σ) = (s² x + σ² μ)/(s² + σ²)."""

import math

import pytest
import torch

from precipdiff.nn.sampler import edm_sampler, sigma_steps

MU, S = 1.5, 0.7  # data ~ N(μ, s²) per pixel


def exact_denoiser(x, sigma, cond):
    return (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)


def test_sigma_steps_endpoints_and_closed_form():
    t = sigma_steps(18, 0.002, 80.0, 7.0)
    assert t.shape == (19,) and t[0].item() == pytest.approx(80.0) and t[-2].item() == pytest.approx(0.002)
    assert t[-1].item() == 0.0 and bool((t[:-1] > t[1:]).all())
    # ρ = 1 is linear in σ: 80, (80 + 0.002)/2, 0.002, 0
    torch.testing.assert_close(sigma_steps(3, 0.002, 80.0, 1.0), torch.tensor([80.0, 40.001, 0.002, 0.0],
                                                                               dtype=torch.float64))
    assert sigma_steps(1, 0.002, 80.0).tolist() == [80.0, 0.0]


def exact_flow(latents):
    """The probability-flow ODE solved exactly from x(σ_max = 80) = 80 z: x(0) = μ + (80 z − μ) s / √(s² + 80²)."""
    return MU + (80 * latents - MU) * S / math.sqrt(S**2 + 80**2)


@pytest.mark.parametrize(("solver", "order"), [("heun", 2), ("euler", 1)])
def test_deterministic_solvers_converge_to_the_exact_flow_at_their_order(solver, order):
    latents = torch.randn(4000, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    err = [(edm_sampler(exact_denoiser, None, latents, num_steps=n, solver=solver) - exact_flow(latents)).abs().max()
           for n in (32, 64, 128)]
    ratios = [(err[0] / err[1]).item(), (err[1] / err[2]).item()]  # halving the step: 2**order
    assert ratios == pytest.approx([2**order] * 2, rel=0.2)


@pytest.mark.parametrize(
    ("solver", "steps", "churn"),
    [("heun", 64, 0.0), ("euler", 256, 0.0), ("heun", 64, 30.0)],
)
def test_samples_reproduce_gaussian_mean_and_variance(solver, steps, churn):
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(40_000, 1, 1, 1, generator=gen, dtype=torch.float64)
    x = edm_sampler(exact_denoiser, None, latents, num_steps=steps, solver=solver, S_churn=churn,
                    S_min=0.01, S_max=50.0, generator=gen)
    # Monte-Carlo s.e.: mean 0.7/200 = 0.0035, std 0.7/√80000 ≈ 0.0025; the N(0, σ_max²) prior ignores μ,
    # which biases the deterministic mean by −μ s/σ_max ≈ −0.013 (churn re-noising removes most of it)
    assert x.mean().item() == pytest.approx(MU, abs=0.025)
    assert x.std().item() == pytest.approx(S, abs=0.015)


def test_churn_uses_the_generator_reproducibly():
    latents = torch.randn(8, 1, 2, 2, dtype=torch.float64)
    runs = [edm_sampler(exact_denoiser, None, latents, num_steps=6, S_churn=10,
                        generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(*runs)
    assert not torch.equal(runs[0], edm_sampler(exact_denoiser, None, latents, num_steps=6))
    assert math.isfinite(runs[0].sum().item())
