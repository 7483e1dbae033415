"""Ingest many IMERG and MRMS files, one UTC day at a time, decoding in parallel with dask.

Memory stays bounded whatever the number of files: :func:`iter_days` yields one day (at most 24
hourly fields per source) before reading the next, and 2-min ``PrecipRate`` files are averaged to
hours inside the dask graph, so a day never holds more than one hour of 2-min fields per worker.

**Which day a file belongs to.** Day ``D`` holds the data *observed during* ``D``: the hours ending
01:00 … 24:00 UTC (hour ``H`` covers (H − 1 h, H], see :mod:`~precipdiff.data.align`). So the
IMERG files of date ``D`` (half hours starting 00:00 … 23:30) all belong to ``D``, while the MRMS
1-h file valid at 00:00 of ``D + 1`` (rain of 23:00–24:00 on ``D``) belongs to ``D`` too.

**Schedulers** (``scheduler=``): ``None`` → dask's local ``"threads"`` (eccodes releases the GIL
while decoding); ``"processes"`` / ``"synchronous"``; a ``"tcp://host:port"`` address → a
``distributed.Client`` connected to that scheduler for the duration of the call / iteration; or an
existing ``distributed.Client``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import boxes as bx
from precipdiff.data.align import halfhours_to_hours, intersect_times, rates_to_hours
from precipdiff.data.contract import VARIABLE, validate, validate_pair
from precipdiff.data.errors import ReaderError, reader_error
from precipdiff.data.imerg import name_start, read_imerg
from precipdiff.data.mrms import RATE_PRODUCTS, parse_name, read_mrms

log = logging.getLogger(__name__)


def discover(directory: str | Path, pattern: str = "*") -> list[Path]:
    """Sorted files in ``directory`` matching the glob ``pattern`` (``"**/*.grib2*"`` recurses).

    Raises :class:`ReaderError` naming the directory if it does not exist or nothing matches.
    """
    directory = Path(directory)
    if not directory.exists():
        raise reader_error(directory, "does not exist; expected a directory of input files")
    if not directory.is_dir():
        raise reader_error(directory, "not a directory; expected a directory of input files, found a file")
    paths = sorted(p for p in directory.glob(pattern) if p.is_file())
    if not paths:
        found = sum(1 for _ in directory.iterdir())
        raise reader_error(directory, f"no files match {pattern!r}; expected input files, found "
                                      f"{found} other entr{'y' if found == 1 else 'ies'}")
    return paths


def end_time(path: str | Path) -> pd.Timestamp:
    """End of the interval a file's data describe, from its name (UTC).

    IMERG ``…3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS…``: start + 30 min (:func:`~precipdiff.data.imerg.name_start`,
    the rule :func:`~precipdiff.data.imerg.read_imerg` checks the content against); MRMS: the valid time.
    """
    path = Path(path)
    start = name_start(path)
    if start is not None:
        return start + pd.Timedelta(minutes=30)
    if path.name.endswith((".grib2", ".grib2.gz")):
        return parse_name(path)[1]
    raise reader_error(path, "cannot tell the time from the name (neither IMERG …3IMERG.YYYYMMDD-SHHMMSS-… "
                             "nor MRMS …_YYYYMMDD-HHMMSS.grib2[.gz])")


def observed_day(path: str | Path) -> dt.date:
    """UTC day whose data the file holds: the start date of the hour (H − 1 h, H] it counts toward."""
    return (end_time(path).ceil("h") - pd.Timedelta(hours=1)).date()


def group_by_day(paths: Iterable[str | Path]) -> dict[dt.date, list[Path]]:
    """Files grouped by :func:`observed_day`, days ascending, files sorted by time within a day."""
    days: dict[dt.date, list[Path]] = defaultdict(list)
    for path in paths:
        days[observed_day(path)].append(Path(path))
    return {day: sorted(days[day], key=end_time) for day in sorted(days)}


@contextlib.contextmanager
def dask_scheduler(scheduler=None):
    """Yield something ``dask.compute(..., scheduler=)`` accepts (see the module docstring)."""
    if isinstance(scheduler, str) and "://" in scheduler:
        from distributed import Client  # lazy: only needed for a remote cluster

        with Client(scheduler) as client:
            yield client
    else:
        yield "threads" if scheduler is None else scheduler


def ingest_day(
    imerg_paths: Sequence[str | Path],
    mrms_paths: Sequence[str | Path],
    box: Mapping[str, float],
    *,
    scheduler=None,
    on_error: str = "raise",
    step_minutes: int = 2,
) -> tuple[xr.Dataset | None, xr.Dataset, dict]:
    """Read, align and validate one batch (normally one day) of IMERG and MRMS files.

    Parameters
    ----------
    imerg_paths
        IMERG half-hourly files; empty for radar-only ingestion (the satellite is then ``None``).
    mrms_paths
        MRMS files of **one** product: 1-h accumulations (only top-of-hour files are used) or
        2-min ``PrecipRate`` (averaged to complete hours).
    box
        ``{lat_min, lat_max, lon_min, lon_max}`` in degrees.
    scheduler
        See the module docstring.
    on_error
        ``"raise"`` (default) or ``"skip"``: unreadable files are left out and listed in the report.
    step_minutes
        Sampling interval of ``PrecipRate`` files (minutes).

    Returns
    -------
    (satellite_hourly | None, radar_hourly, report)
        Canonical hourly datasets on the same hours, and a dict of counts (files read, hours kept,
        hours dropped as incomplete, files skipped, errors, seconds).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    start = time.perf_counter()
    product, radar_paths, n_off_hour = _select_mrms(mrms_paths)
    radar_tasks = _radar_tasks(product, radar_paths, dict(box), step_minutes, on_error)
    sat_tasks = [dask.delayed(_guarded)(read_imerg, p, dict(box), on_error) for p in imerg_paths]
    with dask_scheduler(scheduler) as sched:
        radar_parts, sat_parts = dask.compute(radar_tasks, sat_tasks, scheduler=sched)
    radar, n_rate_dropped, errors = _collect(radar_parts, "radar")
    sat, n_half_dropped = None, 0
    if imerg_paths:
        halfhours, _, sat_errors = _collect(sat_parts, "satellite")
        errors.update(sat_errors)
        sat, n_half_dropped = halfhours_to_hours(halfhours)
        sat, radar = intersect_times(sat, radar)
        validate_pair(sat, radar)
    else:
        validate(radar, "radar")
    report = {
        "imerg_files": len(imerg_paths), "mrms_files": len(radar_paths), "mrms_product": product,
        "mrms_files_off_the_hour": n_off_hour, "hours": int(radar.sizes["time"]),
        "hours_dropped_incomplete_halfhours": n_half_dropped, "hours_dropped_incomplete_rates": n_rate_dropped,
        "errors": errors, "seconds": round(time.perf_counter() - start, 3),
    }
    return sat, radar, report


def _select_mrms(paths: Sequence[str | Path]) -> tuple[str, list[Path], int]:
    """The single product of ``paths``, the files to read and how many off-the-hour files were set aside."""
    if not paths:
        raise ReaderError("ingest_day: no MRMS files given (the radar is the target; it cannot be empty)")
    named = [(Path(p), *parse_name(p)) for p in paths]
    products = sorted({product for _, product, _ in named})
    if len(products) > 1:
        raise ReaderError(f"ingest_day: MRMS files mix products {products} (e.g. {named[0][0]}); "
                          "ingest one product at a time")
    keep = [(t, p) for p, _, t in named if products[0] in RATE_PRODUCTS or (t.minute == 0 and t.second == 0)]
    return products[0], [p for _, p in sorted(keep)], len(named) - len(keep)


def _guarded(reader, path, box, on_error):
    """Run ``reader(path, box)``; with ``on_error="skip"`` return the ReaderError message instead."""
    try:
        return reader(path, box)
    except (ReaderError, FileNotFoundError) as exc:
        if on_error == "raise":
            raise
        log.warning("skipping %s", exc)
        return {"path": str(path), "error": str(exc)}


def _radar_tasks(product, paths, box, step_minutes, on_error) -> list:
    reads = {p: dask.delayed(_guarded)(read_mrms, p, box, on_error) for p in paths}
    if product not in RATE_PRODUCTS:
        return list(reads.values())
    by_hour: dict[pd.Timestamp, list] = defaultdict(list)
    for path, task in reads.items():
        by_hour[parse_name(path)[1].ceil("h")].append(task)  # sample at t counts toward the hour ending ceil(t)
    return [dask.delayed(_rates_hour)(by_hour[h], step_minutes) for h in sorted(by_hour)]


def _rates_hour(parts: list, step_minutes: int):
    """Average one hour of 2-min rates inside the graph (so 2-min fields never pile up)."""
    good = [p for p in parts if isinstance(p, xr.Dataset)]
    errors = [p for p in parts if not isinstance(p, xr.Dataset)]
    if not good:
        return {"dropped": 1, "errors": errors}
    hourly, dropped = rates_to_hours(_concat(good), step_minutes=step_minutes)
    return {"hourly": hourly, "dropped": dropped, "errors": errors}


def _collect(parts: list, kind: str) -> tuple[xr.Dataset, int, dict[str, str]]:
    """Concatenate read results, count dropped hours, gather skipped-file errors."""
    datasets, dropped, errors = [], 0, {}
    for part in parts:
        if isinstance(part, xr.Dataset):
            datasets.append(part)
            continue
        for err in ([part] if "path" in part else part.get("errors", [])):
            errors[err["path"]] = err["error"]
        dropped += part.get("dropped", 0)
        if part.get("hourly") is not None and part["hourly"].sizes["time"]:
            datasets.append(part["hourly"])
    if not datasets:
        raise ReaderError(f"ingest_day: no readable {kind} data ({len(errors)} files failed: {list(errors)[:3]})")
    return _concat(datasets), dropped, errors


def _concat(datasets: list[xr.Dataset]) -> xr.Dataset:
    out = xr.concat(datasets, dim="time", combine_attrs="override").sortby("time")
    out.attrs.pop("source_file", None)
    out.attrs["source_files"] = str(len(datasets))
    return out


def iter_days(
    imerg_paths: Sequence[str | Path],
    mrms_paths: Sequence[str | Path],
    box: Mapping[str, float],
    *,
    skip_days: Iterable[dt.date | str] = (),
    scheduler=None,
    on_error: str = "raise",
) -> Iterator[tuple[xr.Dataset | None, xr.Dataset, dict]]:
    """Yield ``(satellite_hourly | None, radar_hourly, report)`` for each UTC day, one at a time.

    Days come from :func:`group_by_day` of the MRMS files; with IMERG files, days lacking either
    source are skipped (logged). ``skip_days`` (dates or ``"YYYY-MM-DD"``) are not read, e.g. days
    already ingested. One scheduler (or ``distributed.Client``) serves all days; see
    :func:`ingest_day` for the rest.
    """
    radar_days = group_by_day(mrms_paths)
    sat_days = group_by_day(imerg_paths) if imerg_paths else {}
    skip = {d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in skip_days}
    with dask_scheduler(scheduler) as sched:
        for day, radar_files in radar_days.items():
            if day in skip:
                continue
            if imerg_paths and day not in sat_days:
                log.warning("iter_days: %s has MRMS files but no IMERG file; skipped", day)
                continue
            sat, radar, report = ingest_day(sat_days.get(day, []), radar_files, box, scheduler=sched,
                                            on_error=on_error)
            yield sat, radar, {"day": day.isoformat(), **report}



# ---- large domains: many boxes of one grid ---------------------------------------------------------
def ingest_day_boxes(
    imerg_paths: Sequence[str | Path],
    mrms_paths: Sequence[str | Path],
    boxes: Sequence[bx.Box],
    keep: Mapping[str, float],
    *,
    scheduler=None,
    on_error: str = "raise",
    step_minutes: int = 2,
) -> tuple[xr.Dataset | None, xr.Dataset | None, dict]:
    """:func:`ingest_day` over many ``boxes`` at once: the box-hours worth keeping, as stacks.

    Each radar hour is decoded once over the boxes' bounding box (one task per hour: a 1-h file, or
    the ``PrecipRate`` files of the hour summed one at a time, so no hour of 2-min fields is ever held
    whole), cut into the boxes, and only the box-hours passing ``keep``
    (:func:`~precipdiff.data.boxes.keep_hours`: ``min_coverage``, ``min_wet_fraction``,
    ``wet_threshold_mm_h``) are returned. IMERG half hours are read over the same bounding box,
    averaged to hours and cut to the kept box-hours. Memory: a few full-domain fields per worker,
    plus the kept box-hours of the day.

    Returns
    -------
    (satellite stack | None, radar stack | None, report)
        Stacks (:mod:`~precipdiff.data.boxes`) of the kept box-hours (``None`` when the day keeps
        none; no satellite without IMERG files) and counts (box-hours seen, kept, dropped …).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    started = time.perf_counter()
    product, radar_paths, n_off_hour = _select_mrms(mrms_paths)
    bbox = bx.bounding_box(boxes)
    if product in RATE_PRODUCTS:
        by_hour: dict[pd.Timestamp, list] = defaultdict(list)
        for path in radar_paths:
            by_hour[parse_name(path)[1].ceil("h")].append(path)  # sample at t counts toward the hour ending ceil(t)
        groups = [by_hour[h] for h in sorted(by_hour)]
    else:
        groups = [[p] for p in radar_paths]
    tasks = [dask.delayed(_radar_hour_boxes)(g, bbox, boxes, dict(keep), product, step_minutes, on_error)
             for g in groups]
    sat_tasks = [dask.delayed(_guarded)(read_imerg, p, bbox, on_error) for p in imerg_paths]
    with dask_scheduler(scheduler) as sched:
        hours, sat_parts = dask.compute(tasks, sat_tasks, scheduler=sched)
    radar, errors = _radar_stack(hours, boxes)
    sat, n_half_dropped = None, 0
    if imerg_paths and radar is not None:
        halfhours, _, sat_errors = _collect(sat_parts, "satellite")
        errors.update(sat_errors)
        hourly, n_half_dropped = halfhours_to_hours(halfhours)
        sat, radar = _satellite_stack(hourly, radar, boxes)
    report = {"imerg_files": len(imerg_paths), "mrms_files": len(radar_paths), "mrms_product": product,
              "mrms_files_off_the_hour": n_off_hour, "boxes": len(boxes),
              "box_hours_seen": int(sum(h.get("seen", 0) for h in hours)),
              "hours": 0 if radar is None else int(np.unique(radar["time"].values).size),
              "box_hours": 0 if radar is None else int(radar.sizes["sample"]),
              "hours_dropped_incomplete_rates": int(sum(h.get("dropped", 0) for h in hours)),
              "hours_dropped_incomplete_halfhours": n_half_dropped, "errors": errors,
              "seconds": round(time.perf_counter() - started, 3)}
    return sat, radar, report


def _radar_hour_boxes(paths, bbox, boxes, keep, product, step_minutes, on_error) -> dict:
    """One radar hour over ``bbox``, cut into ``boxes``: the kept box indices and their fields (mm/h)."""
    total, count, errors, when = None, 0, [], None
    for path in paths:  # one file (1-h QPE) or the 2-min rates of the hour, summed one at a time
        part = _guarded(read_mrms, path, bbox, on_error)
        if not isinstance(part, xr.Dataset):
            errors.append(part)
            continue
        values = part[VARIABLE].values[0]
        total = values.astype(np.float64) if total is None else total + values  # NaN in any step: NaN (align.py)
        count, grid = count + 1, (part["lat"].values, part["lon"].values)
        when = pd.Timestamp(part["time"].values[0]).ceil("h") if product in RATE_PRODUCTS else pd.Timestamp(
            part["time"].values[0])
    if product in RATE_PRODUCTS and count < 60 // step_minutes:
        return {"errors": errors, "dropped": 1 if paths else 0}
    if total is None:
        return {"errors": errors}
    fields = bx.cut((total / count).astype(np.float32)[None], *grid, boxes, "radar")[0]
    kept, _, _ = bx.keep_hours(fields, float(keep["min_coverage"]), float(keep["min_wet_fraction"]),
                               float(keep["wet_threshold_mm_h"]))
    idx = np.flatnonzero(kept)
    return {"time": when, "boxes": idx, "values": fields[idx].copy(), "seen": len(boxes), "errors": errors}


def _radar_stack(hours: list[dict], boxes: Sequence[bx.Box]) -> tuple[xr.Dataset | None, dict[str, str]]:
    errors = {e["path"]: e["error"] for h in hours for e in h.get("errors", [])}
    kept = [h for h in hours if "time" in h and len(h["boxes"])]
    if not any("time" in h for h in hours):
        raise ReaderError(f"ingest_day_boxes: no readable radar hour ({len(errors)} files failed: {list(errors)[:3]})")
    if not kept:
        return None, errors
    values = np.concatenate([h["values"] for h in kept])
    times = np.concatenate([[h["time"].to_datetime64()] * len(h["boxes"]) for h in kept])
    chosen = [boxes[i] for h in kept for i in h["boxes"]]
    return bx.make_stack(values, times, chosen, kind="radar", source="NOAA MRMS (box-hours kept by precipdiff)"), errors


def _satellite_stack(hourly: xr.Dataset, radar: xr.Dataset, boxes: Sequence[bx.Box]):
    """The satellite of the radar stack's box-hours (hours IMERG lacks are dropped from both)."""
    times = radar["time"].values
    have = np.isin(times, hourly["time"].values)
    radar = radar.isel(sample=np.flatnonzero(have))
    by_name = {b.name: b for b in boxes}
    chosen = [by_name[n] for n in radar["box"].values.astype(str)]
    fields = hourly[VARIABLE].sel(time=radar["time"].values).values  # (N, H, W) of the bounding box
    lat, lon = hourly["lat"].values, hourly["lon"].values
    values = np.stack([bx.cut(f[None], lat, lon, [b], "satellite")[0, 0] for f, b in zip(fields, chosen)])
    sat = bx.make_stack(values, radar["time"].values, chosen, kind="satellite",
                        source=hourly[VARIABLE].attrs.get("source", "NASA GPM IMERG"))
    bx.validate_stack_pair(sat, radar)
    return sat, radar
