"""Plotly figures (saved through kedro-datasets plotly datasets, previewable in ``kedro viz``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from precipdiff.data.contract import VARIABLE

# A precipitation colour scale (white = dry, then blue → green → yellow → red), on log1p(mm/h).
PRECIP_COLORSCALE = [
    [0.0, "#ffffff"], [0.05, "#c6dbef"], [0.2, "#4292c6"], [0.4, "#41ab5d"],
    [0.6, "#fee391"], [0.8, "#fd8d3c"], [1.0, "#a50f15"],
]
TICKS_MM_H = [0, 0.5, 1, 2, 5, 10, 20, 50]


def wettest_hours(radar: xr.Dataset, n_hours: int) -> np.ndarray:
    """Indices of the ``n_hours`` hours (box-hours of a stack) with the largest radar mean rate, in order."""
    means = radar[VARIABLE].mean(dim=radar[VARIABLE].dims[1:], skipna=True).values
    return np.sort(np.argsort(np.nan_to_num(means, nan=-1.0))[::-1][:n_hours])


def map_panels(
    panels: Sequence[tuple[str, xr.DataArray]], rows: int, vmax_mm_h: float, title: str
) -> go.Figure:
    """Grid of lat/lon heatmaps sharing one precipitation colour scale (log1p of mm/h)."""
    cols = int(np.ceil(len(panels) / rows))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    zmax = float(np.log1p(vmax_mm_h))
    ticks = [t for t in TICKS_MM_H if t <= vmax_mm_h]
    for i, (_, da) in enumerate(panels):
        fig.add_trace(
            go.Heatmap(
                z=np.round(np.log1p(da.values), 3), x=da["lon"].values, y=da["lat"].values, zmin=0, zmax=zmax,
                colorscale=PRECIP_COLORSCALE, showscale=(i == 0), customdata=np.round(da.values, 2),
                hovertemplate="lon %{x:.3f}<br>lat %{y:.3f}<br>%{customdata:.2f} mm/h<extra></extra>",
                colorbar=dict(title="mm/h", tickvals=np.log1p(ticks), ticktext=[str(t) for t in ticks]),
            ),
            row=i // cols + 1, col=i % cols + 1,
        )
    fig.update_xaxes(title_text="longitude (°E)", showgrid=False)
    fig.update_yaxes(title_text="latitude (°N)", showgrid=False, scaleanchor="x")
    fig.update_layout(title=title, height=330 * rows + 80, width=330 * cols + 120)
    return fig


def sample_hours_figure(satellite: xr.Dataset, radar: xr.Dataset, n_hours: int = 3) -> go.Figure:
    """Satellite (0.1°) above radar (0.01°) for the ``n_hours`` wettest hours."""
    idx = wettest_hours(radar, n_hours)
    along = radar[VARIABLE].dims[0]  # time, or sample for a stack of box-hours
    panels = []
    for row, (label, ds) in enumerate((("satellite", satellite), ("radar", radar))):
        for i in idx:
            da = ds[VARIABLE].isel({along: i})
            where = f" {da['region'].item()} {da['box'].item()}" if along == "sample" else ""
            panels.append((f"{label} {np.datetime_as_string(da['time'].values, unit='h')}{where}", da))
    vmax = float(np.nanpercentile(radar[VARIABLE].isel({along: idx}).values, 99.5)) or 1.0
    return map_panels(panels, rows=2, vmax_mm_h=max(vmax, 1.0), title="Sample hours: satellite vs radar")
