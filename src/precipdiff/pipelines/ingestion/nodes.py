"""Ingestion nodes: any source → per-day partitions (cached) → the canonical ``(satellite, radar)`` pair.

Sources (``ingestion.source``):

* ``synthetic`` — the embedded generator (``docs/synthetic.md``);
* ``files`` — IMERG half-hourly files + MRMS hourly/2-min files (``docs/readers.md``);
* ``radar_simulated_satellite`` — MRMS files as truth, satellite simulated from them by the same
  IMERG-like error model as ``synthetic`` (the real-radar benchmark).

Domains (``ingestion.domain.kind``): ``box`` — the one box ``ingestion.box`` / ``ingestion.region``,
every hour, as canonical ``(time, lat, lon)`` datasets; ``grid`` — the whole grid of the MRMS files
cut into boxes named by ``domain.regions``, only the wet, covered box-hours kept, as stacks of
box-hours (:mod:`precipdiff.data.boxes`). Days already ingested with the same parameters (same
fingerprint) are not read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from precipdiff.data import boxes as bx
from precipdiff.data import contract, days, fields, synthetic
from precipdiff.data.files import discover, group_by_day, ingest_day, ingest_day_boxes
from precipdiff.data.mrms import grid_extent
from precipdiff.data.satellite_errors import SatelliteErrorParams, simulate_satellite
from precipdiff.reporting.figures import sample_hours_figure

log = logging.getLogger(__name__)
SOURCES = ("synthetic", "files", "radar_simulated_satellite")
DOMAINS = ("box", "grid")


def domain_kind(params: dict) -> str:
    """``ingestion.domain.kind`` (``box`` when the block is absent), checked against the source."""
    kind = (params.get("domain") or {}).get("kind", "box")
    if kind not in DOMAINS:
        raise ValueError(f"ingestion.domain.kind must be one of {list(DOMAINS)}, got {kind!r}")
    if kind != "box" and params.get("source") == "synthetic":
        raise ValueError("ingestion.domain.kind: the synthetic source generates one box; use kind 'box' "
                         "(a large domain needs MRMS files: source files or radar_simulated_satellite)")
    return kind


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
    if domain_kind(params) == "box":
        where = {"box": resolve_box(params)}
    else:  # the layout and what is kept, not the other knobs of the block
        d = params["domain"]
        where = {"domain": {k: d.get(k) for k in ("kind", "box_cells", "regions", "keep")},
                 "regions": {n: params["regions"][n] for n in d.get("regions") or params["regions"]}}
    return days.fingerprint({"source": source, **where, **{k: params.get(k) for k in keys}})


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
    if domain_kind(params) == "box":
        load = partial(_load_day, box=box, cfg=cfg, params=params,
                       location=_location_map(box, params) if simulate else None)
    else:
        layout = domain_layout(params, next(iter(radar_days.values()))[0])
        load = partial(_load_domain_day, boxes=layout, cfg=cfg, params=params, simulate=simulate)
    for day, radar_files in radar_days.items():
        key = days.key(fp, day)
        if key in cached or (not simulate and day not in sat_days):
            continue
        yield key, partial(load, sat_days.get(day, []), radar_files, day=day)


def domain_layout(params: dict, mrms_file) -> list[bx.Box]:
    """The boxes of ``ingestion.domain`` over the grid of ``mrms_file`` (every file shares it)."""
    d = params["domain"]
    return bx.layout(grid_extent(mrms_file), int(d["box_cells"]), params["regions"], d.get("regions"))


def _load_domain_day(imerg, mrms, *, boxes, cfg, params, simulate, day):
    """One day of a large domain: the kept box-hours as packed stacks (``None``: no box-hour kept)."""
    sat, radar, report = ingest_day_boxes(imerg, mrms, boxes, params["domain"]["keep"],
                                          scheduler=cfg.get("scheduler"), on_error=cfg.get("on_error", "raise"))
    log.info("ingested %s: %d of %d box-hours kept (%d hours) from %d MRMS / %d IMERG files in %.1f s", day,
             report["box_hours"], report["box_hours_seen"], report["hours"], report["mrms_files"],
             report["imerg_files"], report["seconds"])
    if radar is None:
        return days.empty()
    if simulate:
        sat = simulate_stack(radar, params, day, boxes)
    return days.pack(sat, radar)


def simulate_stack(radar: xr.Dataset, params: dict, day, boxes: list[bx.Box]) -> xr.Dataset:
    """The simulated satellite of a day's radar stack, box by box (the same error model as one box):
    seeded by ``(seed, day, box number)``, each box with its own fixed location map."""
    by_name, parts = {b.name: b for b in boxes}, []
    slope = SatelliteErrorParams.from_mapping(params.get("satellite_errors")).location_slope
    for name in np.unique(radar["box"].values.astype(str)):
        box = by_name[name]
        hours = bx.box_dataset(radar, name, "radar")
        seed = int(np.random.SeedSequence([int(params["seed"]), pd.Timestamp(day).toordinal(), box.number])
                   .generate_state(1)[0])
        location = fields.unit_field((hours.sizes["lat"], hours.sizes["lon"]), slope,
                                     np.random.default_rng([int(params["seed"]), box.number]))
        sat = simulate_satellite(hours, params.get("satellite_errors"), seed, location)
        parts.append((sat, box))
    values = np.concatenate([s[contract.VARIABLE].values for s, _ in parts])
    times = np.concatenate([s["time"].values for s, _ in parts])
    chosen = [b for s, b in parts for _ in range(s.sizes["time"])]
    out = bx.make_stack(values, times, chosen, kind="satellite",
                        source=parts[0][0][contract.VARIABLE].attrs["source"].split(" (seed")[0])
    bx.validate_stack_pair(out, radar)
    return out


def _load_day(imerg, mrms, *, box, cfg, params, location, day):
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
    along = "sample" if bx.is_stack(sat) else "time"
    if params["source"] != "synthetic" and start is not None:
        keep = (sat["time"].values >= np.datetime64(start)) & (sat["time"].values <= np.datetime64(end))
        sat, radar = sat.isel({along: keep}), radar.isel({along: keep})
    if sat.sizes[along] == 0:
        raise ValueError(f"ingestion.period: no ingested hour between {start} and {end}")
    if along == "time":  # the one box's name, which preprocessing gives its stack
        for ds in (sat, radar):
            ds.attrs["region"] = params.get("region") or "box"
    log.info("ingestion(%s): %d %ss (%d hours), satellite %s, radar %s", params["source"], sat.sizes[along], along,
             np.unique(sat["time"].values).size, dict(sat.sizes), dict(radar.sizes))
    return sat, radar


def plot_sample_hours(satellite: xr.Dataset, radar: xr.Dataset, params: dict) -> go.Figure:
    """A few of the wettest hours, satellite beside radar (see ``reporting.figures``)."""
    return sample_hours_figure(satellite, radar, n_hours=int(params.get("n_hours", 3)))
