"""Plotly figures of the experiments: scores per arm and method, bias per intensity bin, skill vs cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from precipdiff.reporting.labels import column_name


def arm_bars(table: pd.DataFrame, title: str) -> go.Figure:
    """One panel per metric column, bars per method grouped by arm; ``bias_bin`` rows (if any) as
    one more panel of lines: the bias (mm/h) of each observed-intensity bin, by its lower edge."""
    bins = table[table["metric"] == "bias_bin"]
    bars = table[table["metric"] != "bias_bin"].assign(column=lambda d: d.apply(column_name, axis=1))
    columns = list(dict.fromkeys(bars["column"]))
    panels = columns + (["bias per intensity bin (mm/h)"] if len(bins) else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels)
    colours = {a: qualitative.D3[i % 10] for i, a in enumerate(dict.fromkeys(table["arm"]))}
    for j, col in enumerate(columns, start=1):
        for arm, g in bars[bars["column"] == col].groupby("arm", sort=False):
            fig.add_trace(go.Bar(x=g["method"], y=g["value"], name=arm, legendgroup=arm, showlegend=j == 1,
                                 marker_color=colours[arm], hovertemplate=f"{arm}<br>%{{x}}: %{{y:.4g}}<extra></extra>"),
                          row=1, col=j)
    for (arm, method), g in bins.groupby(["arm", "method"], sort=False):
        g = g.sort_values("threshold")
        fig.add_trace(go.Scatter(x=g["threshold"].clip(lower=0.05), y=g["value"], mode="lines+markers",
                                 name=f"{arm}: {method}", legendgroup=arm, showlegend=False,
                                 line=dict(color=colours[arm], dash="solid" if "mean" not in method else "dot")),
                      row=1, col=len(panels))
    if len(bins):
        fig.update_xaxes(type="log", title_text="bin lower edge (mm/h)", row=1, col=len(panels))
    fig.update_layout(title=title, barmode="group", height=450, width=max(300 * len(panels), 700))
    fig.update_xaxes(tickangle=45)
    return fig


def cost_chart(cost: pd.DataFrame) -> go.Figure:
    """Skill (fair CRPS, mm/h) against inference cost (µs per km² per member), marker area ∝ training time."""
    train = cost["train_seconds"].fillna(0.0)  # NaN: not recorded (models trained by an older version)
    size = 12 + 28 * np.sqrt(train / max(train.max(), 1e-9))
    text = [f"{m}<br>train {t:.0f} s, peak {r:.0f} MB" for m, t, r in
            zip(cost["method"], cost["train_seconds"], cost["peak_rss_mb"])]
    fig = go.Figure(go.Scatter(x=cost["us_per_km2_member"], y=cost["crps_fair"], mode="markers+text", text=cost["method"],
                               textposition="top center", marker=dict(size=size, color=qualitative.D3[: len(cost)]),
                               hovertext=text, hoverinfo="text+x+y"))
    fig.update_xaxes(type="log", title_text="inference time (µs per km² per member, this machine)")
    fig.update_yaxes(title_text="fair CRPS at 1 km (mm/h, lower is better)")
    fig.update_layout(title="Skill versus cost (marker area ∝ training time)", height=450, width=750)
    return fig
