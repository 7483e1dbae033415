"""Day partitions: one NetCDF per UTC day holding both grids, and the key that names it.

A day file keeps the canonical satellite under ``satellite`` (dims ``time, lat_satellite,
lon_satellite``) and the radar under ``radar`` (``time, lat, lon``); :func:`unpack` gives the two
canonical datasets back. A day of a large domain holds stacks of box-hours the same way (satellite
dims ``sample, y_satellite, x_satellite``, :mod:`precipdiff.data.boxes`); a day that kept no box-hour
is an empty dataset (:func:`empty`), skipped by :func:`assemble`. Keys are ``<fingerprint>/<YYYY-MM-DD>``: the fingerprint hashes every
parameter that shapes the data, so changing the box or an error knob never reuses stale days.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import boxes as bx
from precipdiff.data import contract
from precipdiff.data.contract import VARIABLE

_SAT_DIMS = {"lat": "lat_satellite", "lon": "lon_satellite"}
_SAT_STACK = {"y": "y_satellite", "x": "x_satellite", "lat": "lat_satellite", "lon": "lon_satellite"}


def fingerprint(values: dict) -> str:
    """Short stable hash of a JSON-serialisable dict."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def key(fp: str, day) -> str:
    return f"{fp}/{pd.Timestamp(day).date().isoformat()}"


def day_of(times: np.ndarray) -> np.ndarray:
    """UTC day of each end-of-hour label: the hour ending 00:00 belongs to the previous day."""
    return (pd.to_datetime(times) - pd.Timedelta(hours=1)).normalize().values


def pack(satellite: xr.Dataset, radar: xr.Dataset) -> xr.Dataset:
    """Both canonical datasets (or both stacks) of one day in one dataset (satellite on renamed dims)."""
    sat = satellite.rename({**(_SAT_STACK if bx.is_stack(satellite) else _SAT_DIMS), VARIABLE: "satellite"})
    out = sat.assign(radar=radar[VARIABLE])
    if bx.is_stack(radar):
        out = out.assign_coords(lat=radar["lat"], lon=radar["lon"])
    out.attrs = {"Conventions": "CF-1.8", "title": "precipdiff ingested day (satellite and radar)"}
    return out


def empty() -> xr.Dataset:
    """The partition of a day that kept no box-hour (a large domain on a dry day)."""
    return xr.Dataset(attrs={"Conventions": "CF-1.8", "title": "precipdiff ingested day: no box-hour kept"})


def unpack(day: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """The canonical ``(satellite, radar)`` (or stacks) of a packed day."""
    if "sample" in day.dims:
        sat = day[["satellite"]].drop_vars(["lat", "lon"], errors="ignore").rename(
            {"satellite": VARIABLE, **{v: k for k, v in _SAT_STACK.items()}})
        radar = day[["radar"]].drop_vars(["lat_satellite", "lon_satellite"], errors="ignore").rename({"radar": VARIABLE})
        return bx.add_coord_attrs(sat), bx.add_coord_attrs(radar)
    sat = day[["satellite"]].rename({"satellite": VARIABLE, **{v: k for k, v in _SAT_DIMS.items()}})
    radar = day[["radar"]].rename({"radar": VARIABLE})
    return sat.drop_vars(["lat_satellite", "lon_satellite"], errors="ignore"), radar


def split_days(satellite: xr.Dataset, radar: xr.Dataset, fp: str) -> dict[str, xr.Dataset]:
    """``{key: packed day}`` for every UTC day of a pair of canonical datasets."""
    days = day_of(satellite["time"].values)
    out = {}
    for day in np.unique(days):
        sel = days == day
        out[key(fp, day)] = pack(satellite.isel(time=sel), radar.isel(time=sel))
    return out


def assemble(days: dict, fp: str) -> tuple[xr.Dataset, xr.Dataset]:
    """Concatenate the partitions of fingerprint ``fp`` in time order into canonical datasets."""
    keys = sorted(k for k in days if k.startswith(f"{fp}/"))
    if not keys:
        raise ValueError(f"ingestion: no ingested day matches the current parameters (fingerprint {fp})")
    loaded = [days[k]() if callable(days[k]) else days[k] for k in keys]
    parts = [unpack(d) for d in loaded if d.data_vars]
    if not parts:
        raise ValueError(f"ingestion: the {len(keys)} ingested day(s) of fingerprint {fp} kept no box-hour "
                         "(ingestion.domain.keep)")
    if bx.is_stack(parts[0][1]):
        sat, radar = bx.concat([p[0] for p in parts]), bx.concat([p[1] for p in parts])
        bx.validate_stack_pair(sat, radar)
        return sat, radar
    sat = xr.concat([p[0] for p in parts], dim="time")
    radar = xr.concat([p[1] for p in parts], dim="time")
    for ds in (sat, radar):
        contract.add_coord_attrs(ds)
    contract.validate_pair(sat, radar)
    return sat, radar
