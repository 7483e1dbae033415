"""EDM loss: λ(σ), σ distribution, limiting denoisers, masking; regression MSE."""

import math

import pytest
import torch

from precipdiff.nn.loss import EDMLoss, RegressionLoss, masked_mean


@pytest.mark.parametrize(("sigma", "sigma_data", "expected"), [(1.0, 0.5, 5.0), (0.5, 0.5, 8.0), (2.0, 1.0, 1.25)])
def test_weight_closed_form(sigma, sigma_data, expected):
    # λ(σ) = (σ² + σ_d²)/(σ σ_d)²: (1 + .25)/.25 = 5; (.25 + .25)/.0625 = 8; (4 + 1)/4 = 1.25
    assert EDMLoss(sigma_data=sigma_data).weight(torch.tensor(sigma)).item() == pytest.approx(expected)


def test_log_sigma_is_normal_p_mean_p_std():
    ln_sigma = EDMLoss(P_mean=-1.2, P_std=1.2).sample_sigma(200_000, torch.Generator().manual_seed(0)).log()
    assert ln_sigma.mean().item() == pytest.approx(-1.2, abs=0.01)
    assert ln_sigma.std().item() == pytest.approx(1.2, abs=0.01)


def test_perfect_and_identity_denoisers():
    y = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    loss = EDMLoss(sigma_data=0.5)
    perfect = loss(lambda x, s, c: y, y, None, sigma=0.3, generator=torch.Generator().manual_seed(2))
    assert perfect.abs().max().item() == 0.0
    # D(x) = x leaves the noise n = σ ε, so the loss is λ(σ) σ² ε² with E = (σ² + σ_d²)/σ_d² = 1.36
    sigma = torch.full((4,), 0.3)
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    identity = loss(lambda x, s, c: x, y, None, sigma=sigma, noise=noise)
    expected = (0.3**2 + 0.25) / 0.25 * noise.square()
    torch.testing.assert_close(identity, expected)


def test_nan_targets_are_masked():
    y = torch.ones(2, 1, 4, 4)
    y[0, 0, 0, 0] = math.nan
    per_pixel = EDMLoss()(lambda x, s, c: torch.zeros_like(x), y, None, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(per_pixel).all() and per_pixel[0, 0, 0, 0] == 0
    mse = RegressionLoss()(lambda c: torch.zeros_like(y), y, None)
    valid = torch.isfinite(y)
    assert masked_mean(mse, valid).item() == pytest.approx(1.0)  # 31 valid pixels of error 1
    assert mse.sum().item() == pytest.approx(31.0)
