"""Hour-block bootstrap: coverage at the nominal rate, weights, per-hour sums == the streaming scores."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precipdiff import verification as v
from precipdiff.verification.bootstrap import SCORES, STAT_NAMES, psd_ratio_score



def rain(rng, shape):
    """Gamma rates (mm/h) with 60 % exact zeros."""
    return np.where(rng.random(shape) < 0.4, rng.gamma(0.7, 3.0, shape), 0.0)


def _mean_interval(values: np.ndarray, block: int, seed: int, n_boot: int = 400) -> tuple[float, float]:
    sums = {"sum_crps_fair": values, "n": np.ones_like(values)}
    weights = v.block_weights(values.size, n_boot, block, seed)
    _, reps = v.bootstrap(SCORES["crps_fair"], sums, weights)
    return v.percentile_interval(reps, 0.95)


@pytest.mark.parametrize("block, theta", [(1, 0.0), (5, 1.0)])
def test_interval_covers_a_known_mean_at_the_nominal_rate(block, theta):
    """95 % intervals of the mean of 60 hours (iid, or MA(1) x_t = e_t + e_{t−1} — neighbours
    correlated 0.5 — in blocks of 5 hours) cover the true mean 2 in 88–99 % of 300 independent
    experiments (binomial sd ≈ 1.3 %; percentile intervals run slightly narrow at this size)."""
    rng = np.random.default_rng(0)
    covered = 0
    for k in range(300):
        e = rng.standard_normal(61)
        x = e[1:] + theta * e[:-1]
        lo, hi = _mean_interval(2.0 + x, block, seed=k)
        covered += lo <= 2.0 <= hi
    assert 0.88 <= covered / 300 <= 0.99


def test_ignoring_dependence_undercovers():
    """The same AR(1) hours with blocks of 1 (hours treated as independent) cover clearly less than
    blocks of 4 do: the block length matters, and the test above would fail without it."""
    rng = np.random.default_rng(1)
    hits = {1: 0, 6: 0}
    for k in range(200):
        x = np.zeros(60)
        e = rng.standard_normal(60)
        for t in range(1, 60):
            x[t] = 0.7 * x[t - 1] + e[t]
        for block in hits:
            lo, hi = _mean_interval(x, block, seed=k)
            hits[block] += lo <= 0.0 <= hi
    assert hits[1] < hits[6] - 10
    assert hits[1] / 200 < 0.88


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 50), block=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_block_weights_resample_n_hours_in_blocks(n, block, seed):
    w = v.block_weights(n, 20, block, seed)
    assert w.shape == (20, n) and np.all(w.sum(axis=1) == n) and np.all(w >= 0)
    if block >= n:  # one block holding every hour
        assert np.all(w == 1)


def test_block_weights_refuse_nothing_to_resample():
    with pytest.raises(ValueError, match="n >= 1"):
        v.block_weights(0, 10, 3, 0)


def test_percentile_interval_of_known_replicates():
    lo, hi = v.percentile_interval(np.arange(1001.0), 0.9)
    np.testing.assert_allclose((lo, hi), (50.0, 950.0))
    assert np.isnan(v.percentile_interval(np.array([np.nan, np.inf]))[0])


def test_hourly_sums_reproduce_the_streaming_scores(ens_obs):
    """Scores recomputed from the per-hour sums equal the pixel-level accumulators."""
    ens, obs = ens_obs
    hourly = v.HourlyStats()
    hourly.accum(ens[:3], obs[:3], range(3))
    hourly.accum(ens[3:], obs[3:], range(3, 7))
    _, stats, _ = hourly.arrays()
    totals = {name: stats[:, i].sum()[None] for i, name in enumerate(STAT_NAMES)}
    crps, spread = v.CRPSScores(), v.SpreadSkill()
    crps.accum(ens, obs)
    spread.accum(ens, obs)
    valid = np.isfinite(obs) & np.isfinite(ens).all(axis=1)
    mean, y = ens.mean(axis=1)[valid], obs[valid]
    expected = {"crps_fair": crps.compute()["crps_fair"], "rmse": np.sqrt(np.mean((mean - y) ** 2)),
                "mae": np.mean(np.abs(mean - y)), "bias": np.mean(mean - y), "corr": np.corrcoef(mean, y)[0, 1],
                "spread_skill_ratio": spread.compute()["spread_skill_ratio"]}
    for name, value in expected.items():
        np.testing.assert_allclose(SCORES[name](totals)[0], value, rtol=1e-9, err_msg=name)


def test_deterministic_crps_is_the_mae_and_has_no_spread():
    rng = np.random.default_rng(3)
    f, y = rain(rng, (4, 9, 9)), rain(rng, (4, 9, 9))
    hourly = v.HourlyStats()
    hourly.accum(f, y, range(4))
    _, stats, _ = hourly.arrays()
    names = STAT_NAMES
    totals = {name: stats[:, i].sum()[None] for i, name in enumerate(names)}
    np.testing.assert_allclose(SCORES["crps_fair"](totals)[0], np.mean(np.abs(f - y)))
    assert totals["sum_var_fortin"][0] == 0


def test_paired_difference_of_a_method_with_itself_is_exactly_zero(ens_obs):
    ens, obs = ens_obs
    hourly = v.HourlyStats()
    hourly.accum(ens, obs, range(7))
    table = v.hourly_table({("a", "fine"): hourly, ("b", "fine"): hourly})
    a, b = (v.hourly_sums(table, m, "fine", range(7)) for m in ("a", "b"))
    w = v.block_weights(7, 50, 2, 0)
    ea, ra = v.bootstrap(SCORES["crps_fair"], a, w)
    eb, rb = v.bootstrap(SCORES["crps_fair"], b, w)
    assert ea == eb and np.all(ra - rb == 0) and np.ptp(ra) > 0


def test_psd_ratio_of_doubled_fields_is_four():
    """Fields × 2 have 4 × the power at every wavelength: the ratio is 4 in every band and resample."""
    rng = np.random.default_rng(5)
    y = rain(rng, (6, 32, 32))
    ref, dbl = v.HourlyStats(pixel_km=1.0), v.HourlyStats(pixel_km=1.0)
    ref.accum(y, y, range(6))
    dbl.accum(2 * y, y, range(6))
    table = v.hourly_table({("radar", "fine"): ref, ("x", "fine"): dbl})
    r, x = (v.hourly_sums(table, m, "fine", range(6)) for m in ("radar", "x"))
    score = psd_ratio_score(r.pop("wavelength_km"), 2.0, 10.0)
    sums = {"psd": x["psd"], "psd_n": x["psd_n"], "radar_psd": r["psd"], "radar_psd_n": r["psd_n"]}
    est, reps = v.bootstrap(score, sums, v.block_weights(6, 30, 2, 1))
    np.testing.assert_allclose([est, *reps], 4.0)
