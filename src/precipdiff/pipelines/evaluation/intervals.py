"""Confidence intervals of the headline scores and of paired differences between methods.

The scoring nodes keep per-hour sums of every method (:class:`precipdiff.verification.HourlyStats`,
the ``*_hourly`` tables); here the evaluated hours are resampled in blocks of consecutive hours
(:func:`precipdiff.verification.block_weights`) and every score is recomputed from the resampled
sums. All methods share the resampled hours, so the interval of a difference between two methods
is that of a *paired* comparison. Two strata: ``all`` evaluated hours and the ``wettest`` share of
them (by radar mean rate), each bootstrapped on its own hours.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from precipdiff.datasets.metrics import metric_history
from precipdiff.verification import block_weights, bootstrap, hourly_sums, percentile_interval
from precipdiff.verification.bootstrap import SCORES, psd_ratio_score

log = logging.getLogger(__name__)

COLUMNS = ["stratum", "method", "grid", "metric", "versus", "kind", "estimate", "ci_low", "ci_high", "n_hours"]


def strata(hours: pd.DataFrame, wettest_fraction: float) -> dict[str, np.ndarray]:
    """Box-hour keys of the strata ``all``, ``wettest`` (the ``wettest_fraction`` of the evaluated
    box-hours with the largest radar mean rate; at least 2) and, when more than one region is
    evaluated, ``region:<name>`` for each region (the per-region table).

    Keys are ordered box by box, each box's hours in time order, so a bootstrap block of consecutive
    keys is consecutive hours of one box (hours of a box are the dependent ones); for the one box of
    a one-box run this is time order.
    """
    if not 0 < float(wettest_fraction) <= 1:
        raise ValueError(f"evaluation.intervals.wettest_fraction must be in (0, 1]; got {wettest_fraction}")
    ordered = hours.sort_values(["box_number", "time"] if "box_number" in hours else "time")
    n_wet = max(2, int(round(float(wettest_fraction) * len(ordered))))
    wet = ordered["radar_mean_mm_h"].fillna(-1).nlargest(n_wet).index
    out = {"all": ordered["hour_key"].to_numpy(np.int64),
           "wettest": ordered.loc[ordered.index.isin(wet), "hour_key"].to_numpy(np.int64)}
    if "region" in hours and hours["region"].nunique() > 1:
        out.update({f"region:{r}": g["hour_key"].to_numpy(np.int64) for r, g in ordered.groupby("region", sort=True)})
    return out


def _scores(sums: dict, radar: dict | None, bands: dict, metrics: list[str]) -> dict:
    """``{metric: score(totals)}`` applicable to a method (spread–skill for ensembles, PSD with spectra)."""
    out = {m: SCORES[m] for m in metrics if m in SCORES}
    if not np.any(sums["sum_var_fortin"]):
        out.pop("spread_skill_ratio", None)
    if "psd" in sums and radar is not None and "psd" in radar:
        out.update({name: psd_ratio_score(radar["wavelength_km"], float(lo), float(hi))
                    for name, (lo, hi) in bands.items()})
    return out


def _replicates(table: pd.DataFrame, keys: np.ndarray, cfg: dict) -> dict:
    """``{(method, grid, metric): (estimate, replicates, n_hours)}`` of every method in ``table``.

    Each grid is resampled on the hours of ``keys`` it scored (a block may score fewer hours);
    all methods of a grid share the resampled hours, so their differences are paired.
    """
    out = {}
    for grid in table["grid"].unique():
        scored = np.isin(keys, table.loc[table["grid"] == grid, "hour_key"].unique())
        grid_keys = keys[scored]
        if grid_keys.size == 0:
            continue
        weights = block_weights(grid_keys.size, int(cfg["n_boot"]), int(cfg["block_hours"]), int(cfg["seed"]))
        radar = hourly_sums(table, "radar", grid, grid_keys)
        for method in table.loc[(table["grid"] == grid) & (table["method"] != "radar"), "method"].unique():
            sums = hourly_sums(table, method, grid, grid_keys)
            if sums is None:  # the method did not score these hours (e.g. a champion whose score was reused)
                continue
            scores = _scores(sums, radar, cfg["psd_bands_km"], list(cfg["metrics"]))
            sums.pop("wavelength_km", None)
            if radar is not None and "psd" in radar:
                sums.update(radar_psd=radar["psd"], radar_psd_n=radar["psd_n"])
            for metric, score in scores.items():
                out[(method, grid, metric)] = (*bootstrap(score, sums, weights), grid_keys.size)
    return out


def _row(stratum, method, grid, metric, versus, kind, estimate, reps, level, n) -> dict:
    lo, hi = percentile_interval(reps, level)
    return dict(zip(COLUMNS, [stratum, method, grid, metric, versus, kind, estimate, lo, hi, n]))


def hourly_scores(*tables: pd.DataFrame) -> pd.DataFrame:
    """The per-hour sums of every scoring node in one table (``evaluation_hourly.parquet``)."""
    return pd.concat([t for t in tables if len(t)], ignore_index=True)


def confidence_intervals(hours: pd.DataFrame, params: dict, *hourly: pd.DataFrame) -> pd.DataFrame:
    """Bootstrap intervals (``evaluation.intervals``) of every score and of the paired differences.

    Rows (:data:`COLUMNS`): ``kind`` ``value`` (the score of ``method``), ``difference``
    (``method − versus``, same resampled hours) or ``ratio`` (``method / versus``) for the
    ``paired.methods`` against every other method of the same grid (but its own ``<method>_mean``);
    ``estimate`` is the score on all hours of the stratum, ``ci_low``/``ci_high`` the percentile
    interval at ``level``.
    """
    cfg = params["intervals"]
    table = pd.concat([h for h in hourly if len(h)], ignore_index=True)
    level, rows = float(cfg["level"]), []
    for stratum, keys in strata(hours, cfg["wettest_fraction"]).items():
        reps = _replicates(table, keys, cfg)
        for (method, grid, metric), (est, r, n) in reps.items():
            rows.append(_row(stratum, method, grid, metric, "", "value", est, r, level, n))
        for (method, grid, metric), (est, r, n) in reps.items():
            if method not in cfg["paired"]["methods"] or metric not in cfg["paired"]["metrics"]:
                continue
            for (other, grid_o, metric_o), (est_o, r_o, _) in reps.items():
                if other in (method, f"{method}_mean") or grid_o != grid or metric_o != metric:
                    continue  # a method's own member mean shares its RMSE: no comparison to make
                rows.append(_row(stratum, method, grid, metric, other, "difference", est - est_o, r - r_o, level, n))
                with np.errstate(divide="ignore", invalid="ignore"):
                    rows.append(_row(stratum, method, grid, metric, other, "ratio", est / est_o, r / r_o, level, n))
    out = pd.DataFrame(rows, columns=COLUMNS)
    log.info("evaluation: %d bootstrap intervals (%s resamples of blocks of %s hours, level %.2f)", len(out),
             cfg["n_boot"], cfg["block_hours"], level)
    return out


def interval_metrics(intervals: pd.DataFrame) -> dict:
    """MLflow run metrics (kedro-mlflow metric-history format; the catalog prefixes ``evaluation.ci``):
    ``<stratum>.<grid>.<method>.<metric>`` with ``_low``/``_high``, and
    ``<stratum>.<grid>.<method>_vs_<versus>.<metric>_<kind>`` for the paired rows."""
    out = {}
    for r in intervals.itertuples():
        name = f"{r.stratum}.{r.grid}.{r.method}" + (f"_vs_{r.versus}.{r.metric}_{r.kind}" if r.versus
                                                       else f".{r.metric}")
        for suffix, value in (("", r.estimate), ("_low", r.ci_low), ("_high", r.ci_high)):
            out[name + suffix] = value
    return metric_history(out)
