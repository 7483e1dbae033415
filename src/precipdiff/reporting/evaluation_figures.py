"""Plotly figures of the evaluation pipeline, built from the tidy metrics table and the map fields.

Every function takes plain tables/datasets and returns a ``go.Figure`` (saved as
``plotly.JSONDataset`` in ``data/08_reporting``, previewable in ``kedro viz``, and embedded in the
HTML report). Metric names are those of :mod:`precipdiff.pipelines.evaluation.scores`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from precipdiff.reporting.figures import map_panels

# One colour per method, the same in every figure.
METHOD_ORDER = ["satellite_nearest", "satellite_bilinear", "qm_bilinear", "rainfarm", "regression_chain",
                "correction_diffusion_bilinear", "diffusion_chain", "diffusion_chain_mean", "champion_chain",
                "satellite", "qm", "regression_correction", "correction_diffusion"]
_PALETTE = qualitative.D3 + qualitative.Set2
COLOURS = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(METHOD_ORDER)} | {"radar": "black"}


def _methods(df: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(df["method"]))
    return [m for m in METHOD_ORDER if m in present] + [m for m in present if m not in METHOD_ORDER]


def sample_maps(samples: xr.Dataset, vmax_percentile: float = 99.5) -> go.Figure:
    """Per sample hour: satellite, corrected (member 1), members 1–2 at 1 km, ensemble mean, P(>x), radar.

    One precipitation colour scale (log1p of mm/h, :func:`~precipdiff.reporting.figures.map_panels`)
    for every rate panel; the exceedance probability has its own 0–1 scale.
    """
    coarse = {"coarse_lat": "lat", "coarse_lon": "lon"}
    thr = float(samples["exceedance_probability"].attrs.get("threshold_mm_h", np.nan))
    panels, prob_panels = [], []
    for i in range(samples.sizes["sample"]):
        s = samples.isel(sample=i)
        stamp = np.datetime_as_string(s["time"].values, unit="h")
        stamp += f" {s['box'].item()}" if "box" in s.coords and samples["box"].to_series().nunique() > 1 else ""
        row = [(f"satellite 0.1° {stamp}", s["satellite"].rename(coarse)),
               ("corrected 0.1° (member 1)", s["corrected"].isel(member=0).rename(coarse))]
        row += [(f"member {m + 1}", s["downscaled"].isel(member=m)) for m in range(s.sizes["member"])]
        row += [("ensemble mean", s["ensemble_mean"]), (f"P(≥ {thr:g} mm/h)", s["exceedance_probability"]),
                ("radar 0.01°", s["radar"])]
        prob_panels.append(len(panels) + len(row) - 2)
        panels += row
    rates = np.concatenate([samples[v].values.ravel() for v in ("radar", "downscaled")])
    vmax = max(float(np.nanpercentile(rates, vmax_percentile)) if np.isfinite(rates).any() else 1.0, 1.0)
    members = samples.attrs.get("n_members", "?")
    fig = map_panels(panels, rows=samples.sizes["sample"], vmax_mm_h=vmax,
                     title=f"Test hours: satellite → PrecipDiff ensemble ({members} members) vs radar")
    for k, i in enumerate(prob_panels):  # probability panels: their own scale, not log1p(mm/h)
        p = panels[i][1].values
        fig.data[i].update(z=np.round(p, 3), zmin=0, zmax=1, colorscale="Purples", customdata=np.round(p, 3),
                           showscale=k == 0, colorbar=dict(title="P", x=1.08, len=0.5),
                           hovertemplate="lon %{x:.3f}<br>lat %{y:.3f}<br>P = %{customdata:.2f}<extra></extra>")
    return fig


def metric_bars(metrics: pd.DataFrame, specs: list[dict], grid: str = "fine") -> go.Figure:
    """One bar panel per metric spec ``{"metric", "threshold"?, "scale"?, "title"?}``, bars per method."""
    df = metrics[metrics["grid"] == grid]
    fig = make_subplots(rows=1, cols=len(specs), subplot_titles=[s.get("title", s["metric"]) for s in specs])
    for j, spec in enumerate(specs, start=1):
        sel = df[df["metric"] == spec["metric"]]
        for key in ("threshold", "scale"):
            if key in spec:
                sel = sel[np.isclose(sel[key], float(spec[key]))]
        sel = sel.set_index("method")["value"]
        order = [m for m in _methods(df) if m in sel.index]
        fig.add_trace(go.Bar(x=order, y=[sel[m] for m in order], marker_color=[COLOURS.get(m, "grey") for m in order],
                             showlegend=False, hovertemplate="%{x}: %{y:.4g}<extra></extra>"), row=1, col=j)
    where = "0.01° vs radar" if grid == "fine" else "0.1° vs max-pooled radar"
    fig.update_layout(title=f"Scores per method ({grid}: {where})",
                      height=420, width=max(320 * len(specs), 600), bargap=0.15)
    fig.update_xaxes(tickangle=45)
    return fig


def coarse_metric_bars(metrics: pd.DataFrame, specs: list[dict]) -> go.Figure:
    """:func:`metric_bars` of the correction stage (0.1° vs the max-pooled radar)."""
    return metric_bars(metrics, specs, grid="coarse")


def psd_curves(metrics: pd.DataFrame) -> go.Figure:
    """Mean RAPSD per method and the radar (left), PSD ratio to the radar (right), by wavelength (km)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["power spectral density", "PSD ratio to radar"])
    df = metrics[metrics["grid"] == "fine"]
    for col, metric in ((1, "psd"), (2, "psd_ratio")):
        sel = df[df["metric"] == metric]
        for method in _methods(sel):
            g = sel[sel["method"] == method].sort_values("scale")
            fig.add_trace(go.Scatter(x=g["scale"], y=g["value"], name=method, legendgroup=method, showlegend=col == 1,
                                     mode="lines", line=dict(color=COLOURS.get(method, "grey"),
                                                             width=3 if method == "radar" else 1.5)), row=1, col=col)
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey", row=1, col=2)
    fig.update_xaxes(type="log", autorange="reversed", title_text="wavelength (km)")
    fig.update_yaxes(type="log", title_text="(mm/h)²", row=1, col=1)
    fig.update_yaxes(type="log", title_text="ratio", row=1, col=2)
    fig.update_layout(title="Spectra at 1 km (ratio < 1: too smooth, > 1: too noisy)", height=450, width=1100)
    return fig


def rank_histograms(metrics: pd.DataFrame) -> go.Figure:
    """Rank (Talagrand) histograms of the ensemble methods; flat = calibrated, U = under-dispersive."""
    ranks = metrics[metrics["metric"].str.match(r"rank_\d+$")].copy()
    ranks["rank"] = ranks["metric"].str[5:].astype(int)
    keys = list(dict.fromkeys(zip(ranks["grid"], ranks["method"])))
    fig = make_subplots(rows=1, cols=max(len(keys), 1), subplot_titles=[f"{m} ({s})" for s, m in keys])
    for j, (grid, method) in enumerate(keys, start=1):
        g = ranks[(ranks["grid"] == grid) & (ranks["method"] == method)].sort_values("rank")
        fig.add_trace(go.Bar(x=g["rank"], y=g["value"], marker_color=COLOURS.get(method, "grey"), showlegend=False),
                      row=1, col=j)
        fig.add_hline(y=1.0 / len(g), line_dash="dot", line_color="grey", row=1, col=j)
    fig.update_xaxes(title_text="rank of the radar among the members")
    fig.update_yaxes(title_text="frequency", col=1)
    fig.update_layout(title="Rank histograms (dotted: flat = calibrated)", height=380, width=max(330 * len(keys), 600))
    return fig


def fss_curves(metrics: pd.DataFrame, grid: str = "fine", pixel_km: float = 1.0) -> go.Figure:
    """FSS vs neighbourhood width per threshold: ``fss`` of deterministic methods, ``fss_members``
    (solid) and ``fss_prob`` (dashed) of ensembles; grey dots: the "useful" level 0.5 + f_o/2."""
    df = metrics[(metrics["grid"] == grid) & metrics["metric"].isin(["fss", "fss_members", "fss_prob", "fss_useful"])]
    thresholds = sorted(df["threshold"].dropna().unique())
    fig = make_subplots(rows=1, cols=len(thresholds), subplot_titles=[f"≥ {t:g} mm/h" for t in thresholds],
                        shared_yaxes=True)
    for j, thr in enumerate(thresholds, start=1):
        d = df[np.isclose(df["threshold"], thr)]
        for method in _methods(d):
            for metric, dash in (("fss", "solid"), ("fss_members", "solid"), ("fss_prob", "dash")):
                g = d[(d["method"] == method) & (d["metric"] == metric)].sort_values("scale")
                if len(g):
                    fig.add_trace(go.Scatter(x=g["scale"] * pixel_km, y=g["value"], mode="lines+markers",
                                             name=method if metric != "fss_prob" else f"{method} (prob)",
                                             legendgroup=method, showlegend=j == 1,
                                             line=dict(color=COLOURS.get(method, "grey"), dash=dash)), row=1, col=j)
        useful = d[d["metric"] == "fss_useful"]["value"]
        if len(useful):
            fig.add_hline(y=float(useful.iloc[0]), line_dash="dot", line_color="grey", row=1, col=j)
    fig.update_xaxes(type="log", title_text="neighbourhood width (km)")
    fig.update_yaxes(range=[0, 1], title_text="FSS", col=1)
    fig.update_layout(title="Fractions skill score vs scale", height=430, width=max(380 * len(thresholds), 600))
    return fig


def reliability_diagrams(diagram: pd.DataFrame, min_count: float = 100.0) -> go.Figure:
    """Reliability diagrams of P(R ≥ t) at 1 km: observed frequency against forecast probability with
    its bootstrap interval, one column per threshold, rows all cells / satellite-dry cells; bins
    with fewer than ``min_count`` pixels are left out. On the diagonal = reliable."""
    cells = [c for c in ("all", "sat_dry") if c in set(diagram["cells"])]
    thresholds = sorted(diagram["threshold"].unique())
    titles = [f"{'satellite-dry cells' if c == 'sat_dry' else 'all cells'}, ≥ {t:g} mm/h" for c in cells for t in thresholds]
    fig = make_subplots(rows=max(len(cells), 1), cols=max(len(thresholds), 1), subplot_titles=titles,
                        shared_xaxes=True, shared_yaxes=True)
    for i, c in enumerate(cells, start=1):
        for j, thr in enumerate(thresholds, start=1):
            d = diagram[(diagram["cells"] == c) & np.isclose(diagram["threshold"], thr) & (diagram["n"] >= min_count)]
            for method in _methods(d):
                g = d[d["method"] == method].sort_values("prob")
                fig.add_trace(go.Scatter(
                    x=g["prob"], y=g["observed_frequency"], mode="lines+markers", name=method, legendgroup=method,
                    showlegend=i == 1 and j == 1, line=dict(color=COLOURS.get(method, "grey"),
                                                            dash="solid" if g["members"].iloc[0] > 1 else "dot"),
                    error_y=dict(type="data", symmetric=False, array=g["ci_high"] - g["observed_frequency"],
                                 arrayminus=g["observed_frequency"] - g["ci_low"]),
                    customdata=g["n"], hovertemplate="P = %{x:.2f}: observed %{y:.3f} (%{customdata:.0f} px)"
                                                     "<extra>" + method + "</extra>"), row=i, col=j)
            fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dot"),
                                     showlegend=False, hoverinfo="skip"), row=i, col=j)
    fig.update_xaxes(range=[0, 1], title_text="forecast probability")
    fig.update_yaxes(range=[0, 1], title_text="observed frequency", col=1)
    fig.update_layout(title="Reliability of the exceedance probabilities (dotted diagonal: reliable; bars: 95 % "
                            "hour-block bootstrap; dotted lines: deterministic methods as 0/1)",
                      height=330 * max(len(cells), 1) + 80, width=max(300 * len(thresholds), 600))
    return fig
