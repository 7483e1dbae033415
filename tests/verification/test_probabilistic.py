"""CRPS (vs scoringrules, properscoring, hand values, the Gaussian closed form), spread-skill,
rank histogram, exceedance probability and Brier score."""

import numpy as np
import properscoring
import pytest
import scoringrules
from scipy import stats

from precipdiff.verification import (
    BrierScores,
    CRPSScores,
    RankHistogram,
    SpreadSkill,
    crps_ensemble,
    exceedance_probability,
)


def _members_last(ens):
    return np.moveaxis(ens, 1, -1)


@pytest.mark.parametrize("fair, estimator", [(False, "nrg"), (True, "fair")])
def test_crps_matches_scoringrules(ens_obs, fair, estimator):
    ens, obs = ens_obs  # zeros (ties) and NaNs included
    ours = crps_ensemble(ens, obs, fair=fair)
    ref = scoringrules.crps_ensemble(obs, _members_last(ens), estimator=estimator)
    valid = np.isfinite(ours)
    assert valid.sum() == np.isfinite(obs).sum() - 1  # one pixel has a NaN member
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=1e-12, atol=1e-12)


def test_crps_matches_properscoring(ens_obs):
    ens, obs = ens_obs
    ours = crps_ensemble(ens, obs)
    ref = properscoring.crps_ensemble(obs, _members_last(ens))
    valid = np.isfinite(ours)
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=1e-12, atol=1e-12)


def test_crps_by_hand():
    ens = np.array([0.0, 1.0, 2.0]).reshape(1, 3, 1, 1)
    obs = np.full((1, 1, 1), 0.5)
    # E|X-y| = (0.5 + 0.5 + 1.5) / 3 = 5/6; sum_ij |xi - xj| = 8
    assert crps_ensemble(ens, obs)[0, 0, 0] == pytest.approx(5 / 6 - 8 / 18)
    assert crps_ensemble(ens, obs, fair=True)[0, 0, 0] == pytest.approx(5 / 6 - 8 / 12)
    # all members equal the observation (dry pixel): both are 0
    assert crps_ensemble(np.zeros((1, 3, 1, 1)), np.zeros((1, 1, 1)), fair=True)[0, 0, 0] == 0.0


def test_fair_crps_is_unbiased_for_small_ensembles():
    # members and obs ~ N(0, 1): the CRPS of the true N(0,1) averaged over y is 1/sqrt(pi)
    rng = np.random.default_rng(0)
    ens, obs = rng.normal(size=(50, 4, 40, 40)), rng.normal(size=(50, 40, 40))
    acc = CRPSScores()
    acc.accum(ens, obs)
    out = acc.compute()
    assert out["crps_fair"] == pytest.approx(1 / np.sqrt(np.pi), abs=0.005)
    # the standard estimator is worse by E|X-X'| / (2M) = (2/sqrt(pi)) / 8
    assert out["crps"] == pytest.approx(1 / np.sqrt(np.pi) * (1 + 1 / 4), abs=0.005)


def test_crps_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected ens"):
        crps_ensemble(np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 5)))


def _calibrated(rng, shape=(20, 8, 40, 40), censor=False):
    """Members and obs exchangeable: all drawn from N(mu, 1) with a per-pixel mu."""
    t, m, h, w = shape
    mu = rng.normal(0.0, 2.0, (t, 1, h, w))
    ens, obs = mu + rng.normal(size=shape), (mu + rng.normal(size=(t, 1, h, w)))[:, 0]
    if censor:  # precipitation-like: many exact zeros
        ens, obs = np.maximum(ens, 0.0), np.maximum(obs, 0.0)
    return ens, obs


def test_spread_skill_is_one_for_calibrated_ensemble():
    ens, obs = _calibrated(np.random.default_rng(1))
    acc = SpreadSkill()
    acc.accum(ens, obs)
    assert acc.compute()["spread_skill_ratio"] == pytest.approx(1.0, abs=0.02)
    acc2 = SpreadSkill()
    acc2.accum(ens * 0.5 + 0.5 * ens.mean(axis=1, keepdims=True), obs)  # under-dispersive
    assert acc2.compute()["spread_skill_ratio"] < 0.8


def test_spread_skill_by_hand():
    ens = np.array([[0.0, 2.0], [1.0, 1.0]]).T.reshape(1, 2, 1, 2)  # pixel A [0, 2], B [1, 1]
    obs = np.array([1.0, 3.0]).reshape(1, 1, 2)
    acc = SpreadSkill()
    acc.accum(ens, obs)
    out = acc.compute()
    # s^2 = (2, 0) -> mean 1; (xbar - y)^2 = (0, 4) -> mean 2; ratio = sqrt(3/2) * 1 / sqrt(2)
    assert out["spread"] == pytest.approx(1.0)
    assert out["rmse_ens_mean"] == pytest.approx(np.sqrt(2.0))
    assert out["spread_skill_ratio"] == pytest.approx(np.sqrt(0.75))


@pytest.mark.parametrize("censor", [False, True])
def test_rank_histogram_flat_for_calibrated_ensemble(censor):
    ens, obs = _calibrated(np.random.default_rng(2), censor=censor)
    acc = RankHistogram(seed=0)
    acc.accum(ens, obs)
    counts = acc.compute()["counts"]
    assert counts.size == 9 and counts.sum() == obs.size
    assert stats.chisquare(counts).pvalue > 0.01
    assert acc.compute()["chi2"] == pytest.approx(stats.chisquare(counts).statistic)


def test_rank_histogram_by_hand_and_ties():
    ens = np.tile(np.array([1.0, 2.0, 3.0])[None, :, None, None], (1, 1, 1, 3))
    obs = np.array([2.5, 0.0, 5.0]).reshape(1, 1, 3)
    acc = RankHistogram()
    acc.accum(ens, obs)
    np.testing.assert_array_equal(acc.compute()["counts"], [1, 0, 1, 1])
    # dry obs among all-dry members: ranks spread uniformly over 0..M, not piled into rank 0
    acc = RankHistogram(seed=5)
    acc.accum(np.zeros((1, 3, 100, 100)), np.zeros((1, 100, 100)))
    counts = acc.compute()["counts"]
    assert stats.chisquare(counts).pvalue > 0.01 and counts.min() > 2000


def test_exceedance_probability_and_brier_by_hand():
    ens = np.array([0.0, 1.0, 5.0, 7.0]).reshape(1, 4, 1, 1)
    assert exceedance_probability(ens, 1.0)[0, 0, 0] == 0.75  # event is >= threshold
    acc = BrierScores(thresholds=[1.0, 6.0])
    acc.accum(ens, np.full((1, 1, 1), 2.0))
    brier = acc.compute()["brier"]
    assert brier[1.0] == pytest.approx(0.25**2) and brier[6.0] == pytest.approx(0.25**2)
