"""Ingestion nodes: any source → per-day partitions (cached) → the canonical ``(satellite, radar)`` pair.

Sources (``ingestion.source``):

* ``synthetic`` — the embedded generator (``docs/synthetic.md``);
* ``files`` — IMERG half-hourly files + MRMS hourly/2-min files (``docs/readers.md``);
* ``radar_simulated_satellite`` — MRMS files as truth, satellite simulated from them by the same
  IMERG-like error model as ``synthetic`` (the real-radar benchmark).

Days already ingested with the same parameters (same fingerprint) are not read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from precipdiff.data import contract, days, fields, synthetic
from precipdiff.data.files import discover, group_by_day, ingest_day
from precipdiff.data.satellite_errors import SatelliteErrorParams, simulate_satellite
from precipdiff.reporting.figures import sample_hours_figure

log = logging.getLogger(__name__)
SOURCES = ("synthetic", "files", "radar_simulated_satellite")


def resolve_box(params: dict) -> dict:
    """``ingestion.box``, or the named ``ingestion.regions[ingestion.region]`` when a region is set."""
    region = params.get("region")
    if region:
        regions = params.get("regions", {})
        if region not in regions:
            raise ValueError(f"ingestion.region {region!r} is not in ingestion.regions {sorted(regions)}")
        box = regions[region]
    else:
        box = params.get("box")
    contract.snap_box(box, name="ingestion.region" if region else "ingestion.box")
    return dict(box)


def _period(params: dict) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    period = params.get("period") or {}
    if not period.get("start"):
        return None, None
    start = pd.Timestamp(period["start"])
    return start, start + pd.Timedelta(hours=int(period["hours"]) - 1)


def source_fingerprint(params: dict) -> str:
    """Hash of every parameter that shapes the ingested data of the configured source."""
    source = params["source"]
    keys = {"synthetic": ("seed", "period", "synthetic", "satellite_errors"),
            "files": ("files",),
            "radar_simulated_satellite": ("seed", "files", "satellite_errors")}[source]
    return days.fingerprint({"source": source, "box": resolve_box(params),
                             **{k: params.get(k) for k in keys}})


def _synthetic_days(params: dict, box: dict, fp: str, cached: set) -> Iterator[tuple[str, Callable]]:
    if all(days.key(fp, d) in cached for d in _period_days(params)):
        return
    sat, radar = synthetic.generate(box, params["period"]["start"], params["period"]["hours"],
                                    int(params["seed"]), params.get("synthetic", {}).get("radar"),
                                    params.get("satellite_errors"))
    for key, day in days.split_days(sat, radar, fp).items():
        if key not in cached:
            yield key, (lambda d=day: d)


def _period_days(params: dict) -> list:
    start, end = _period(params)
    hours = pd.date_range(start, end, freq="h").values
    return sorted(set(days.day_of(hours)))


def _file_paths(cfg: dict, kind: str) -> list:
    folder = cfg.get(f"{kind}_dir")
    return discover(folder, cfg.get(f"{kind}_pattern", "*")) if folder else []


def _files_days(params: dict, box: dict, fp: str, cached: set, simulate: bool) -> Iterator[tuple[str, Callable]]:
    """One loader per day not yet cached; calling it decodes that day only (bounded memory)."""
    cfg = params["files"]
    imerg = [] if simulate else _file_paths(cfg, "imerg")
    if not simulate and not imerg:
        raise ValueError("ingestion.files.imerg_dir: source 'files' needs IMERG files "
                         "(use source 'radar_simulated_satellite' for radar only)")
    radar_days = group_by_day(_file_paths(cfg, "mrms"))
    if not radar_days:
        raise ValueError("ingestion.files.mrms_dir: no MRMS file found (the radar is the training target)")
    sat_days = group_by_day(imerg) if imerg else {}
    location = _location_map(box, params) if simulate else None
    for day, radar_files in radar_days.items():
        key = days.key(fp, day)
        if key in cached or (not simulate and day not in sat_days):
            continue
        yield key, partial(_load_day, sat_days.get(day, []), radar_files, box, cfg, params, location, day)


def _load_day(imerg, mrms, box, cfg, params, location, day):
    sat, radar, report = ingest_day(imerg, mrms, box, scheduler=cfg.get("scheduler"),
                                    on_error=cfg.get("on_error", "raise"))
    log.info("ingested %s: %d hours from %d MRMS / %d IMERG files in %.1f s", day, report["hours"],
             report["mrms_files"], report["imerg_files"], report["seconds"])
    if location is not None:  # radar_simulated_satellite: one seed per day, one location map
        day_seed = int(params["seed"]) + pd.Timestamp(day).toordinal()
        sat = simulate_satellite(radar, params.get("satellite_errors"), day_seed, location)
    return days.pack(sat, radar)


def _location_map(box: dict, params: dict) -> np.ndarray:
    """Fixed map of where the simulated satellite underestimates heavy rain most (seeded, [0, 1])."""
    lat, lon = contract.grid_for_box(box, "radar")
    slope = SatelliteErrorParams.from_mapping(params.get("satellite_errors")).location_slope
    return fields.unit_field((lat.size, lon.size), slope, np.random.default_rng(int(params["seed"])))


def ingest_days(params: dict, cached: dict) -> dict:
    """New day partitions ``{<fingerprint>/<day>: dataset or loader}`` for the configured source.

    File sources return loaders: the catalog calls each one when it saves that day, so memory
    holds one day at a time whatever the number of files. Cached days are skipped.
    """
    source = params.get("source")
    if source not in SOURCES:
        raise ValueError(f"ingestion.source must be one of {list(SOURCES)}, got {source!r}")
    box, fp = resolve_box(params), source_fingerprint(params)
    cached_keys = set(cached)
    if source == "synthetic":
        new = dict(_synthetic_days(params, box, fp, cached_keys))
    else:
        new = dict(_files_days(params, box, fp, cached_keys, simulate=source == "radar_simulated_satellite"))
    log.info("ingestion(%s): fingerprint %s, %d day(s) cached, %d to ingest", source, fp,
             sum(k.startswith(f"{fp}/") for k in cached_keys), len(new))
    return new


def assemble(params: dict, ingested: dict) -> tuple[xr.Dataset, xr.Dataset]:
    """The canonical pair from the day partitions of the current fingerprint (within the period)."""
    fp = source_fingerprint(params)
    sat, radar = days.assemble(ingested, fp)
    start, end = _period(params)
    if params["source"] != "synthetic" and start is not None:
        keep = (sat["time"].values >= np.datetime64(start)) & (sat["time"].values <= np.datetime64(end))
        sat, radar = sat.isel(time=keep), radar.isel(time=keep)
    if sat.sizes["time"] == 0:
        raise ValueError(f"ingestion.period: no ingested hour between {start} and {end}")
    log.info("ingestion(%s): %d hours, satellite %s, radar %s", params["source"], sat.sizes["time"],
             dict(sat.sizes), dict(radar.sizes))
    return sat, radar


def plot_sample_hours(satellite: xr.Dataset, radar: xr.Dataset, params: dict) -> go.Figure:
    """A few of the wettest hours, satellite beside radar (see ``reporting.figures``)."""
    return sample_hours_figure(satellite, radar, n_hours=int(params.get("n_hours", 3)))
