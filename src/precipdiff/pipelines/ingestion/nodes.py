"""Ingestion nodes: dispatch on ``ingestion.source`` and return canonical datasets."""

from __future__ import annotations

import logging

import plotly.graph_objects as go
import xarray as xr

from precipdiff.data import contract, synthetic
from precipdiff.reporting.figures import sample_hours_figure

log = logging.getLogger(__name__)


def _synthetic(params: dict) -> tuple[xr.Dataset, xr.Dataset]:
    syn = params.get("synthetic", {})
    return synthetic.generate(
        params["box"], params["period"]["start"], params["period"]["hours"], int(params["seed"]),
        syn.get("radar"), params.get("satellite_errors"),
    )


SOURCES = {"synthetic": _synthetic}


def ingest(params: dict) -> tuple[xr.Dataset, xr.Dataset]:
    """Produce the canonical ``(satellite, radar)`` pair from ``params['source']``."""
    source = params.get("source")
    if source not in SOURCES:
        raise ValueError(f"ingestion.source must be one of {sorted(SOURCES)}, got {source!r}")
    contract.snap_box(params.get("box"), name="ingestion.box")  # fail early, naming the parameter
    satellite, radar = SOURCES[source](params)
    contract.validate_pair(satellite, radar)
    log.info(
        "ingestion(%s): %d hours, satellite %s, radar %s", source, satellite.sizes["time"],
        dict(satellite.sizes), dict(radar.sizes),
    )
    return satellite, radar


def plot_sample_hours(satellite: xr.Dataset, radar: xr.Dataset, params: dict) -> go.Figure:
    """A few of the wettest hours, satellite beside radar (see ``reporting.figures``)."""
    return sample_hours_figure(satellite, radar, n_hours=int(params.get("n_hours", 3)))
