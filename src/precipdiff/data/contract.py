"""The canonical data contract every data source produces (see ``docs/data_contract.md``).

``satellite`` and ``radar`` are :class:`xarray.Dataset` objects with

* one variable ``precipitation``, float32, **mm/h**, dims ``(time, lat, lon)``;
* cell-centre coordinates ``lat``/``lon`` (degrees north / east, lon in [-180, 180)) ascending,
  on regular grids of 0.1° (satellite) and 0.01° (radar) whose cell *edges* fall on multiples of
  the resolution (the IMERG and MRMS grids both do), so every 0.1° cell nests exactly 10 × 10
  radar cells;
* ``time`` as ``datetime64[ns]`` (UTC), strictly increasing; the hour labels the *end* of the
  hour the rate averages over (MRMS convention, see ``docs/data_contract.md``);
* missing values as NaN; CF attributes ``units``, ``standard_name``, ``long_name``, ``source``.

:func:`validate` enforces this at pipeline boundaries; :func:`make_dataset` builds a conforming
dataset; :func:`grid_for_box` gives the cell centres of a box on either grid.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

VARIABLE = "precipitation"
DIMS = ("time", "lat", "lon")
RESOLUTION = {"satellite": 0.1, "radar": 0.01}  # degrees
NEST = 10  # radar cells per satellite cell along each axis
UNITS = "mm h-1"  # CF/UDUNITS spelling of mm/h
STANDARD_NAME = "lwe_precipitation_rate"  # CF standard name table (canonical units m s-1)
# readers accept a file grid whose cell centres are within this fraction of a cell of the canonical
# ones (old MRMS archives carry micro-degree origin jitter, e.g. 230.005004 °E); farther is an error
GRID_TOLERANCE = 0.01
_DECIMALS = 6  # coordinates are rounded so that 0.1° and 0.01° grids compare exactly


class ContractError(ValueError):
    """A dataset breaks the canonical contract; the message names the dataset and the rule."""


def snap_box(
    box: Mapping[str, float], res: float = RESOLUTION["satellite"], name: str = "box"
) -> dict[str, float]:
    """Snap a ``{lat_min, lat_max, lon_min, lon_max}`` box (degrees) inward to multiples of ``res``.

    Raises :class:`ContractError` naming the parameter ``name`` if the box is malformed or holds
    no whole cell.
    """
    if not isinstance(box, Mapping):
        raise ContractError(f"{name}: expected a mapping with lat_min, lat_max, lon_min, lon_max; got {box!r}")
    missing = {"lat_min", "lat_max", "lon_min", "lon_max"} - set(box)
    if missing:
        raise ContractError(f"{name}: missing keys {sorted(missing)}; got {dict(box)}")
    try:
        values = {key: float(box[key]) for key in ("lat_min", "lat_max", "lon_min", "lon_max")}
    except (TypeError, ValueError):
        raise ContractError(f"{name}: expected numbers of degrees; got {dict(box)}") from None
    not_finite = sorted(key for key, value in values.items() if not np.isfinite(value))
    if not_finite:
        raise ContractError(f"{name}: {', '.join(not_finite)} not finite; expected numbers of degrees, got {dict(box)}")
    lat_min, lat_max, lon_min, lon_max = (values[k] for k in ("lat_min", "lat_max", "lon_min", "lon_max"))
    if not (-90 <= lat_min < lat_max <= 90) or not (-180 <= lon_min < lon_max <= 180):
        raise ContractError(
            f"{name}: need -90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 180 "
            f"(degrees, lon east); got {dict(box)}"
        )
    snapped = {
        "lat_min": np.ceil(round(lat_min / res, 6)) * res,
        "lat_max": np.floor(round(lat_max / res, 6)) * res,
        "lon_min": np.ceil(round(lon_min / res, 6)) * res,
        "lon_max": np.floor(round(lon_max / res, 6)) * res,
    }
    if snapped["lat_max"] - snapped["lat_min"] < res - 1e-9 or (
        snapped["lon_max"] - snapped["lon_min"] < res - 1e-9
    ):
        raise ContractError(
            f"{name}: {dict(box)} holds no whole {res}° cell; it must span at least one satellite "
            f"cell ({res}°) in latitude and longitude"
        )
    return {k: round(float(v), _DECIMALS) for k, v in snapped.items()}


def axis(lo: float, hi: float, res: float) -> np.ndarray:
    """Cell centres of the cells with edges ``lo .. hi`` (multiples of ``res``), ascending."""
    n = int(round((hi - lo) / res))
    return np.round(lo + res * (np.arange(n) + 0.5), _DECIMALS)


def grid_for_box(box: Mapping[str, float], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, lon)`` cell centres of ``kind`` ('satellite' | 'radar') covering the snapped box."""
    b = snap_box(box)
    res = _resolution(kind)
    return axis(b["lat_min"], b["lat_max"], res), axis(b["lon_min"], b["lon_max"], res)


def cf_attrs(kind: str, source: str, long_name: str | None = None) -> dict[str, str]:
    """CF variable attributes of the canonical ``precipitation`` variable."""
    return {
        "units": UNITS,
        "standard_name": STANDARD_NAME,
        "long_name": long_name or f"{kind} precipitation rate (hourly mean)",
        "source": source,
    }


def make_dataset(
    values: np.ndarray,
    time: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    kind: str,
    source: str,
    long_name: str | None = None,
    attrs: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Wrap a ``(time, lat, lon)`` array in mm/h into a canonical, validated dataset.

    ``kind`` names the grid ('satellite' 0.1°, 'radar' 0.01°); ``long_name`` overrides the
    default description (e.g. for radar max-pooled to the 0.1° grid).
    """
    da = xr.DataArray(
        np.asarray(values, dtype=np.float32),
        dims=DIMS,
        coords={
            "time": np.asarray(time, dtype="datetime64[ns]"),
            "lat": np.round(np.asarray(lat, dtype=np.float64), _DECIMALS),
            "lon": np.round(np.asarray(lon, dtype=np.float64), _DECIMALS),
        },
        attrs=cf_attrs(kind, source, long_name),
    )
    ds = da.to_dataset(name=VARIABLE)
    ds = add_coord_attrs(ds)
    ds.attrs.update({"Conventions": "CF-1.8", "title": f"precipdiff canonical {kind}"})
    ds.attrs.update(dict(attrs or {}))
    return validate(ds, kind, name=kind)


def add_coord_attrs(ds: xr.Dataset) -> xr.Dataset:
    """CF attributes of the ``time``/``lat``/``lon`` coordinates."""
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude", axis="Y")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude", axis="X")
    ds["time"].attrs.update(standard_name="time", axis="T", long_name="end of the averaging hour (UTC)")
    return ds


def _resolution(kind: str) -> float:
    if kind not in RESOLUTION:
        raise ContractError(f"kind must be one of {sorted(RESOLUTION)}, got {kind!r}")
    return RESOLUTION[kind]


def validate(ds: xr.Dataset, kind: str, name: str | None = None) -> xr.Dataset:
    """Check ``ds`` against the contract for ``kind``; return it unchanged or raise ContractError."""
    name = name or kind
    res = _resolution(kind)

    def fail(msg: str) -> None:
        raise ContractError(f"{name}: {msg}")

    if VARIABLE not in ds:
        fail(f"no variable {VARIABLE!r} (has {list(ds.data_vars)})")
    da = ds[VARIABLE]
    if da.dims != DIMS:
        fail(f"{VARIABLE} dims must be {DIMS}, found {da.dims}")
    if da.dtype != np.float32:
        fail(f"{VARIABLE} must be float32, found {da.dtype}")
    units = da.attrs.get("units")
    if units not in (UNITS, "mm/h", "mm hr-1"):
        fail(f"{VARIABLE} units must be {UNITS!r} (mm/h), found {units!r}")
    for key in ("standard_name", "long_name", "source"):
        if key not in da.attrs:
            fail(f"{VARIABLE} lacks the CF attribute {key!r}")
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        fail(f"time must be datetime64, found {ds['time'].dtype}")
    if ds.sizes["time"] > 1 and not np.all(np.diff(ds["time"].values) > np.timedelta64(0)):
        fail("time must be strictly increasing")
    for coord in ("lat", "lon"):
        _check_axis(ds[coord].values, res, coord, fail)
    values = da.values
    if np.any(values[np.isfinite(values)] < 0):
        fail("negative precipitation rates (missing values must be NaN)")
    return ds


def check_axis(values: np.ndarray, res: float, name: str) -> None:
    """Raise :class:`ContractError` unless ``values`` are ascending cell centres, ``res`` apart, with
    cell edges on multiples of ``res`` (``name`` prefixes the message)."""
    def fail(msg: str) -> None:
        raise ContractError(f"{name}: {msg}")

    _check_axis(values, res, name.rsplit(" ", 1)[-1], fail)


def _check_axis(values: np.ndarray, res: float, coord: str, fail) -> None:
    if values.ndim != 1 or values.size == 0:
        fail(f"{coord} must be a non-empty 1-D coordinate")
    steps = np.diff(values)
    if values.size > 1 and not np.allclose(steps, res, atol=res * 1e-3):
        fail(f"{coord} must be ascending with a regular {res}° step, found steps {np.unique(np.round(steps, 6))[:5]}")
    offset = (values[0] - res / 2) / res
    if abs(offset - round(offset)) > 1e-3:
        fail(f"{coord} cell edges must fall on multiples of {res}°; first centre is {values[0]}")


def validate_pair(satellite: xr.Dataset, radar: xr.Dataset) -> None:
    """Check that both datasets conform and that the radar grid nests exactly in the satellite grid."""
    validate(satellite, "satellite")
    validate(radar, "radar")
    for coord in ("lat", "lon"):
        s, r = satellite[coord].values, radar[coord].values
        if r.size != NEST * s.size:
            raise ContractError(
                f"radar/satellite: radar {coord} has {r.size} cells, expected {NEST} x {s.size} = {NEST * s.size}"
            )
        edge_s = s[0] - RESOLUTION["satellite"] / 2
        edge_r = r[0] - RESOLUTION["radar"] / 2
        if abs(edge_s - edge_r) > 1e-6:
            raise ContractError(f"radar/satellite: {coord} grids start at different edges ({edge_r} vs {edge_s})")
    if not np.array_equal(satellite["time"].values, radar["time"].values):
        raise ContractError("radar/satellite: the two datasets must share the same time axis")
