"""Do the probabilities mean what they say? Brier scores and reliability diagrams with intervals.

The scoring nodes count, per hour, per method and per cell stratum (``all``, ``sat_dry``,
``sat_wet``: where the 0.1° satellite input is below / at or above ``satellite_dry_mm_h``), how
many 1 km pixels each forecast probability ``P(R ≥ t) = k / M`` was given and how often the
radar then reached ``t`` (:class:`precipdiff.verification.ReliabilityCounts`, rows ``rel_n`` /
``rel_obs`` of the per-hour sums). Here those counts are resampled in blocks of consecutive
evaluated hours (the evaluation's hour-block bootstrap, :func:`precipdiff.verification.block_weights`)
and every score recomputed:

* the Brier score and its Murphy (1973) decomposition (reliability, resolution, uncertainty);
* the mean forecast probability against the observed frequency (for ``t = 0.1`` over satellite-dry
  cells: does the method rain where the satellite sees none as often as the radar does?) and
  their paired difference;
* the Brier skill score against the ``reference`` method (QM + bilinear), ``1 − BS / BS_ref``,
  paired (same resampled hours);
* the reliability diagram: per probability ``k / M`` the observed frequency with its interval.

Deterministic methods enter as 0/1 probabilities (M = 1: two bins); the table says ``members``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from precipdiff.pipelines.evaluation.intervals import strata
from precipdiff.verification import block_weights, bootstrap, brier_terms, percentile_interval, reliability_sums

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["cells", "method", "members", "threshold", "metric", "estimate", "ci_low", "ci_high", "n_hours"]
DIAGRAM_COLUMNS = ["cells", "method", "members", "threshold", "prob", "n", "observed_frequency", "ci_low", "ci_high"]
TERMS = ("brier", "reliability", "resolution", "uncertainty", "forecast_frequency", "observed_frequency")


def _scores(prob: np.ndarray, ref_prob: np.ndarray | None) -> dict[str, Callable]:
    """Score functions of the resampled totals ``t["n"]``, ``t["n_obs"]`` (B, K) (and ``ref_*`` of the
    reference method); ``prob`` (K,) the forecast probability of each bin (not a sum: closed over)."""
    def term(name: str) -> Callable:
        return lambda t: brier_terms(t["n"], t["n_obs"], prob)[name]

    out = {name: term(name) for name in TERMS}
    out["frequency_difference"] = lambda t: term("forecast_frequency")(t) - term("observed_frequency")(t)
    if ref_prob is not None:  # Brier skill score, 1 − BS / BS_ref (Wilks 2011, eq. 8.37)
        out["bss"] = lambda t: 1.0 - term("brier")(t) / brier_terms(t["ref_n"], t["ref_n_obs"], ref_prob)["brier"]
    return out


def _combos(table: pd.DataFrame) -> list[tuple[str, str, float]]:
    rows = table[table["stat"] == "rel_n"]
    return sorted(set(zip(rows["method"], rows["cells"], rows["threshold"].astype(float))))


def probability_scores(hours: pd.DataFrame, params: dict, *hourly: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Brier scores (:data:`SCORE_COLUMNS`) and reliability diagrams (:data:`DIAGRAM_COLUMNS`) of
    every method of the 1 km grid with reliability counts, on all evaluated hours, with
    ``evaluation.intervals`` percentile intervals; BSS against ``scores.probability.reference``."""
    cfg, ref_name = params["intervals"], params["scores"]["probability"].get("reference", "qm_bilinear")
    table = pd.concat([h for h in hourly if len(h)], ignore_index=True)
    if "cells" not in table:
        return pd.DataFrame(columns=SCORE_COLUMNS), pd.DataFrame(columns=DIAGRAM_COLUMNS)
    table = table[(table["grid"] == "fine") & table["stat"].isin(["rel_n", "rel_obs"])]
    keys, level = strata(hours, cfg["wettest_fraction"])["all"], float(cfg["level"])
    weights = block_weights(keys.size, int(cfg["n_boot"]), int(cfg["block_hours"]), int(cfg["seed"]))
    scores, diagram = [], []
    for method, cells, thr in _combos(table):
        sums = reliability_sums(table, method, "fine", cells, thr, keys)
        if sums is None:
            continue
        ref = reliability_sums(table, ref_name, "fine", cells, thr, keys) if method != ref_name else None
        prob = sums.pop("prob")
        if ref is not None:
            sums.update(ref_n=ref["n"], ref_n_obs=ref["n_obs"])
        head = {"cells": cells, "method": method, "members": prob.size - 1, "threshold": thr}
        for metric, score in _scores(prob, None if ref is None else ref["prob"]).items():
            est, reps = bootstrap(score, sums, weights)
            lo, hi = percentile_interval(reps, level)
            scores.append({**head, "metric": metric, "estimate": est, "ci_low": lo, "ci_high": hi,
                           "n_hours": keys.size})
        diagram += _diagram_rows(head, prob, sums, weights, level)
    log.info("evaluation: Brier scores and reliability diagrams of %d methods on %d hours",
             len({r["method"] for r in scores}), keys.size)
    return pd.DataFrame(scores, columns=SCORE_COLUMNS), pd.DataFrame(diagram, columns=DIAGRAM_COLUMNS)


def _diagram_rows(head: dict, prob: np.ndarray, sums: dict, weights: np.ndarray, level: float) -> list[dict]:
    """One row per forecast probability: pixels, observed frequency and its interval."""
    rows = []
    for k, p in enumerate(prob):
        est, reps = bootstrap(lambda t, k=k: t["n_obs"][:, k] / t["n"][:, k], {"n": sums["n"], "n_obs": sums["n_obs"]},
                              weights)
        lo, hi = percentile_interval(reps, level)
        rows.append({**head, "prob": float(p), "n": float(sums["n"][:, k].sum()), "observed_frequency": est,
                     "ci_low": lo, "ci_high": hi})
    return rows


def diagram_verdict(diagram: pd.DataFrame, method: str, thresholds, cells: str = "all",
                    min_count: float = 100.0) -> pd.DataFrame:
    """Per threshold: bins with at least ``min_count`` pixels, how many hold the diagonal ``p``
    inside their interval, and the farthest bin (``p − ō``) outside it."""
    rows = []
    for thr in thresholds:
        d = diagram[(diagram["method"] == method) & (diagram["cells"] == cells)
                    & np.isclose(diagram["threshold"], float(thr)) & (diagram["n"] >= min_count)]
        inside = (d["ci_low"] <= d["prob"]) & (d["prob"] <= d["ci_high"])
        gap = (d["prob"] - d["observed_frequency"]).where(~inside)
        worst = d.loc[gap.abs().idxmax()] if gap.notna().any() else None
        rows.append({"threshold": float(thr), "bins": len(d), "inside": int(inside.sum()),
                     "worst_prob": None if worst is None else float(worst["prob"]),
                     "worst_observed": None if worst is None else float(worst["observed_frequency"])})
    return pd.DataFrame(rows)
