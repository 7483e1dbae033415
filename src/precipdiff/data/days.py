"""Day partitions: one NetCDF per UTC day holding both grids, and the key that names it.

A day file keeps the canonical satellite under ``satellite`` (dims ``time, lat_satellite,
lon_satellite``) and the radar under ``radar`` (``time, lat, lon``); :func:`unpack` gives the two
canonical datasets back. Keys are ``<fingerprint>/<YYYY-MM-DD>``: the fingerprint hashes every
parameter that shapes the data, so changing the box or an error knob never reuses stale days.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import contract
from precipdiff.data.contract import VARIABLE

_SAT_DIMS = {"lat": "lat_satellite", "lon": "lon_satellite"}


def fingerprint(values: dict) -> str:
    """Short stable hash of a JSON-serialisable dict."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def key(fp: str, day) -> str:
    return f"{fp}/{pd.Timestamp(day).date().isoformat()}"


def day_of(times: np.ndarray) -> np.ndarray:
    """UTC day of each end-of-hour label: the hour ending 00:00 belongs to the previous day."""
    return (pd.to_datetime(times) - pd.Timedelta(hours=1)).normalize().values


def pack(satellite: xr.Dataset, radar: xr.Dataset) -> xr.Dataset:
    """Both canonical datasets of one day in one dataset (satellite on renamed dims)."""
    sat = satellite.rename({**_SAT_DIMS, VARIABLE: "satellite"})
    out = sat.assign(radar=radar[VARIABLE])
    out.attrs = {"Conventions": "CF-1.8", "title": "precipdiff ingested day (satellite and radar)"}
    return out


def unpack(day: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """The canonical ``(satellite, radar)`` of a packed day."""
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
    parts = [unpack(days[k]() if callable(days[k]) else days[k]) for k in keys]
    sat = xr.concat([p[0] for p in parts], dim="time")
    radar = xr.concat([p[1] for p in parts], dim="time")
    for ds in (sat, radar):
        contract.add_coord_attrs(ds)
    contract.validate_pair(sat, radar)
    return sat, radar
