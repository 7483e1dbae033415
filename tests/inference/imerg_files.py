"""A minimal IMERG V07 HDF5 writer (GES DISC layout) for the inference tests.

IMERG V07 technical documentation / GES DISC file specification: group ``Grid``, ``precipitation``
(time, lon, lat) float32 in mm/hr with ``_FillValue`` -9999.9, ``Grid/time`` in seconds since
1980-01-06 (the half-hour start), ``lat``/``lon`` the 0.1° cell centres. Regional grids keep the
files small; the reader takes any grid that covers the box.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

FILL = np.float32(-9999.9)
EPOCH = pd.Timestamp("1980-01-06")


def imerg_name(start: pd.Timestamp) -> str:
    """``3B-HHR.MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS.MMMM.V07B.HDF5`` (Final run)."""
    end = start + pd.Timedelta(minutes=29, seconds=59)
    return f"3B-HHR.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{start.hour * 60 + start.minute:04d}.V07B.HDF5"


def write_imerg_v07(folder: Path, start, lat: np.ndarray, lon: np.ndarray, rate_mm_h: np.ndarray) -> Path:
    """One half-hour file starting at ``start``; ``rate_mm_h`` is ``(lat, lon)``, NaN written as the fill value."""
    start = pd.Timestamp(start)
    path = Path(folder) / imerg_name(start)
    values = np.where(np.isfinite(rate_mm_h), rate_mm_h, FILL).astype(np.float32).T[None]  # (time, lon, lat)
    with h5py.File(path, "w") as h5:
        grid = h5.create_group("Grid")
        time = grid.create_dataset("time", data=np.array([(start - EPOCH).total_seconds()], np.int32))
        time.attrs["units"] = np.bytes_("seconds since 1980-01-06 00:00:00 UTC")
        for name, axis, units in (("lon", lon, "degrees_east"), ("lat", lat, "degrees_north")):
            coord = grid.create_dataset(name, data=np.asarray(axis, np.float32))
            coord.attrs["units"] = np.bytes_(units)
        var = grid.create_dataset("precipitation", data=values, fillvalue=FILL, compression="gzip")
        var.attrs["DimensionNames"] = np.bytes_("time,lon,lat")
        var.attrs["units"] = np.bytes_("mm/hr")
        var.attrs["_FillValue"] = FILL
    return path


def write_hours(folder: Path, hours, lat: np.ndarray, lon: np.ndarray, hourly_mm_h: np.ndarray) -> list[Path]:
    """Two half-hour files per hour ``H`` (starting ``H − 60`` and ``H − 30`` min) whose mean is the
    hourly field: the first half hour gets ``0.5 ×`` and the second ``1.5 ×`` the rate."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for hour, field in zip(pd.DatetimeIndex(hours), hourly_mm_h):
        paths.append(write_imerg_v07(folder, hour - pd.Timedelta(minutes=60), lat, lon, 0.5 * field))
        paths.append(write_imerg_v07(folder, hour - pd.Timedelta(minutes=30), lat, lon, 1.5 * field))
    return paths
