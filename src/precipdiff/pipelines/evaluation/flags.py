"""Derived rows of the metrics table: PSD ratios to the radar and the three artefact flags.

Each function reads the tidy table (:mod:`precipdiff.verification.tables`) and returns new tidy
rows; thresholds come from ``evaluation.flags`` (``parameters_evaluation.yml``). A flag is 1.0
(raised), 0.0, or NaN when it cannot be decided.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from precipdiff.verification import psd_ratio, psd_ratio_at, tidy


def _rows(table: pd.DataFrame, metric: str, grid: str | None = None) -> pd.DataFrame:
    sel = table["metric"] == metric
    return table[sel & (table["grid"] == grid)] if grid else table[sel]


def psd_ratio_rows(table: pd.DataFrame, flag: dict) -> pd.DataFrame:
    """``psd_ratio`` (per wavelength, km), ``psd_ratio_small_scales`` (geometric mean ≤ ``max_km``)
    and ``oversmoothing_flag`` (1 when that is below ``tolerance``) of every 1 km method vs the radar."""
    psd = _rows(table, "psd", "fine")
    ref = psd[psd["method"] == "radar"].set_index("scale")["value"]
    rows, max_km = [], float(flag["max_km"])
    for method, g in psd[psd["method"] != "radar"].groupby("method", sort=False):
        g = g.set_index("scale")["value"].reindex(ref.index)
        ratio = psd_ratio(g.values, ref.values)
        rows += [{"method": method, "metric": "psd_ratio", "scale": s, "value": r} for s, r in zip(ref.index, ratio)]
        try:
            small = psd_ratio_at(ratio, ref.index.values, max_km)
        except ValueError:  # no usable wavelength (e.g. every field had missing cells): no verdict
            small = np.nan
        rows += [{"method": method, "metric": "psd_ratio_small_scales", "scale": max_km, "value": small},
                 {"method": method, "metric": "oversmoothing_flag", "scale": max_km,
                  "value": float(small < float(flag["tolerance"])) if np.isfinite(small) else np.nan}]
    return tidy(rows, grid="fine")


def bias_amplification_rows(table: pd.DataFrame, flag: dict) -> pd.DataFrame:
    """``bias_amplification`` = |ratio of totals − 1| / that of the raw satellite on the same grid;
    ``bias_amplification_flag`` = 1 when |ratio − 1| > max(``tolerance``, ``factor`` × the satellite's)."""
    rows = []
    for grid, reference in flag["reference"].items():
        rot = _rows(table, "ratio_of_totals", grid).set_index("method")["value"]
        if reference not in rot:
            continue
        ref_err = abs(rot[reference] - 1.0)
        for method, value in rot.items():
            err = abs(value - 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                amp = np.float64(err) / ref_err
            limit = max(float(flag["tolerance"]), float(flag["factor"]) * ref_err)
            rows += [{"method": method, "grid": grid, "metric": "bias_amplification", "value": amp},
                     {"method": method, "grid": grid, "metric": "bias_amplification_flag",
                      "value": float(err > limit)}]
    return tidy(rows)


def _growth(bins: pd.DataFrame, counts: pd.Series, flag: dict) -> float:
    """Least-squares slope of the bias (mm/h) against ln(bin lower edge) over the populated wet bins."""
    b = bins.set_index("threshold")["value"]
    keep = [t for t in b.index if t >= float(flag["min_mm_h"]) and counts.get(t, 0) >= float(flag["min_count"])
            and np.isfinite(b[t])]
    if len(keep) < 2:
        return np.nan
    return float(np.polyfit(np.log(keep), b[keep].to_numpy(), 1)[0])


def bias_growth_rows(table: pd.DataFrame, flag: dict) -> pd.DataFrame:
    """``bias_growth``: slope of the bias per observed-intensity bin against ln(intensity), mm/h per
    e-fold (< 0: heavy rain increasingly underestimated); ``bias_growth_flag`` = 1 when |slope| >
    max(``tolerance``, ``factor`` × the raw satellite's |slope|): the method amplifies the satellite's
    intensity-dependent bias."""
    rows = []
    for grid, reference in flag["reference"].items():
        bins, counts = _rows(table, "bias_bin", grid), _rows(table, "count_bin", grid)
        slopes = {m: _growth(g, counts[counts["method"] == m].set_index("threshold")["value"], flag)
                  for m, g in bins.groupby("method", sort=False)}
        if reference not in slopes:
            continue
        limit = max(float(flag["tolerance"]), float(flag["factor"]) * abs(slopes[reference]))
        for method, slope in slopes.items():
            rows += [{"method": method, "grid": grid, "metric": "bias_growth", "value": slope},
                     {"method": method, "grid": grid, "metric": "bias_growth_flag",
                      "value": float(abs(slope) > limit) if np.isfinite(slope) else np.nan}]
    return tidy(rows)


def seam_flag_rows(table: pd.DataFrame, flag: dict) -> pd.DataFrame:
    """``seam_flag`` = 1 when the seam ratio at the 10 km block borders exceeds ``max_ratio``."""
    seams = _rows(table, "seam_ratio", "fine")
    return tidy([{"method": r.method, "metric": "seam_flag", "scale": r.scale,
                  "value": float(r.value > float(flag["max_ratio"]))} for r in seams.itertuples()], grid="fine")
