"""Brier scores, skill against QM and reliability diagrams with hour-block intervals, from the
per-hour counts the scoring nodes write (rows ``rel_n`` / ``rel_obs``)."""

import numpy as np
import pandas as pd
import pytest

from precipdiff.pipelines.evaluation.probability import diagram_verdict, probability_scores
from precipdiff.pipelines.evaluation.scores import ScoreConfig, Scoreboard
from precipdiff.verification import brier_terms

PARAMS = {"intervals": {"level": 0.9, "n_boot": 400, "block_hours": 2, "seed": 1, "wettest_fraction": 0.5},
          "scores": {"probability": {"reference": "qm_bilinear"}}}


def scored(n_hours=8, seed=0):
    """A reliable 4-member ensemble by construction (k members rain 2 mm/h, the radar rains with
    probability k / 4), a sharp deterministic 'QM' (rain where k >= 2) and a satellite dry on the
    left half, through the real Scoreboard."""
    rng = np.random.default_rng(seed)
    cfg = ScoreConfig(probability_thresholds_mm_h=(0.1, 1.0), satellite_dry_mm_h=0.1, spectra=False)
    board = Scoreboard({"fine": cfg})
    k = rng.integers(0, 5, size=(n_hours, 20, 20))
    ens = 2.0 * (np.arange(4)[None, :, None, None] < k[:, None])
    radar = 2.0 * (rng.random(k.shape) < k / 4)
    sat = np.where(np.arange(2)[None, None, :] == 0, 0.0, 1.0) * np.ones((n_hours, 2, 2))
    keys = list(range(100, 100 + n_hours))
    board.add("ensemble", "fine", ens, radar, keys, sat=sat)
    board.add("qm_bilinear", "fine", 2.0 * (k >= 2), radar, keys, sat=sat)
    hours = pd.DataFrame({"time": pd.date_range("2022-01-01", periods=n_hours, freq="h"), "hour_key": keys,
                          "radar_mean_mm_h": radar.mean(axis=(1, 2))})
    return hours, board.hourly(), ens, radar


def test_scores_match_the_pooled_counts_and_the_skill_is_paired():
    hours, hourly, ens, radar = scored()
    scores, diagram = probability_scores(hours, PARAMS, hourly)
    row = lambda m, c, t, metric: scores[(scores.method == m) & (scores.cells == c) & np.isclose(scores.threshold, t)  # noqa: E731
                                         & (scores.metric == metric)].iloc[0]
    # the estimate is the Brier score of all pixels, by hand
    p, o = (ens >= 1.0).mean(axis=1), (radar >= 1.0)
    assert row("ensemble", "all", 1.0, "brier")["estimate"] == pytest.approx(((p - o) ** 2).mean())
    bs_qm = (((ens[:, 1] >= 1.0).astype(float) - o) ** 2).mean()  # member 2 rains iff k >= 2
    bss = row("ensemble", "all", 1.0, "bss")
    assert bss["estimate"] == pytest.approx(1 - ((p - o) ** 2).mean() / bs_qm)
    assert bss["estimate"] == pytest.approx(1 - 0.125 / 0.2, abs=0.05)  # E[q(1-q)] = 0.125 against 0.2 (by hand)
    assert bss["ci_low"] < bss["estimate"] < bss["ci_high"] and bss["ci_low"] > 0  # reliable beats sharp-and-wrong
    assert row("qm_bilinear", "all", 1.0, "brier")["members"] == 1
    assert scores[(scores.method == "qm_bilinear") & (scores.metric == "bss")].empty  # no skill against itself
    # rain over satellite-dry cells (left half): forecast vs radar frequency of R >= 0.1
    dry = np.zeros((20, 20), bool)
    dry[:, :10] = True
    freq = row("ensemble", "sat_dry", 0.1, "forecast_frequency")
    assert freq["estimate"] == pytest.approx((ens >= 0.1).mean(axis=1)[:, dry].mean())
    obs = row("ensemble", "sat_dry", 0.1, "observed_frequency")
    assert obs["estimate"] == pytest.approx((radar >= 0.1)[:, dry].mean())
    assert obs["ci_low"] <= freq["estimate"] <= obs["ci_high"]  # same law: inside the radar's interval
    # the decomposition holds for every resample's estimate
    terms = {m: row("ensemble", "all", 0.1, m)["estimate"] for m in ("brier", "reliability", "resolution", "uncertainty")}
    assert terms["brier"] == pytest.approx(terms["reliability"] - terms["resolution"] + terms["uncertainty"])


def test_reliability_diagram_of_a_reliable_ensemble_holds_the_diagonal():
    hours, hourly, ens, radar = scored(n_hours=12, seed=3)
    _, diagram = probability_scores(hours, PARAMS, hourly)
    d = diagram[(diagram.method == "ensemble") & (diagram.cells == "all") & np.isclose(diagram.threshold, 1.0)]
    assert d["prob"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    k = (ens >= 1.0).sum(axis=1)
    n_k = np.bincount(k.ravel(), minlength=5)
    assert d["n"].tolist() == n_k.tolist()
    o_k = np.bincount(k.ravel(), weights=(radar >= 1.0).ravel(), minlength=5) / n_k
    np.testing.assert_allclose(d["observed_frequency"], o_k)
    verdict = diagram_verdict(diagram, "ensemble", [1.0], min_count=50)
    assert verdict["bins"].iloc[0] == 5
    assert verdict["inside"].iloc[0] >= 4  # 90 % intervals: one miss allowed
    wrong = diagram_verdict(diagram, "qm_bilinear", [1.0], min_count=50)
    assert wrong["inside"].iloc[0] == 0 and wrong["bins"].iloc[0] == 2  # 0/1 forecasts of q in 0..0.25 / 0.5..1
    assert wrong["worst_prob"].iloc[0] in (0.0, 1.0)


def test_counts_are_kept_only_where_the_satellite_is_given():
    cfg = ScoreConfig(probability_thresholds_mm_h=(1.0,), spectra=False)
    board = Scoreboard({"fine": cfg})
    board.add("m", "fine", np.ones((2, 3, 10, 10)), np.ones((2, 10, 10)), [1, 2])  # no satellite: no counts
    assert "cells" not in board.hourly()
    assert np.isnan(brier_terms(np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([0.0, 1.0]))["brier"])
