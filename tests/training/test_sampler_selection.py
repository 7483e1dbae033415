"""Sampler selection on validation data: the known best setting wins on a toy problem with an exact denoiser."""

import numpy as np
import pandas as pd
import pytest
import torch

from precipdiff.model_card import ModelCard, TrainedModel
from precipdiff.nn import build_model, model_config
from precipdiff.nn.sampling import residual_sampler
from precipdiff.training.sampler_selection import (band_ratios, choose, network_calls, score_settings, wettest_tiles,
                                                   worst_band)


def gaussian_model(sigma_data: float = 1.0) -> TrainedModel:
    """A fresh U-Net has a zero-initialised output layer (F ≡ 0), so its EDM denoiser is
    D(x; σ) = c_skip x = x σ_d² / (σ² + σ_d²): the exact denoiser of white N(0, σ_d²) data."""
    cfg = model_config("edm", 1, {"base_channels": 8, "channel_mult": [1, 2], "attn_levels": []},
                       cond_mean=[0.0], cond_std=[1.0], residual_scale=1.0, sigma_data=sigma_data)
    card = ModelCard(stage="downscaling", objective="edm", transform="none", residual_base="input")
    return TrainedModel(cfg, build_model(cfg).eval(), card)


def test_the_known_best_sampler_is_chosen():
    """Truth = 3 + N(0, 1) white noise. Integrating the exact ODE from σ_max = 80 in 18 Heun steps
    draws from that distribution (calibrated, the radar's power); starting at σ_max = 0.3 keeps
    only 0.3² of the variance, and one Euler step from 80 collapses to the mean."""
    rng = np.random.default_rng(0)
    n, size = 6, 32
    target = 3.0 + rng.standard_normal((n, size, size))
    base = np.full_like(target, 3.0)
    cond = torch.from_numpy(base[:, None].astype(np.float32))
    model = gaussian_model()
    grid = [{"num_steps": 1, "sigma_max": 80.0, "solver": "euler"},
            {"num_steps": 18, "sigma_max": 0.3, "solver": "heun"},
            {"num_steps": 18, "sigma_max": 80.0, "solver": "heun"}]
    sample = lambda s, c, z: residual_sampler(model.model, s)(c, z)  # noqa: E731
    table = score_settings(sample, grid, cond, base, target, "none", "transformed", members=4, seed=1, pixel_km=1.0,
                           psd_bands_km={"psd_ratio_2_4km": [2.0, 4.0], "psd_ratio_4_8km": [4.0, 8.0]})
    exact = table.iloc[2]
    assert 0.9 < exact["spread_skill_ratio"] < 1.1 and 0.9 < exact["psd_ratio"] < 1.1
    assert table.iloc[1]["spread_skill_ratio"] < 0.5 and table.iloc[1]["psd_ratio"] < 0.2
    assert table.iloc[0]["psd_ratio"] < 0.01
    # fair CRPS of the calibrated ensemble ≈ that of N(0, 1) against its own draws: 1/√π
    np.testing.assert_allclose(exact["crps_fair"], 1 / np.sqrt(np.pi), rtol=0.05)
    assert choose(table, [0.8, 1.2], [0.7, 1.3], ["psd_ratio_2_4km", "psd_ratio_4_8km"]) == 2
    assert list(table["network_calls"]) == [1, 35, 35]
    assert (table["psd_ratio"] == table[["psd_ratio_2_4km", "psd_ratio_4_8km"]].apply(
        lambda r: worst_band(r.to_dict()), axis=1)).all()


def test_choose_prefers_admissible_then_lowest_crps():
    table = pd.DataFrame({"crps_fair": [0.5, 0.7, 0.6, 0.4],
                          "spread_skill_ratio": [1.5, 1.0, 1.1, 0.5],
                          "psd_ratio": [1.0, 1.0, 1.2, 1.0]})
    assert choose(table, [0.8, 1.2], [0.7, 1.3]) == 2  # rows 1, 2 admissible; 2 has the lower CRPS
    far = table.assign(spread_skill_ratio=[1.5, 3.0, 2.0, 0.1])
    assert choose(far, [0.8, 1.2], [0.7, 1.3]) == 0  # none admissible: the closest (log 1.5/1.2)


def test_network_calls_follow_algorithm_2():
    assert network_calls({"num_steps": 6}) == 11 and network_calls({"num_steps": 6, "solver": "euler"}) == 6


def test_wettest_tiles_skip_missing_windows():
    target = np.zeros((2, 8, 8))
    target[1, 4:, 4:] = 5.0
    target[0, :4, :4] = 9.0
    target[0, 0, 0] = np.nan  # the wettest window has a hole: not used
    assert wettest_tiles(target, 4, 1) == [(1, 4, 4)]
    every = wettest_tiles(target, 4, 8)
    assert len(every) == 7 and (0, 0, 0) not in every and every == sorted(every)


def test_band_ratios_are_geometric_means_within_each_band():
    wavelength = np.array([20.0, 10.0, 5.0, 4.0, 3.0, 2.0])
    ref = np.ones(6)
    psd = np.array([1.0, 0.8, 1.0, 2.0, 2.0, 8.0])
    bands = band_ratios(psd, ref, wavelength, {"small": [2.5, 4.5], "large": [8.0, 12.0], "all": [2.0, 20.0]})
    np.testing.assert_allclose(bands["small"], 2.0)  # 4 and 3 km
    np.testing.assert_allclose(bands["large"], 0.8)  # 10 km
    np.testing.assert_allclose(bands["all"], np.exp(np.log(psd).mean()))
    assert worst_band(bands) == 2.0 and worst_band({"a": 0.4, "b": 2.0}) == 0.4
    with pytest.raises(ValueError, match="psd_bands_km.tiny.*no wavelength"):
        band_ratios(psd, ref, wavelength, {"tiny": [0.5, 1.0]})


def test_a_broad_band_average_does_not_hide_a_band_outside_the_bounds():
    """Row 0's 3 km excess (1.5) and 10 km deficit (0.8) average to ~1.1 over a broad band: within
    the bounds there, not per band. Per band, only row 1 is admissible."""
    table = pd.DataFrame({"crps_fair": [0.50, 0.55], "spread_skill_ratio": [1.0, 0.9],
                          "psd_ratio_broad": [1.10, 1.00], "psd_ratio_3km": [1.5, 1.2], "psd_ratio_10km": [0.8, 0.75]})
    assert choose(table, [0.8, 1.2], [0.7, 1.3], ["psd_ratio_broad"]) == 0
    assert choose(table, [0.8, 1.2], [0.7, 1.3], ["psd_ratio_3km", "psd_ratio_10km"]) == 1
