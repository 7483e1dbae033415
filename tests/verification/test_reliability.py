"""Brier score, its Murphy (1973) decomposition and the reliability counts: by hand, against
properscoring, streamed, per hour and per cell stratum."""

import numpy as np
import properscoring
import pytest

from precipdiff.verification import BrierScores, ReliabilityCounts, brier_terms, cell_strata


def hand_case():
    """M = 2, threshold 1 mm/h, 8 pixels of one hour: 4 forecast p = 0 (1 event), 2 forecast
    p = 0.5 (1 event), 2 forecast p = 1 (2 events)."""
    members = np.array([[0, 0], [0, 0], [0, 0], [0.5, 0.2], [0, 3], [2, 0], [4, 5], [1, 1]], float)
    obs = np.array([2.0, 0, 0, 0, 1.0, 0, 7, 1])
    return members.T.reshape(1, 2, 1, 8), obs.reshape(1, 1, 8)


def test_brier_decomposition_by_hand():
    ens, obs = hand_case()
    acc = ReliabilityCounts([1.0])
    acc.accum(ens, obs, [5])
    terms = acc.terms()["all"][1.0]
    # BS = [(0-1)² + 3·0 + (.5-1)² + (.5-0)² + 0 + 0] / 8
    assert terms["brier"] == pytest.approx(1.5 / 8)
    # REL = [4 (0 - 1/4)² + 2 (1/2 - 1/2)² + 2 (1 - 1)²] / 8
    assert terms["reliability"] == pytest.approx(0.25 / 8)
    # RES = [4 (1/4 - 1/2)² + 2 (1/2 - 1/2)² + 2 (1 - 1/2)²] / 8, ō = 4/8
    assert terms["resolution"] == pytest.approx(0.75 / 8)
    assert terms["uncertainty"] == pytest.approx(0.25)
    assert terms["forecast_frequency"] == pytest.approx(3 / 8) and terms["observed_frequency"] == 0.5
    counts = acc.table()
    assert counts["n"].tolist() == [4, 2, 2] and counts["n_obs"].tolist() == [1, 1, 2]
    assert counts["prob"].tolist() == [0.0, 0.5, 1.0] and set(counts["hour_key"]) == {5}


def test_brier_matches_properscoring_and_the_decomposition_is_exact():
    rng = np.random.default_rng(3)
    ens = rng.gamma(0.4, 2.0, size=(4, 6, 12, 10))
    obs = rng.gamma(0.4, 2.0, size=(4, 12, 10)) * rng.uniform(0.5, 1.5, size=(4, 12, 10))
    obs[0, 0, 0] = np.nan  # missing: excluded
    ens[1, 2, 3, 4] = np.nan
    acc = BrierScores([0.1, 1.0, 5.0])
    acc.accum(ens, obs)
    out = acc.compute()
    valid = np.isfinite(obs) & np.isfinite(ens).all(axis=1)
    for thr in (0.1, 1.0, 5.0):
        # continuous draws: no ties, so P(X > t) (properscoring) = P(X >= t)
        ref = properscoring.threshold_brier_score(obs[valid], np.moveaxis(ens, 1, -1)[valid], thr).mean()
        assert out["brier"][thr] == pytest.approx(ref, rel=1e-12)
        recomposed = out["brier_reliability"][thr] - out["brier_resolution"][thr] + out["brier_uncertainty"][thr]
        assert recomposed == pytest.approx(out["brier"][thr], rel=1e-12)
    assert out["n"] == valid.sum()


def test_counts_stream_per_hour_and_per_stratum():
    rng = np.random.default_rng(4)
    ens, obs = rng.gamma(0.5, 2.0, size=(5, 3, 20, 20)), rng.gamma(0.5, 2.0, size=(5, 20, 20))
    sat = rng.gamma(0.3, 1.0, size=(5, 2, 2))
    cells = cell_strata(sat, (20, 20), 0.1)
    whole, parts = ReliabilityCounts([0.1, 1.0]), ReliabilityCounts([0.1, 1.0])
    whole.accum(ens, obs, range(5), cells)
    for c in (slice(0, 2), slice(2, 5)):
        parts.accum(ens[c], obs[c], range(5)[c], {k: m[c] for k, m in cells.items()})
    np.testing.assert_array_equal(whole.totals(), parts.totals())
    tot = whole.totals()  # (stratum, threshold, k, [n, n_obs])
    np.testing.assert_array_equal(tot[0], tot[1] + tot[2])  # dry + wet = all (no NaN satellite)
    dry = sat.repeat(10, 1).repeat(10, 2) < 0.1
    assert tot[1, 0, :, 0].sum() == dry.sum()
    # the dry stratum's observed frequency of R >= 0.1, by hand
    assert whole.terms()["sat_dry"][0.1]["observed_frequency"] == pytest.approx((obs >= 0.1)[dry].mean())
    # one hour's rows of the table are that hour's counts
    table = parts.table()
    hour3 = table[(table["hour_key"] == 3) & (table["cells"] == "all") & (table["threshold"] == 1.0)]
    k = (ens[3] >= 1.0).sum(axis=0)
    assert hour3["n"].tolist() == np.bincount(k.ravel(), minlength=4).tolist()


def test_a_deterministic_field_is_a_zero_one_probability():
    fcst, obs = np.array([[[0.0, 2.0, 2.0, 0.0]]]), np.array([[[0.0, 2.0, 0.0, 3.0]]])
    acc = ReliabilityCounts([1.0])
    acc.accum(fcst, obs)
    terms = acc.terms()["all"][1.0]
    assert acc.probabilities().tolist() == [0.0, 1.0]
    assert terms["brier"] == pytest.approx(0.5)  # two of four pixels wrong


def test_brier_terms_vectorise_over_resamples_and_empty_bins_are_nan_free():
    n = np.array([[4, 2, 2], [0, 0, 8]], float)
    o = np.array([[1, 1, 2], [0, 0, 4]], float)
    terms = brier_terms(n, o, np.array([0, 0.5, 1]))
    assert terms["brier"][0] == pytest.approx(1.5 / 8)
    assert terms["brier"][1] == pytest.approx(0.5) and terms["reliability"][1] == pytest.approx(0.25)
    assert np.isfinite(terms["resolution"]).all()


def test_strata_must_nest_and_must_not_change():
    with pytest.raises(ValueError, match="does not nest"):
        cell_strata(np.zeros((1, 2, 2)), (15, 20), 0.1)
    acc = ReliabilityCounts([1.0])
    acc.accum(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="ensemble size changed"):
        acc.accum(np.zeros((1, 3, 2, 2)), np.zeros((1, 2, 2)))
