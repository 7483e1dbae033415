"""Tables of the bootstrap intervals (``intervals.parquet``) for the HTML report and the README.

``value_table`` gives one row per method, one ``estimate [low, high]`` cell per score;
``paired_table`` the paired differences and ratios of one method against the others;
``markdown`` renders either as a Markdown table (no extra dependency).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from precipdiff.reporting.evaluation_figures import METHOD_ORDER

#: Column labels of the value table, in order (metrics absent from the intervals are left out).
VALUE_COLUMNS = {"crps_fair": "CRPS fair", "rmse": "RMSE", "corr": "corr", "bias": "bias",
                 "spread_skill_ratio": "spread–skill", "psd_ratio_3km": "PSD ratio 3 km",
                 "psd_ratio_5km": "PSD ratio 5 km", "psd_ratio_10km": "PSD ratio 10 km",
                 "psd_ratio_small_scales": "PSD ratio ≤ 10 km"}


def cell(estimate: float, low: float, high: float, digits: int = 3) -> str:
    """``1.02 [0.95, 1.10]`` (significant digits); ``–`` when the estimate is not finite."""
    if not np.isfinite(estimate):
        return "–"
    fmt = lambda x: f"{x:.{digits}g}" if np.isfinite(x) else "?"  # noqa: E731
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def ordered(methods) -> list[str]:
    """Distinct methods in :data:`METHOD_ORDER` order, the others after them as found."""
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in present] + [m for m in present if m not in METHOD_ORDER]


def value_table(intervals: pd.DataFrame, stratum: str = "all", grid: str = "fine") -> pd.DataFrame:
    """Methods × scores of ``stratum``/``grid``, cells ``estimate [low, high]``."""
    rows = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == grid)
                     & (intervals["kind"] == "value")]
    out = pd.DataFrame(index=pd.Index(ordered(rows["method"]), name="method"))
    for metric, label in VALUE_COLUMNS.items():
        sel = rows[rows["metric"] == metric].set_index("method")
        if len(sel):
            out[label] = [cell(*sel.loc[m, ["estimate", "ci_low", "ci_high"]]) if m in sel.index else "–"
                          for m in out.index]
    return out


def paired_table(intervals: pd.DataFrame, method: str = "diffusion_chain", stratum: str = "all",
                 grid: str = "fine") -> pd.DataFrame:
    """``method`` against every other method: per paired metric the difference (``method − other``)
    and the ratio (``method / other``), ``estimate [low, high]``. A difference whose interval
    excludes 0 is marked ``*``."""
    rows = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == grid)
                     & (intervals["method"] == method) & (intervals["kind"] != "value")]
    out = pd.DataFrame(index=pd.Index(ordered(rows["versus"]), name="versus"))
    for (metric, kind), g in rows.groupby(["metric", "kind"], sort=False):
        g = g.set_index("versus")
        label = f"{VALUE_COLUMNS.get(metric, metric)} {'Δ' if kind == 'difference' else 'ratio'}"
        cells = []
        for other in out.index:
            if other not in g.index:
                cells.append("–")
                continue
            est, lo, hi = g.loc[other, ["estimate", "ci_low", "ci_high"]]
            excl = kind == "difference" and np.isfinite(lo) and (lo > 0 or hi < 0)
            cells.append(cell(est, lo, hi) + (" *" if excl else ""))
        out[label] = cells
    return out


#: columns of the per-region table: (label, method, metric, kind, versus)
REGION_COLUMNS = [("CRPS fair", "diffusion_chain", "crps_fair", "value", ""),
                  ("vs regression (CRPS ratio)", "diffusion_chain", "crps_fair", "ratio", "regression_chain"),
                  ("vs QM (CRPS ratio)", "diffusion_chain", "crps_fair", "ratio", "qm_bilinear"),
                  ("vs RainFARM (CRPS ratio)", "diffusion_chain", "crps_fair", "ratio", "rainfarm"),
                  ("spread–skill", "diffusion_chain", "spread_skill_ratio", "value", ""),
                  ("PSD ratio 3 km", "diffusion_chain", "psd_ratio_3km", "value", ""),
                  ("PSD ratio 5 km", "diffusion_chain", "psd_ratio_5km", "value", ""),
                  ("PSD ratio 10 km", "diffusion_chain", "psd_ratio_10km", "value", "")]


def region_table(intervals: pd.DataFrame, grid: str = "fine") -> pd.DataFrame:
    """One row per region (strata ``region:<name>``): the diffusion chain's scores and its paired CRPS
    ratios to the baselines, ``estimate [low, high]``, and the number of box-hours."""
    rows = intervals[intervals["stratum"].str.startswith("region:") & (intervals["grid"] == grid)]
    out = pd.DataFrame(index=pd.Index(sorted(rows["stratum"].str.removeprefix("region:").unique()), name="region"))
    for label, method, metric, kind, versus in REGION_COLUMNS:
        sel = rows[(rows["method"] == method) & (rows["metric"] == metric) & (rows["kind"] == kind)
                   & (rows["versus"] == versus)]
        if len(sel):
            by = sel.assign(region=sel["stratum"].str.removeprefix("region:")).set_index("region")
            out[label] = [cell(*by.loc[r, ["estimate", "ci_low", "ci_high"]]) if r in by.index else "–"
                          for r in out.index]
    counts = rows.groupby(rows["stratum"].str.removeprefix("region:"))["n_hours"].max()
    out["box-hours"] = [int(counts.get(r, 0)) for r in out.index]
    return out


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table of ``table`` (its index as the first column)."""
    cols = [table.index.name or "", *table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join([str(i), *map(str, r)]) + " |" for i, r in zip(table.index, table.itertuples(index=False))]
    return "\n".join(lines)


def paired_figure(intervals: pd.DataFrame, method: str = "diffusion_chain", grid: str = "fine"):
    """Forest plot: ``method``'s paired change of fair CRPS and of RMSE against each other method,
    ratio − 1 in %, with its interval, one marker per stratum (left of 0 = ``method`` better)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = intervals[(intervals["method"] == method) & (intervals["grid"] == grid) & (intervals["kind"] == "ratio")]
    metrics = [m for m in ("crps_fair", "rmse") if m in set(rows["metric"])]
    fig = make_subplots(rows=1, cols=max(len(metrics), 1), shared_yaxes=True,
                        subplot_titles=[f"{VALUE_COLUMNS.get(m, m)}: {method} vs method (%)" for m in metrics])
    for col, metric in enumerate(metrics, start=1):
        for k, (stratum, g) in enumerate(rows[rows["metric"] == metric].groupby("stratum", sort=False)):
            g = g.set_index("versus").loc[ordered(g["versus"])]
            pct = 100 * (g["estimate"] - 1)
            fig.add_trace(go.Scatter(
                x=pct, y=g.index, mode="markers", name=stratum, legendgroup=stratum, showlegend=col == 1,
                marker={"symbol": ["circle", "diamond"][k % 2], "size": 9},
                error_x={"type": "data", "symmetric": False, "array": 100 * (g["ci_high"] - 1) - pct,
                         "arrayminus": pct - 100 * (g["ci_low"] - 1)}), row=1, col=col)
        fig.add_vline(x=0, line_dash="dot", line_color="grey", row=1, col=col)
    fig.update_layout(title=f"Paired differences with 95 % intervals ({grid})", height=420,
                      width=max(520 * len(metrics), 600))
    return fig
