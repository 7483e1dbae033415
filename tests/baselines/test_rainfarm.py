"""RainFARM ensemble: shapes, exact coarse-mean preservation, seeding, NaN and dry fields."""

import numpy as np
import pytest

from precipdiff.baselines import fit_alpha, member_seeds, rainfarm_ensemble


@pytest.fixture(scope="module")
def coarse():
    rng = np.random.default_rng(0)
    c = rng.gamma(0.5, 2.0, (3, 8, 6))
    c[c < 0.2] = 0.0
    c[1] = 0.0  # a dry hour
    c[2, 3, 4] = np.nan  # a missing coarse cell
    return c


@pytest.fixture(scope="module")
def run(coarse):
    return rainfarm_ensemble(coarse, factor=10, n_members=3, seed=7, return_info=True)


def block_mean(fine, factor=10):
    t, m, h, w = fine.shape
    return fine.reshape(t, m, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def test_shapes_and_exact_mean_preservation(coarse, run):
    ens, info = run
    assert ens.shape == (3, 3, 80, 60)
    np.testing.assert_allclose(
        block_mean(ens), np.broadcast_to(coarse[:, None], (3, 3, 8, 6)), atol=1e-9
    )
    assert np.all(ens[np.isfinite(ens)] >= 0)
    assert info["member_seeds"] == member_seeds(7, 3)
    assert np.isnan(info["alpha"][1]) and np.isfinite(info["alpha"][[0, 2]]).all()


def test_nan_blocks_and_dry_hours(run):
    ens, _ = run
    assert np.isnan(ens[2, :, 30:40, 40:50]).all() and np.isnan(ens).sum() == 3 * 100
    assert np.all(ens[1] == 0.0)


def test_seeding_is_deterministic_and_per_member(coarse, run):
    ens, _ = run
    state = np.random.get_state()[1].copy()
    again = rainfarm_ensemble(coarse, factor=10, n_members=3, seed=7)
    np.testing.assert_array_equal(again, ens)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    assert not np.allclose(ens[0, 0], ens[0, 1])  # members differ
    assert not np.allclose(rainfarm_ensemble(coarse[:1], 10, 1, seed=8)[0, 0], ens[0, 0])
    # fewer members = the first members; chunks in time with t0 = one call
    np.testing.assert_array_equal(rainfarm_ensemble(coarse, 10, 2, seed=7), ens[:, :2])
    np.testing.assert_array_equal(rainfarm_ensemble(coarse[2:], 10, 3, seed=7, t0=2), ens[2:])


def test_smoothing_kernel_keeps_the_domain_mean_roughly(coarse):
    ens = rainfarm_ensemble(coarse[:1], factor=10, n_members=2, seed=1, kernel_type="gaussian")
    assert np.mean(ens) == pytest.approx(np.mean(coarse[0]), rel=0.05)


def test_fit_alpha_recovers_power_law_slope():
    rng = np.random.default_rng(3)
    k = np.hypot(np.fft.fftfreq(128)[:, None], np.fft.fftfreq(128)[None, :])
    k[0, 0] = np.inf
    fields = np.fft.ifft2(np.fft.fft2(rng.normal(size=(4, 128, 128))) * k ** (-2.5 / 2)).real
    assert fit_alpha(fields, pixel_km=1.0, min_km=4.0) == pytest.approx(2.5, abs=0.2)
    # usable directly: the run records the alpha it was given
    _, info = rainfarm_ensemble(np.ones((1, 4, 4)), 10, 1, alpha=2.5, return_info=True)
    assert info["alpha"][0] == 2.5


def test_members_share_the_diffusion_chain_seeds():
    from precipdiff.inference.chain import ChainSettings

    _, info = rainfarm_ensemble(np.ones((1, 4, 4)), 10, 3, seed=2024, return_info=True)
    assert info["member_seeds"] == ChainSettings(n_members=3, seed=2024).seeds()  # one rule (precipdiff.seeds)
