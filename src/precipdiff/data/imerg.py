"""Read GPM IMERG half-hourly precipitation into the canonical *satellite* contract.

:func:`read_imerg` reads only the requested box (h5py hyperslab), whatever the layout; the layout is
recognised from the file's own metadata (group, variable, ``DimensionNames`` / dimension scales,
time ``units``), never assumed from the file name:

==========================  ===============================  ================  =========================
layout                      variable                         dimensions        time of the half hour
==========================  ===============================  ================  =========================
V07 ``.HDF5`` / ``.RT-H5``  ``Grid/precipitation``           (time, lon, lat)  ``Grid/time`` + its units
V06 ``.HDF5`` / ``.RT-H5``  ``Grid/precipitationCal``        (time, lon, lat)  ``Grid/time`` + its units
V03–V05 (no time axis)      ``Grid/precipitationCal``        (lon, lat)        ``FileHeader`` attribute
GES DISC netCDF4 subset     ``/precipitation[Cal]`` at root  (time, lon, lat)  ``/time`` + its units
==========================  ===============================  ================  =========================

Conventions (see ``docs/readers.md``):

* rates are mm/h (the files say ``mm/hr``; anything else is an error);
* ``time`` is the **end** of the half hour (start + 30 min), matching the contract's end-of-interval
  labels; the start comes from ``Grid/time`` ("Representative time", the half-hour start, in the
  epoch given by its ``units``: 1980-01-06 for V07, 1970-01-01 for V06) or, without a time
  variable, from ``FileHeader`` ``StartGranuleDateTime`` and then the file name;
* the file name's half hour (``…YYYYMMDD-SHHMMSS-EHHMMSS…``, :func:`name_start`) must be the one the
  content holds: a file whose name and content disagree is refused, because files are *selected* by
  name (:func:`precipdiff.data.files.end_time`: ingestion days, ``precipdiff downscale`` hours) and
  *dated* by content — one rule, both must agree;
* ``_FillValue`` / ``CodeMissingValue`` (-9999.9) and any negative value become NaN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data.contract import GRID_TOLERANCE, RESOLUTION, grid_for_box, make_dataset
from precipdiff.data.errors import guarded_reader, reader_error

# IMERG V07 tech doc / GES DISC file spec: Grid/precipitation (V07) replaced Grid/precipitationCal (<= V06)
VARIABLES = ("precipitation", "precipitationCal")
GROUPS = ("Grid", "/")  # PPS/GES DISC HDF5 put the grid in /Grid; GES DISC netCDF4 subsets are flat
RATE_UNITS = ("mm/hr", "mm/h", "mm h-1", "mm hr-1")
HALF_HOUR = np.timedelta64(30, "m")
_NAME_TIME = re.compile(r"(\d{8})-S(\d{6})-E(\d{6})")
_RUNS = {"3B-HHR-E": "Early", "3B-HHR-L": "Late", "3B-HHR": "Final"}


@guarded_reader
def read_imerg(path: str | Path, box: Mapping[str, float], variable: str | None = None) -> xr.Dataset:
    """Read the box of one IMERG half-hourly file as canonical satellite data.

    Parameters
    ----------
    path
        IMERG file (``3B-HHR[-E|-L].MS.MRG.3IMERG.*.HDF5``, ``.RT-H5`` or a GES DISC netCDF4 subset).
    box
        ``{lat_min, lat_max, lon_min, lon_max}`` in degrees (lon east in [-180, 180)); snapped inward
        to the 0.1° grid by :func:`~precipdiff.data.contract.grid_for_box`.
    variable
        Force a variable name; by default ``precipitation`` (V07) then ``precipitationCal`` (<= V06).

    Returns
    -------
    xarray.Dataset
        ``precipitation`` (time, lat, lon), float32, mm/h, one step per half hour in the file,
        ``time`` = end of the half hour (UTC).

    Raises
    ------
    ReaderError
        The file is not HDF5, has no precipitation variable, has other units or times than
        expected, or does not cover the box; the message names the file.
    """
    path = Path(path)
    lat, lon = grid_for_box(box, "satellite")
    with _open(path) as h5:
        var = find_precipitation(h5, path, variable)
        _check_units(var, path)
        dims = dimension_names(var, path)
        lat_idx = axis_indices(coordinate(var, dims, "lat", path)[...], lat, "lat", path)
        lon_idx = axis_indices(_wrap_lon(coordinate(var, dims, "lon", path)[...]), lon, "lon", path)
        values = to_rate(read_box(var, dims, lat_idx, lon_idx), var)
        ends = half_hour_ends(h5, var, dims, path)
        name = h5_var_name(var)
    order = np.argsort(ends)
    return make_dataset(values[order], ends[order], lat, lon, kind="satellite", source=_source(path, name),
                        long_name="satellite precipitation rate (half-hour mean)",
                        attrs={"source_file": path.name, "imerg_variable": name,
                               "time_convention": "time = end of the half hour (start + 30 min), UTC"})


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such IMERG file")
    if not h5py.is_hdf5(path):
        raise reader_error(path, "not an HDF5/netCDF4 file (IMERG comes as HDF5 .HDF5/.RT-H5 or netCDF4 .nc4)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise reader_error(path, f"cannot open as HDF5 ({exc})") from exc


def find_precipitation(h5: h5py.File, path: Path, variable: str | None = None) -> h5py.Dataset:
    """The precipitation dataset: ``Grid/<name>`` or ``/<name>`` for the first name found."""
    names = (variable,) if variable else VARIABLES
    for group in GROUPS:
        for name in names:
            obj = h5.get(f"{group.rstrip('/')}/{name}")
            if isinstance(obj, h5py.Dataset):
                return obj
    found: list[str] = []
    h5.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    raise reader_error(path, f"no precipitation variable {list(names)} in groups {list(GROUPS)}; "
                             f"datasets found: {found[:30]}")


def h5_var_name(var: h5py.Dataset) -> str:
    """Full HDF5 path of a dataset without the leading slash (``Grid/precipitation``)."""
    return var.name.lstrip("/")


def _attr(obj: h5py.HLObject, *names: str):
    """First attribute found among ``names``; byte strings decoded, 1-element arrays unwrapped."""
    for name in names:
        if name in obj.attrs:
            value = obj.attrs[name]
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(-1)[0]
            return value.decode("utf-8", "replace") if isinstance(value, bytes | np.bytes_) else value
    return None


def _check_units(var: h5py.Dataset, path: Path) -> None:
    units = _attr(var, "units", "Units")  # IMERG carries both spellings
    if units is None or str(units).strip() not in RATE_UNITS:
        raise reader_error(path, f"{h5_var_name(var)} has units {units!r}; expected a rate in mm/hr")


def dimension_names(var: h5py.Dataset, path: Path) -> tuple[str, ...]:
    """Canonical dimension names (``time``/``lat``/``lon``) of ``var``, in storage order.

    From the IMERG ``DimensionNames`` attribute (``"time,lon,lat"``, ``"nlon,nlat"``), else from the
    attached netCDF-4 dimension scales.
    """
    listed = _attr(var, "DimensionNames")
    if listed:
        raw = [part.strip() for part in str(listed).split(",")]
    else:
        raw = [_scale_name(var, i) for i in range(var.ndim)]
    canon = tuple(_canonical(name) for name in raw)
    if len(canon) != var.ndim or {"lat", "lon"} - set(canon) or len(set(canon)) != len(canon) or None in canon:
        raise reader_error(path, f"{h5_var_name(var)} has dimensions {raw} (shape {var.shape}); "
                                 "expected lon and lat, optionally time")
    if listed:
        _check_order(var, canon, str(listed), path)
    return canon


def _check_order(var: h5py.Dataset, canon: tuple[str, ...], listed: str, path: Path) -> None:
    """Refuse a ``DimensionNames`` whose order is not that of the axes (dimension scales, else lengths)."""
    held = tuple(_axis_holds(var, axis) for axis in range(var.ndim))
    if any(h is not None and h != c for h, c in zip(held, canon, strict=True)):
        shown = ", ".join(h or "?" for h in held)
        raise reader_error(path, f"{h5_var_name(var)}: DimensionNames {listed!r} is in the wrong dimension order: "
                                 f"the axes of shape {var.shape} hold ({shown}) by their dimension scales / "
                                 "coordinate lengths (IMERG stores (time, lon, lat)); fix the attribute or the file")


def _axis_holds(var: h5py.Dataset, axis: int) -> str | None:
    """The dimension an axis holds: its attached dimension scale, else the only sibling of its length."""
    scales = list(var.dims[axis].values())
    if scales:
        return _canonical(Path(scales[0].name).name)
    same = [name for name in ("time", "lat", "lon") if isinstance(var.parent.get(name), h5py.Dataset)
            and var.parent[name].shape == (var.shape[axis],)]
    return same[0] if len(same) == 1 else None


def _scale_name(var: h5py.Dataset, axis: int) -> str:
    scales = list(var.dims[axis].values())
    return Path(scales[0].name).name if scales else var.dims[axis].label


def _canonical(name: str) -> str | None:
    lowered = name.lower()
    for canon in ("time", "lat", "lon"):
        if canon in lowered:
            return canon
    return None


def coordinate(var: h5py.Dataset, dims: tuple[str, ...], name: str, path: Path) -> h5py.Dataset:
    """The 1-D coordinate of dimension ``name``: the attached dimension scale, else a sibling dataset."""
    axis = dims.index(name)
    scales = list(var.dims[axis].values())
    if scales and scales[0].ndim == 1 and scales[0].shape[0] == var.shape[axis]:
        return scales[0]
    for candidate in (name, f"n{name}"):
        obj = var.parent.get(candidate)
        if isinstance(obj, h5py.Dataset) and obj.shape == (var.shape[axis],):
            return obj
    raise reader_error(path, f"no 1-D {name!r} coordinate of length {var.shape[axis]} next to {h5_var_name(var)}")


def _wrap_lon(lon: np.ndarray) -> np.ndarray:
    return (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0


def axis_indices(coord: np.ndarray, target: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Index into ``coord`` of every target cell centre: the nearest file centre, which must lie
    within :data:`~precipdiff.data.contract.GRID_TOLERANCE` of a 0.1° cell (any order, any origin)."""
    coord = np.asarray(coord, dtype=np.float64).reshape(-1)
    cell = RESOLUTION["satellite"]
    if coord.size == 0 or not np.isfinite(coord).all():
        raise reader_error(path, f"{name} coordinate has {coord.size} values, {int((~np.isfinite(coord)).sum())} "
                                 "of them not finite; expected finite cell centres")
    if target[0] < coord.min() - cell / 2 or target[-1] > coord.max() + cell / 2:
        raise reader_error(path, f"box {name} {target[0] - cell / 2:.2f}..{target[-1] + cell / 2:.2f} is not inside "
                                 f"the file's {name} grid (centres {coord.min():.2f}..{coord.max():.2f})")
    order = np.argsort(coord)
    pos = np.clip(np.searchsorted(coord[order], target), 1, max(coord.size - 1, 1))
    left, right = order[pos - 1], order[np.minimum(pos, coord.size - 1)]
    idx = np.where(np.abs(coord[left] - target) <= np.abs(coord[right] - target), left, right)
    worst = float(np.abs(coord[idx] - target).max())
    if worst > GRID_TOLERANCE * cell:
        raise reader_error(path, f"{name} cell centres of the box are {worst:.5f}° ({100 * worst / cell:.1f} % of a "
                                 f"cell) off the file's {name} centres; expected the 0.1° grid within "
                                 f"{GRID_TOLERANCE:.0%} of a cell")
    return idx


def read_box(var: h5py.Dataset, dims: tuple[str, ...], lat_idx: np.ndarray, lon_idx: np.ndarray) -> np.ndarray:
    """Read the hyperslab covering the box and return it as (time, lat, lon) in target order."""
    index = {"lat": lat_idx, "lon": lon_idx}
    slab = var[tuple(slice(None) if d == "time" else slice(index[d].min(), index[d].max() + 1) for d in dims)]
    if "time" not in dims:  # old 2-D files hold a single half hour
        slab, dims = slab[np.newaxis], ("time", *dims)
    slab = np.transpose(slab, [dims.index(d) for d in ("time", "lat", "lon")])
    return slab[:, lat_idx - lat_idx.min()][:, :, lon_idx - lon_idx.min()]


def to_rate(raw: np.ndarray, var: h5py.Dataset) -> np.ndarray:
    """float32 mm/h with ``_FillValue``/``CodeMissingValue``/``missing_value`` and negatives as NaN."""
    values = raw.astype(np.float32)
    scale, offset = _attr(var, "scale_factor"), _attr(var, "add_offset")  # CF packing (subsets only)
    fills = [_as_float(_attr(var, key)) for key in ("_FillValue", "CodeMissingValue", "missing_value")]
    bad = np.zeros(values.shape, dtype=bool)
    for fill in (f for f in fills if f is not None):
        bad |= np.isclose(raw, fill, rtol=0.0, atol=1e-3 * max(1.0, abs(fill)))
    if scale is not None or offset is not None:
        values = values * np.float32(scale if scale is not None else 1.0) + np.float32(offset or 0.0)
    values[bad | ~np.isfinite(values) | (values < 0)] = np.nan
    return values


def _as_float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def file_header(h5: h5py.File) -> dict[str, str]:
    """The PPS ``FileHeader`` root attribute (``key=value;`` lines) as a dict (empty if absent)."""
    text = _attr(h5, "FileHeader") or ""
    pairs = (item.strip().split("=", 1) for item in str(text).split(";") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def half_hour_ends(h5: h5py.File, var: h5py.Dataset, dims: tuple[str, ...], path: Path) -> np.ndarray:
    """End of each half hour in the file (datetime64[ns], UTC): start + 30 min."""
    header = file_header(h5)
    if header.get("TimeInterval", "HALF_HOUR") != "HALF_HOUR":
        raise reader_error(path, f"FileHeader TimeInterval={header['TimeInterval']}; read_imerg reads "
                                 "half-hourly files (3B-HHR) only")
    header_start = _header_start(header, path)
    if "time" in dims:
        starts = decode_cf_times(coordinate(var, dims, "time", path), path)
        if header_start is not None and starts.size == 1 and starts[0] != header_start:
            raise reader_error(path, f"time variable says {starts[0]} but FileHeader StartGranuleDateTime "
                                     f"says {header_start}")
    else:
        starts = np.array([header_start if header_start is not None else _name_start(path)], dtype="datetime64[ns]")
    _check_name_agrees(path, starts, "Grid/time" if "time" in dims else "FileHeader StartGranuleDateTime")
    ends = starts + HALF_HOUR
    if np.any(ends.astype("datetime64[m]").astype(np.int64) % 30 != 0):
        raise reader_error(path, f"half-hour ends {ends} do not fall on :00/:30 UTC")
    return ends


def _header_start(header: dict[str, str], path: Path) -> np.datetime64 | None:
    text = header.get("StartGranuleDateTime", "").split(" ")[0].rstrip("Z")
    if not text:
        return None
    try:
        return np.datetime64(pd.Timestamp(text).floor("s").to_datetime64(), "ns")
    except ValueError as exc:
        raise reader_error(path, f"FileHeader StartGranuleDateTime={text!r} is not a date ({exc})") from exc


def name_start(path: str | Path) -> pd.Timestamp | None:
    """Start of the half hour in an IMERG file name (``…YYYYMMDD-SHHMMSS-EHHMMSS…``), ``None`` if absent.

    The single rule for dating an IMERG file by its name (:func:`precipdiff.data.files.end_time`
    uses it to select files); :func:`read_imerg` refuses a file whose content disagrees.
    """
    match = _NAME_TIME.search(Path(path).name)
    return pd.Timestamp(f"{match[1]}T{match[2]}") if match else None


def _name_start(path: Path) -> np.datetime64:
    start = name_start(path)
    if start is None:
        raise reader_error(path, "no time variable, no FileHeader StartGranuleDateTime and no "
                                 "YYYYMMDD-SHHMMSS in the file name: cannot tell which half hour this is")
    return np.datetime64(start.to_datetime64(), "ns")


def _check_name_agrees(path: Path, starts: np.ndarray, source: str) -> None:
    """Refuse a file whose name dates another half hour than its content (``starts``)."""
    named = name_start(path)
    if named is None or (starts.size and pd.Timestamp(starts.min()) == named):
        return
    found = ", ".join(str(pd.Timestamp(t)) for t in starts[:3])
    raise reader_error(path, f"the file name says the half hour starts {named} but the content ({source}) says "
                             f"{found}; the file is misnamed or holds another time. precipdiff selects IMERG "
                             "files by name and dates them by content, so both must agree: rename or replace it")


_TIME_UNITS = {"seconds": "s", "minutes": "min", "hours": "h", "days": "D"}
_CF_UNITS = re.compile(r"^\s*(seconds|minutes|hours|days)\s+since\s+(.+?)\s*(UTC|Z)?\s*$", re.IGNORECASE)


def decode_cf_times(time_var: h5py.Dataset, path: Path) -> np.ndarray:
    """Decode ``<unit> since <epoch> [UTC]`` times (IMERG: seconds since 1980-01-06 or 1970-01-01)."""
    units = _attr(time_var, "units", "Units")
    match = _CF_UNITS.match(str(units or ""))
    if not match:
        raise reader_error(path, f"time units {units!r} are not '<unit> since <date>'")
    epoch = pd.Timestamp(match[2])
    # V07 spec: "the calculation of time does not add leap seconds", so plain arithmetic is exact
    offsets = pd.to_timedelta(np.asarray(time_var[...], dtype=np.float64), unit=_TIME_UNITS[match[1].lower()])
    return (epoch + offsets).to_numpy(dtype="datetime64[ns]")


def _source(path: Path, variable: str) -> str:
    run = next((label for prefix, label in _RUNS.items() if path.name.startswith(prefix + ".")), "unknown run")
    version = re.search(r"\.(V\d\d[A-Z]?)\.", path.name)
    return f"NASA GPM IMERG {run} {version[1] if version else 'unknown version'} ({variable})"
