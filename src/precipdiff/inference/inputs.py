"""The satellite input of an inference run: IMERG files or a canonical satellite NetCDF, as hourly fields.

Accepted inputs (:func:`find_inputs`): a directory (searched recursively), files, or a mix of both.

* **IMERG** half-hourly files in any layout :func:`~precipdiff.data.imerg.read_imerg` reads (V07/V06
  ``.HDF5``, ``.RT-H5``, GES DISC netCDF4 subsets, old 2-D files): only the box is read; files whose
  name puts them outside the requested hours are not opened. Half hours become hours with
  :func:`~precipdiff.data.align.halfhours_to_hours` (hour ``H`` = mean of the half hours ending
  ``H − 30 min`` and ``H``; an hour missing one of them is dropped and reported).
* **Canonical satellite NetCDF** (``docs/data_contract.md``: ``precipitation (time, lat, lon)`` on
  the 0.1° grid, mm/h), e.g. ``data/01_raw/satellite.nc``; half-hourly ones are averaged to hours too.

:func:`read_satellite` returns the canonical hourly dataset on the box and period, with quality
control (implausible rates → NaN) and a report; :func:`check_hours` refuses all-missing hours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from precipdiff.data.align import HALF_HOUR, halfhours_to_hours
from precipdiff.data.contract import VARIABLE, ContractError, grid_for_box, snap_box, validate
from precipdiff.data.errors import ReaderError
from precipdiff.data.files import end_time
from precipdiff.data.imerg import read_imerg

log = logging.getLogger(__name__)
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
IMERG_MARK = "3IMERG"  # every IMERG product name holds it (3B-HHR[-E|-L].MS.MRG.3IMERG.…)


class InputError(ValueError):
    """The inference input cannot be used; the message names the files, hours or parameter."""


def find_inputs(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by ``spec``: files as given, directories searched recursively; sorted, unique."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not items:
        raise InputError("inference.input: no input given (a directory, IMERG files or a satellite NetCDF)")
    found: set[Path] = set()
    for item in map(Path, items):
        if item.is_dir():
            files = [p for p in item.rglob("*") if p.is_file() and not p.name.startswith(".")]
            if not files:
                raise InputError(f"inference.input: directory {item} holds no file; expected IMERG files or a "
                                 "satellite NetCDF in it")
            found.update(files)
        elif item.is_file():
            found.add(item)
        else:
            raise InputError(f"inference.input: {item} does not exist; expected a directory, IMERG files or a "
                             "satellite NetCDF")
    return sorted(found)


def is_canonical_netcdf(path: Path) -> bool:
    """A NetCDF with ``precipitation (time, lat, lon)`` (IMERG names and layouts are excluded)."""
    if IMERG_MARK in path.name or path.suffix.lower() not in NETCDF_SUFFIXES:
        return False
    try:
        with xr.open_dataset(path) as ds:
            return VARIABLE in ds and ds[VARIABLE].dims == ("time", "lat", "lon")
    except (OSError, ValueError):
        return False


def read_satellite(paths: Sequence[Path], box: Mapping[str, float] | None = None, start=None, end=None,
                   max_rate_mm_h: float | None = 300.0, progress: bool = True) -> tuple[xr.Dataset, dict]:
    """Hourly canonical satellite data (mm/h) on the snapped ``box`` for hours ``start … end`` (inclusive).

    ``box`` may be omitted for canonical NetCDF input (its whole extent); IMERG files are global
    so they need one. ``start``/``end`` are end-of-hour labels (UTC), ``None`` = open-ended.
    Rates above ``max_rate_mm_h`` become NaN (as in preprocessing QC) and are counted.

    Returns ``(satellite, report)``; the report counts files, hours, dropped hours and QC'd cells.
    """
    start = None if start is None else pd.Timestamp(start)
    end = None if end is None else pd.Timestamp(end)
    if start is not None and end is not None and end < start:
        raise InputError(f"inference: end {end} is before start {start}")
    canonical = [p for p in paths if is_canonical_netcdf(p)]
    imerg = [p for p in paths if p not in set(canonical)]
    if canonical and imerg:
        raise InputError(f"inference.input mixes canonical NetCDF ({canonical[0]}) and IMERG files "
                         f"({imerg[0]}); give one kind")
    if imerg:
        if box is None:
            raise InputError("inference.box is required with IMERG files (they are global): "
                             "lat_min,lat_max,lon_min,lon_max in degrees")
        halfhours, report = _read_imerg(imerg, box, start, end, progress)
    else:
        halfhours, report = _read_canonical(canonical, box), {"files": len(canonical), "kind": "canonical NetCDF"}
    hourly, report["hours_dropped_incomplete"] = _to_hours(halfhours, half_hourly=bool(imerg))
    hourly = hourly.sel(time=slice(start, end))
    incomplete = incomplete_hours(pd.DatetimeIndex(halfhours["time"].values), report.pop("half_hour_files", {}),
                                  start, end, half_hourly=bool(imerg))
    if hourly.sizes["time"] == 0:
        raise _no_complete_hour(start, end, report["files"], _period(halfhours), incomplete)
    if incomplete:
        log.warning("inference input: %d hour(s) skipped, a half hour is missing: %s", len(incomplete),
                    "; ".join(incomplete[:5]))
    hourly, report["qc_cells_above_max_rate"] = _qc(hourly, max_rate_mm_h)
    report["hours"] = int(hourly.sizes["time"])
    report["missing_hours"] = [str(h) for h in _missing_hours(hourly, start, end)]
    return validate(hourly, "satellite", name="inference input"), report


def _read_imerg(paths: Sequence[Path], box, start, end, progress: bool) -> tuple[xr.Dataset, dict]:
    """Read the box of the IMERG files whose half hour can count toward ``start … end``."""
    wanted = [p for p in paths if _may_contribute(p, start, end)]
    if not wanted:
        raise InputError(f"inference.input: none of the {len(paths)} IMERG files falls in "
                         f"{start} … {end} (by their names)")
    parts = [read_imerg(p, box) for p in tqdm(wanted, desc="reading IMERG", unit="file", disable=not progress)]
    ds = xr.concat(parts, dim="time", combine_attrs="drop_conflicts").sortby("time")
    times = pd.DatetimeIndex(ds["time"].values)
    if times.has_duplicates:
        dup = times[times.duplicated()][0]
        names = [p.name for p, part in zip(wanted, parts) if dup in pd.DatetimeIndex(part["time"].values)]
        raise InputError(f"inference.input: several files hold the half hour ending {dup}: {names} "
                         "(e.g. Early and Final runs mixed); keep one run")
    ds.attrs["source_files"] = str(len(wanted))
    names = {t: p.name for p, part in zip(wanted, parts) for t in pd.DatetimeIndex(part["time"].values)}
    return ds, {"files": len(wanted), "files_skipped_by_name": len(paths) - len(wanted), "kind": "IMERG",
                "half_hour_files": names}


HOUR_LABELS = ("An hour is labelled by its end (UTC): the hour ending HH+1:00 is the mean of the two IMERG half "
               "hours starting HH:00 and HH:30.")


def incomplete_hours(times: pd.DatetimeIndex, files: Mapping[pd.Timestamp, str], start=None, end=None,
                     half_hourly: bool = True) -> list[str]:
    """One sentence per hour in ``start … end`` that has one of its two half hours but not the other:
    the hour, the half hour found (and its file, from ``files``: half-hour end → file name) and the
    one missing. Hourly input (not ``half_hourly`` and every time on :00) gives none."""
    if not half_hourly and not ((times.minute != 0) | (times.second != 0)).any():
        return []  # hourly NetCDF input
    present, out = set(times), []
    for hour in times.ceil("h").unique().sort_values():
        if (start is not None and hour < start) or (end is not None and hour > end):
            continue
        halves = [hour - HALF_HOUR, hour]  # the half hours ending H − 30 min and H, i.e. starting H − 1 h and H − 30 min
        if all(h in present for h in halves):
            continue
        found = [f"{h - HALF_HOUR:%Y-%m-%dT%H:%M} ({files.get(h, 'in the input')})" for h in halves if h in present]
        missing = [f"{h - HALF_HOUR:%Y-%m-%dT%H:%M}" for h in halves if h not in present]
        out.append(f"the hour ending {hour:%Y-%m-%dT%H:%M} needs the half hours starting "
                   f"{halves[0] - HALF_HOUR:%H:%M} and {halves[1] - HALF_HOUR:%H:%M}: found the one starting "
                   f"{', '.join(found)}, no file for the one starting {', '.join(missing)}")
    return out


def check_complete_hours(paths: Sequence[Path], start=None, end=None) -> pd.DatetimeIndex | None:
    """The complete hours in ``start … end`` the input promises, without reading any field (IMERG:
    from the file names; canonical NetCDF: from the time axis); ``None`` if a name tells no time.

    Hour ``H`` is complete with the half hours ending ``H − 30 min`` and ``H`` (as :func:`read_satellite`;
    IMERG files are always half hours). Raises :class:`InputError` (as :func:`read_satellite` would,
    later) when there is none, naming the incomplete hours, their two half hours and the files found.
    """
    start = None if start is None else pd.Timestamp(start)
    end = None if end is None else pd.Timestamp(end)
    canonical = [p for p in paths if is_canonical_netcdf(p)]
    try:
        named = {end_time(p): p.name for p in paths if p not in set(canonical)}
    except ReaderError:
        return None
    ends = list(named)
    for path in canonical:
        with xr.open_dataset(path) as ds:
            ends += list(pd.DatetimeIndex(ds["time"].values))
    times = pd.DatetimeIndex(sorted(set(ends)))
    on_hour = (times.minute == 0) & (times.second == 0)
    half_hourly = bool(named) or bool((~on_hour).any())
    hourly = times[on_hour & times.isin(times + HALF_HOUR)] if half_hourly else times
    keep = np.ones(len(hourly), bool)
    if start is not None:
        keep &= hourly >= start
    if end is not None:
        keep &= hourly <= end
    hours = hourly[keep]
    if len(hours) == 0:
        period = "no time at all" if times.empty else f"{times.min()} … {times.max()}"
        raise _no_complete_hour(start, end, len(paths), period,
                                incomplete_hours(times, named, start, end, half_hourly=half_hourly))
    return hours


def _no_complete_hour(start, end, files: int, period: str, incomplete: Sequence[str] = ()) -> InputError:
    """The error of an input with no complete hour: the period, how hours are labelled, and each
    incomplete hour with the two half hours it needs and the file found."""
    asked = "the input" if start is None and end is None else f"{start or 'the start'} … {end or 'the end'}"
    detail = "; ".join(incomplete) or "no half hour of the input falls in that period"
    return InputError(f"inference: no complete hour in {asked} ({files} file(s), data ending {period}). "
                      f"{HOUR_LABELS} {detail[0].upper()}{detail[1:]}.")


def _may_contribute(path: Path, start, end) -> bool:
    """Whether the half hour of ``path`` (from its name) counts toward an hour in ``start … end``."""
    try:
        t_end = end_time(path)  # end of the half hour
    except ReaderError:
        return True  # no time in the name: read it to find out
    return (start is None or t_end >= start - HALF_HOUR) and (end is None or t_end <= end)


def _read_canonical(paths: Sequence[Path], box) -> xr.Dataset:
    parts = []
    for path in paths:
        with xr.open_dataset(path) as ds:
            try:
                part = validate(ds.load(), "satellite", name=str(path))
            except ContractError as exc:
                raise InputError(f"inference.input: {exc}") from exc
        if box is not None:
            lat, lon = grid_for_box(box, "satellite")
            missing = [f"{n} {v[0] - 0.05:.2f}..{v[-1] + 0.05:.2f}" for n, v in (("lat", lat), ("lon", lon))
                       if not np.isin(np.round(v, 6), np.round(part[n].values, 6)).all()]
            if missing:
                raise InputError(f"{path}: box {dict(snap_box(box))} is not inside the file's grid "
                                 f"(lat {part.lat.values[0]:.2f}..{part.lat.values[-1]:.2f}, lon "
                                 f"{part.lon.values[0]:.2f}..{part.lon.values[-1]:.2f}); missing {missing}")
            part = part.sel(lat=lat, lon=lon, method="nearest")
        parts.append(part)
    return parts[0] if len(parts) == 1 else xr.concat(parts, dim="time").sortby("time")


def _to_hours(ds: xr.Dataset, half_hourly: bool = False) -> tuple[xr.Dataset, int]:
    """Half-hourly data (IMERG files always; a NetCDF with any time on :30) → hours with
    :func:`halfhours_to_hours`; hourly unchanged. (An IMERG half hour ending on :00 alone is half an hour.)"""
    times = pd.DatetimeIndex(ds["time"].values)
    if half_hourly or (times.minute != 0).any() or (times.second != 0).any():
        return halfhours_to_hours(ds)
    return ds, 0


def _qc(ds: xr.Dataset, max_rate_mm_h: float | None) -> tuple[xr.Dataset, int]:
    if max_rate_mm_h is None:
        return ds, 0
    values = ds[VARIABLE].values
    bad = values > max_rate_mm_h
    if bad.any():
        log.warning("inference input: %d cells above %.0f mm/h set to NaN", int(bad.sum()), max_rate_mm_h)
        ds = ds.copy(data={VARIABLE: np.where(bad, np.float32(np.nan), values)})
    return ds, int(bad.sum())


def _missing_hours(ds: xr.Dataset, start, end) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(ds["time"].values)
    expected = pd.date_range(start if start is not None else times[0], end if end is not None else times[-1], freq="h")
    return expected.difference(times)


def _period(ds: xr.Dataset) -> str:
    times = ds["time"].values
    return "no time at all" if times.size == 0 else f"{pd.Timestamp(times.min())} … {pd.Timestamp(times.max())}"


def check_hours(ds: xr.Dataset, name: str = "inference input") -> None:
    """Raise :class:`InputError` naming every hour whose field is missing (NaN) everywhere."""
    empty = np.isnan(ds[VARIABLE].values).all(axis=(1, 2))
    if empty.any():
        hours = [str(pd.Timestamp(t)) for t in ds["time"].values[empty]]
        raise InputError(f"{name}: {len(hours)} hour(s) have no valid satellite value in the box: "
                         f"{hours[:20]}{' …' if len(hours) > 20 else ''}; drop them with --start/--end or "
                         "check the files")
