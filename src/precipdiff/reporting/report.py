"""The evaluation report: one self-contained HTML page (plotly.js inlined once, no network needed).

:func:`headline_table` turns the tidy metrics table into one row per method (also handy in a
notebook); :func:`build_report` assembles the page from that table, the model-selection decision,
the evaluated hours and the figures.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from precipdiff.reporting.evaluation_figures import METHOD_ORDER
from precipdiff.reporting.intervals import cell, ordered, paired_table, region_table, value_table

# (column, metric(s) tried in order, threshold mm/h, scale); the first metric present wins, so
# deterministic methods show ``fss`` and ensembles ``fss_members`` in the same column.
HEADLINE = {
    "fine": [("CRPS fair (mm/h)", ["crps_fair"], None, None), ("CRPS (mm/h)", ["crps"], None, None),
             ("MAE", ["mae"], None, None), ("RMSE", ["rmse"], None, None), ("bias (mm/h)", ["bias"], None, None),
             ("ratio of totals", ["ratio_of_totals"], None, None), ("corr", ["corr"], None, None),
             ("spread/skill", ["spread_skill_ratio"], None, None),
             ("CSI ≥1", ["csi"], 1.0, None), ("CSI ≥5", ["csi"], 5.0, None), ("CSI ≥10", ["csi"], 10.0, None),
             ("FSS ≥5 @{scale:g} px", ["fss", "fss_members"], 5.0, "fss"),
             ("PSD ratio ≤{max_km:g} km", ["psd_ratio_small_scales"], None, None),
             ("seam ratio", ["seam_ratio"], None, None), ("over-smoothed", ["oversmoothing_flag"], None, None),
             ("bias amplified", ["bias_amplification_flag"], None, None),
             ("bias grows with intensity", ["bias_growth_flag"], None, None), ("seams", ["seam_flag"], None, None)],
    "coarse": [("CRPS fair (mm/h)", ["crps_fair"], None, None), ("CRPS (mm/h)", ["crps"], None, None),
               ("MAE", ["mae"], None, None), ("RMSE", ["rmse"], None, None), ("bias (mm/h)", ["bias"], None, None),
               ("ratio of totals", ["ratio_of_totals"], None, None), ("corr", ["corr"], None, None),
               ("spread/skill", ["spread_skill_ratio"], None, None), ("CSI ≥1", ["csi"], 1.0, None),
               ("CSI ≥5", ["csi"], 5.0, None), ("CSI ≥10", ["csi"], 10.0, None),
               ("bias amplified", ["bias_amplification_flag"], None, None),
               ("bias grows with intensity", ["bias_growth_flag"], None, None)],
}

HOW_TO_READ = """
<p><b>What is compared.</b> Every method turns the same satellite test hours into rates (mm/h) on the
radar's 0.01° (≈ 1 km) grid; the <i>fine</i> table scores them against the radar, the <i>coarse</i> table
scores the 0.1° correction stage against the radar max-pooled to 0.1° (what the correction model is
trained on). Baselines: the satellite (nearest / bilinear), quantile mapping (QM, fitted on the training
split only) and RainFARM (a stochastic downscaling of the QM field). <code>diffusion_chain</code> is
PrecipDiff (correction ensemble → upsampling → downscaling ensemble); <code>_mean</code> is its member mean;
<code>correction_diffusion_bilinear</code> drops the downscaling model (ablation);
the registry's current champion is compared with the evaluated pair on <i>validation</i> hours only
(see Model selection): nothing here, on the test split, chooses a model.</p>
<p><b>Headline: CRPS fair</b> (mm/h, lower is better; Ferro 2014), the CRPS of the distribution the members
are drawn from, unbiased for any ensemble size; the standard CRPS penalises small ensembles. For a
deterministic method both equal its MAE. <b>RMSE/MAE/bias/corr</b> of an ensemble are those of its member
mean (which is smooth by construction, so compare spectra on members). <b>Spread/skill</b> ≈ 1 when the
ensemble spread matches its error (&lt; 1 over-confident). <b>Rank histogram</b>: flat = calibrated,
U-shaped = under-dispersive, ∩ = over-dispersive, sloped = biased. <b>CSI/POD/FAR</b> at 1, 5, 10 mm/h
(members pooled for ensembles). <b>FSS</b> rises with the neighbourhood width; above the grey dotted
"useful" level (0.5 + f<sub>o</sub>/2) a forecast is skilful at that scale. <b>PSD ratio</b> to the radar by
wavelength: &lt; 1 means missing small-scale variance (over-smoothing, flagged when the geometric mean at
short wavelengths is under the tolerance), &gt; 1 too noisy. <b>Seam ratio</b> ≈ 1 means no jumps on the
10 km cell borders. <b>Bias amplified</b>: the method's volume error |ratio of totals − 1| exceeds the raw
satellite's (times a factor, with a tolerance). Scores describe the evaluated hours only (see the list
below; by default the wettest test hours, so they are rainy-hour scores, not climatology).</p>
"""

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;padding:0 24px;max-width:1232px;
color:#222;line-height:1.45;overflow-wrap:anywhere}
.box{max-width:100%;overflow-x:auto;margin:8px 0 20px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;overflow-wrap:normal}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.best{font-weight:bold;background:#e8f5e9}
.flag{background:#fdecea}code{background:#f5f5f5;padding:0 3px}h2{margin-top:32px}
"""
# the page fits a 1,280 px window: text wraps, and every table and figure sits in a box that
# scrolls sideways when it is wider than the page (.box), instead of being cut off


def _box(inner: str) -> str:
    return f'<div class="box">{inner}</div>'


def _figure_html(fig: go.Figure) -> str:
    """A figure in a box that scrolls sideways: one somewhat wider than the page is drawn at the page
    width; a much wider one (the 7-panel maps) keeps its width, so its panels stay legible."""
    fig = go.Figure(fig)
    width = fig.layout.width
    if width is None or PAGE_WIDTH_PX < width <= SQUEEZE * PAGE_WIDTH_PX:
        fig.update_layout(width=None, autosize=True)
    return _box(fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%",
                            config={"responsive": True}))


PAGE_WIDTH_PX = 1232  # the content width of the page (1,280 px window less the margins)
SQUEEZE = 1.35  # a figure up to this factor wider than the page is drawn at the page width


def headline_table(metrics: pd.DataFrame, grid: str = "fine", fss_scale: float = 21,
                   max_km: float = 10) -> pd.DataFrame:
    """One row per method of ``grid``, the headline columns of :data:`HEADLINE` (NaN where absent)."""
    df = metrics[metrics["grid"] == grid]
    present = set(df["method"]) - {"radar"}
    methods = [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))
    out = pd.DataFrame(index=pd.Index(methods, name="method"))
    for label, names, thr, scale in HEADLINE[grid]:
        col = label.format(scale=fss_scale, max_km=max_km)
        out[col] = [_lookup(df, m, names, thr, fss_scale if scale == "fss" else None) for m in methods]
    return out.dropna(axis=1, how="all")


def _lookup(df: pd.DataFrame, method: str, names: list[str], thr, scale) -> float:
    for name in names:
        sel = (df["method"] == method) & (df["metric"] == name)
        if thr is not None:
            sel &= np.isclose(df["threshold"], thr)
        if scale is not None:
            sel &= np.isclose(df["scale"], scale)
        if sel.any():
            return float(df.loc[sel, "value"].iloc[0])
    return math.nan


def _table_html(table: pd.DataFrame) -> str:
    """HTML table, the best CRPS fair in bold, raised flags shaded."""
    crps = table.get("CRPS fair (mm/h)")
    best = crps.idxmin() if crps is not None and crps.notna().any() else None
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["method", *table.columns])
    rows = []
    for method, r in table.iterrows():
        cells = []
        for col, v in r.items():
            flag = col in ("over-smoothed", "bias amplified", "seams") and v == 1
            if np.isnan(v):
                text = ""
            elif col in ("over-smoothed", "bias amplified", "seams"):
                text = "yes" if flag else "no"
            else:
                text = "∞" if np.isinf(v) else f"{v:.4g}"
            cells.append(f'<td class="{"flag" if flag else ""}">{text}</td>')
        cls = ' class="best"' if method == best else ""
        rows.append(f"<tr><td{cls}>{html.escape(str(method))}</td>{''.join(cells)}</tr>")
    return _box(f"<table><tr>{head}</tr>{''.join(rows)}</table>")


def describe_versions(versions: dict, names: dict | None = None) -> str:
    """``precipdiff-correction v3 and precipdiff-downscaling v4``; ``none`` when no stage has one."""
    names = names or {}
    given = [f"{names.get(stage, stage)} v{v}" for stage, v in versions.items() if v is not None]
    missing = [f"no {stage} model" for stage, v in versions.items() if v is None]
    if not given:
        return "none"
    return " and ".join(given + missing)


def describe_sampler(setting: dict) -> str:
    """A sampler setting in words: ``Heun, 18 steps from σ_max 80 to σ_min 0.002 (ρ 7), no churn``."""
    if not setting:
        return "the default EDM sampler"
    words = [str(setting.get("solver", "heun")).capitalize()]
    if "num_steps" in setting:
        words.append(f"{int(setting['num_steps'])} steps")
    span = [f"from σ_max {setting['sigma_max']:g}"] if "sigma_max" in setting else []
    span += [f"to σ_min {setting['sigma_min']:g}"] if "sigma_min" in setting else []
    span += [f"(ρ {setting['rho']:g})"] if "rho" in setting else []
    churn = float(setting.get("S_churn", 0.0))
    return ", ".join([" ".join(words + span), "no churn" if churn == 0 else f"churn {churn:g}"])


def _selection_html(sel: dict) -> str:
    cand, champ, names = sel["candidate"], sel["champion"], sel.get("registered_models", {})
    verdict = "moved to the evaluated models" if sel["promote"] else "unchanged"
    fmt = lambda x: "–" if x is None or not np.isfinite(x) else f"{x:.4f} mm/h"  # noqa: E731
    champion = describe_versions(champ["versions"], names)
    held = (f"the champion, {html.escape(champion)}, scores {fmt(champ['score'])} "
            f"({html.escape(champ.get('score_from', ''))}; full chain at 1 km, same validation hours and noise)"
            if champion != "none" else "no model held the alias before")
    return (f"<p>Alias <code>{html.escape(sel['alias'])}</code> (mode <code>{sel['mode']}</code>): <b>{verdict}</b> — "
            f"{html.escape(sel['reason'])}.</p><p>The evaluated models, "
            f"{html.escape(describe_versions(cand['versions'], names))}, score a <b>validation</b> {sel['metric']} "
            f"of {fmt(cand['score'])} ('–': not needed, no other champion to compare); {held}. The test scores "
            f"above are reported, never used to choose. The scores are also tags (<code>eval.*</code>) on the "
            f"model versions in the MLflow registry.</p>")


#: (grid, method paired against the others, title) of the interval tables
INTERVAL_BLOCKS = [("fine", "diffusion_chain", "the full chain and every method, 1 km"),
                   ("downscaling_only", "ds_diffusion", "the downscaling stage alone, from the true radar at 0.1°")]


def _intervals_html(intervals: pd.DataFrame, level: float) -> str:
    """Per stratum and block: the scores with their intervals, and the paired method against each other."""
    parts = []
    for stratum in (s for s in dict.fromkeys(intervals["stratum"]) if not s.startswith("region:")):
        for grid, method, title in INTERVAL_BLOCKS:
            rows = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == grid)]
            if rows.empty:
                continue
            parts += [f"<h3>Stratum <code>{html.escape(stratum)}</code>: {html.escape(title)} "
                      f"({int(rows['n_hours'].iloc[0])} hours)</h3>", _box(value_table(intervals, stratum, grid).to_html()),
                      f"<p><code>{method}</code> against each method (same resampled hours; Δ = {method} − method, "
                      f"* = the interval excludes 0):</p>", _box(paired_table(intervals, method, stratum, grid).to_html())]
    regions = region_table(intervals)
    if len(regions):
        parts += ["<h3>Per region: the full chain at 1 km (each region's box-hours bootstrapped on their own)</h3>",
                  _box(regions.to_html())]
    return (f"<p>{level:.0%} hour-block bootstrap intervals (percentile; resampled blocks of consecutive "
            f"evaluated hours of a box): a difference whose interval contains 0 is not distinguishable from noise "
            f"on these hours.</p>" + "".join(parts))


def probability_table(scores: pd.DataFrame, cells: str = "all", metrics=("brier", "reliability", "resolution", "bss"),
                      ) -> pd.DataFrame:
    """Methods × (metric, threshold) of one cell stratum, cells ``estimate [low, high]``."""
    rows = scores[scores["cells"] == cells]
    out = pd.DataFrame(index=pd.Index(ordered(rows["method"]), name="method"))
    for thr in sorted(rows["threshold"].unique()):
        for metric in metrics:
            sel = rows[(rows["metric"] == metric) & np.isclose(rows["threshold"], thr)].set_index("method")
            if len(sel):
                out[f"{PROBABILITY_LABELS.get(metric, metric)} ≥{thr:g}"] = [
                    cell(*sel.loc[m, ["estimate", "ci_low", "ci_high"]]) if m in sel.index else "–" for m in out.index]
    return out


PROBABILITY_LABELS = {"brier": "BS", "reliability": "REL", "resolution": "RES", "bss": "BSS vs QM",
                      "forecast_frequency": "forecast P", "observed_frequency": "radar frequency",
                      "frequency_difference": "forecast − radar"}


def _probability_html(scores: pd.DataFrame, verdicts: dict[str, pd.DataFrame], level: float) -> str:
    """Brier scores with intervals, rain over satellite-dry cells, and the reliability verdicts."""
    if scores is None or scores.empty:
        return "<p>No probability scores (evaluation.scores.probability.thresholds_mm_h is empty).</p>"
    ens = scores.groupby("method")["members"].first()
    note = ", ".join(f"<code>{html.escape(m)}</code>" for m in ens.index if ens[m] == 1)
    low = scores["threshold"].min()
    dry = scores[np.isclose(scores["threshold"], low)]
    parts = [f"<p>Brier score BS of P(R ≥ t) at 1 km, its Murphy (1973) decomposition BS = REL − RES + UNC "
             f"(REL: 0 = reliable; RES: higher = sharper and right) and the Brier skill score against QM + bilinear "
             f"(1 − BS/BS<sub>QM</sub>, paired), {level:.0%} hour-block bootstrap intervals. Deterministic methods "
             f"count as 0/1 probabilities: {note or 'none'}.</p>", probability_table(scores).to_html(),
             f"<p><b>Rain where the satellite sees none</b> (cells whose 0.1° satellite rate is below the dry "
             f"threshold): the mean forecast probability of R ≥ {low:g} mm/h (for an ensemble, the fraction of "
             f"member pixels that rain) against the radar's frequency there.</p>",
             probability_table(dry, "sat_dry", ("forecast_frequency", "observed_frequency", "frequency_difference",
                                                "bss")).to_html()]
    for method, verdict in verdicts.items():
        lines = [f"≥ {r.threshold:g} mm/h: {r.inside} of {r.bins} probabilities inside their interval of the "
                 f"diagonal" + ("" if r.worst_prob is None else
                                f" (farthest: P = {r.worst_prob:.2f} observed {r.worst_observed:.3f})")
                 for r in verdict.itertuples()]
        parts.append(f"<p>Reliability of <code>{html.escape(method)}</code>, all cells: {'; '.join(lines)}.</p>")
    return "".join(parts)


def build_report(metrics: pd.DataFrame, selection: dict, hours: pd.DataFrame, figures: dict[str, go.Figure],
                 context: dict, intervals: pd.DataFrame | None = None, probability: pd.DataFrame | None = None,
                 verdicts: dict[str, pd.DataFrame] | None = None) -> str:
    """The HTML page: context, how to read, headline tables (with their bootstrap intervals),
    model selection, hours, figures."""
    fss_scale, max_km = context.get("fss_scale_px", 21), context.get("max_km", 10)
    parts = [f"<h1>precipdiff evaluation</h1><p>{html.escape(context.get('summary', ''))}</p>",
             "<h2>How to read this report</h2>", HOW_TO_READ,
             "<h2>1 km: every method vs the radar (0.01°)</h2>",
             _table_html(headline_table(metrics, "fine", fss_scale, max_km))]
    if intervals is not None and len(intervals):
        parts += ["<h2>1 km: confidence intervals and paired differences</h2>",
                  _intervals_html(intervals, context.get("level", 0.95))]
    if probability is not None:
        parts += ["<h2>1 km: do the probabilities mean what they say?</h2>",
                  _probability_html(probability, verdicts or {}, context.get("level", 0.95))]
    parts += ["<h2>Correction stage: 0.1° vs the max-pooled radar</h2>",
              _table_html(headline_table(metrics, "coarse", fss_scale, max_km)),
              "<h2>Model selection</h2>", _selection_html(selection)]
    for title, fig in figures.items():
        parts += [f"<h2>{html.escape(title)}</h2>", _figure_html(fig)]
    where = [c for c in ("region", "box") if c in hours and hours[c].nunique() > 1]
    listed = hours.assign(time=hours["time"].astype(str))[["time", *where, "radar_mean_mm_h", "radar_wet_fraction",
                                                           "sample"]]
    parts += ["<h2>Evaluated hours</h2>", _box(listed.to_html(index=False, float_format=lambda x: f"{x:.3f}")),
              "<p>The full table (every metric, threshold and scale) is "
              "<code>data/08_reporting/metrics.parquet</code>, "
              "also an artifact of the MLflow run.</p>"]
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>precipdiff evaluation</title>'
            f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head><body>{''.join(parts)}</body></html>")
