"""Large domains as many boxes, and stacks of box-hours: the layout every model input shares.

**Boxes.** A large domain (the whole grid of an MRMS file, or named regions of it) is cut into square
boxes of ``box_cells`` radar cells (0.01°), aligned on the 0.1° grid so that every box nests whole
satellite cells (:func:`layout`). A box carries the name of the region its centre falls in
(``ingestion.regions``: named lat/lon rectangles). Only the box-hours worth learning from are kept
(:func:`keep_hours`: radar coverage and wet share), so memory and disk grow with the rain, not with
the domain.

**Stacks.** A stack holds box-hours of one grid (0.1° satellite or 0.01° radar) as samples:

=================  ====================  ==================================================================
variable           dims                  meaning
=================  ====================  ==================================================================
``precipitation``  (sample, y, x)        mm/h, float32, NaN where missing (as in ``contract``)
``time``           (sample,)             end of the averaging hour, UTC (``datetime64[ns]``)
``box``            (sample,)             box name (``r03c12`` on a layout; the region of a one-box run)
``box_number``     (sample,)             0 for the one box of a one-box run; ``1 + row × columns + col``
``region``         (sample,)             region name
``lat``, ``lon``   (sample, y/x)         cell centres in degrees, ascending (CF auxiliary coordinates)
=================  ====================  ==================================================================

Samples are ordered by ``(time, box_number)`` and all share one shape. A one-box run (the synthetic
default, ``ingestion.domain.kind: box``) is a stack of that one box, its samples the hours in time
order, so the two kinds of run take the same path from preprocessing on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from precipdiff.data import contract
from precipdiff.data.contract import NEST, RESOLUTION, VARIABLE, ContractError
from precipdiff.seeds import sample_keys

STACK_DIMS = ("sample", "y", "x")
SAMPLE_COORDS = ("time", "box", "box_number", "region")


@dataclass(frozen=True)
class Box:
    """One box of a layout: ``name`` ``r<row>c<col>``, ``number`` (≥ 1; 0 = the box of a one-box
    run), its ``region`` and its edges in degrees (multiples of 0.1°)."""

    name: str
    number: int
    region: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    @property
    def bounds(self) -> dict[str, float]:
        return {"lat_min": self.lat_min, "lat_max": self.lat_max, "lon_min": self.lon_min, "lon_max": self.lon_max}

    @property
    def centre(self) -> tuple[float, float]:
        return (self.lat_min + self.lat_max) / 2, (self.lon_min + self.lon_max) / 2


def region_of(lat: float, lon: float, regions: Mapping[str, Mapping], names: Sequence[str]) -> str | None:
    """The first of ``names`` whose rectangle in ``regions`` holds ``(lat, lon)`` (edges: low inclusive)."""
    for name in names:
        r = regions[name]
        if r["lat_min"] <= lat < r["lat_max"] and r["lon_min"] <= lon < r["lon_max"]:
            return name
    return None


def layout(extent: Mapping[str, float], box_cells: int, regions: Mapping[str, Mapping],
           names: Sequence[str] | None = None) -> list[Box]:
    """The boxes of ``box_cells`` × ``box_cells`` radar cells tiling ``extent`` from its south-west corner.

    ``extent`` is snapped inward to the 0.1° grid; a partial row or column of boxes at the north or
    east edge is left out. Each box gets the first region of ``names`` (default: every region of
    ``regions``, in order) whose rectangle holds its centre; with ``names`` given, boxes in none of
    them are dropped, without it they are labelled ``other``.
    """
    if int(box_cells) != box_cells or box_cells <= 0 or box_cells % NEST:
        raise ContractError(f"ingestion.domain.box_cells must be a positive multiple of {NEST} (whole 0.1° cells); "
                            f"got {box_cells}")
    unknown = sorted(set(names or ()) - set(regions))
    if unknown:
        raise ContractError(f"ingestion.domain.regions: unknown region(s) {unknown}; ingestion.regions has "
                            f"{sorted(regions)}")
    e = contract.snap_box(extent, name="domain extent")
    side = round(box_cells * RESOLUTION["radar"], 6)
    n_rows = int(np.floor(round((e["lat_max"] - e["lat_min"]) / side, 6)))
    n_cols = int(np.floor(round((e["lon_max"] - e["lon_min"]) / side, 6)))
    order = list(names) if names else list(regions)
    boxes = []
    for row in range(n_rows):
        for col in range(n_cols):
            lat0, lon0 = round(e["lat_min"] + row * side, 6), round(e["lon_min"] + col * side, 6)
            lat1, lon1 = round(lat0 + side, 6), round(lon0 + side, 6)
            region = region_of((lat0 + lat1) / 2, (lon0 + lon1) / 2, regions, order)
            if region is None and names:
                continue
            boxes.append(Box(f"r{row:02d}c{col:02d}", 1 + row * n_cols + col, region or "other",
                             lat0, lat1, lon0, lon1))
    if not boxes:
        raise ContractError(f"ingestion.domain: no {box_cells}-cell box of the extent {e} lies in the regions {order}")
    return boxes


def bounding_box(boxes: Sequence[Box]) -> dict[str, float]:
    """The smallest box holding every box (what a reader decodes once per file)."""
    return {"lat_min": min(b.lat_min for b in boxes), "lat_max": max(b.lat_max for b in boxes),
            "lon_min": min(b.lon_min for b in boxes), "lon_max": max(b.lon_max for b in boxes)}


def cut(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, boxes: Sequence[Box], kind: str) -> np.ndarray:
    """``(T, B, h, w)`` windows of ``boxes`` in ``values`` ``(T, H, W)`` on the ascending axes ``lat``, ``lon``
    (a box must lie inside them). Views where possible; no copy of the whole field."""
    res = RESOLUTION[kind]
    rows = [int(round((b.lat_min + res / 2 - lat[0]) / res)) for b in boxes]
    cols = [int(round((b.lon_min + res / 2 - lon[0]) / res)) for b in boxes]
    h, w = int(round((boxes[0].lat_max - boxes[0].lat_min) / res)), int(round((boxes[0].lon_max - boxes[0].lon_min) / res))
    if min(rows) < 0 or min(cols) < 0 or max(rows) + h > values.shape[-2] or max(cols) + w > values.shape[-1]:
        raise ContractError(f"boxes.cut: a box lies outside the field ({lat[0]}..{lat[-1]}, {lon[0]}..{lon[-1]})")
    return np.stack([values[..., r:r + h, c:c + w] for r, c in zip(rows, cols)], axis=1)


def keep_hours(values: np.ndarray, min_coverage: float, min_wet_fraction: float,
               wet_mm_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep, coverage, wet_fraction)`` of fields ``(..., h, w)`` in mm/h: a field is kept when the
    share of cells with data is at least ``min_coverage`` and the share of those at or above
    ``wet_mm_h`` at least ``min_wet_fraction``. Missing cells (NaN) are never counted as dry."""
    valid = np.isfinite(values)
    n_valid = valid.sum(axis=(-2, -1))
    coverage = n_valid / (values.shape[-2] * values.shape[-1])
    wet = (np.where(valid, values, 0.0) >= wet_mm_h).sum(axis=(-2, -1)) / np.maximum(n_valid, 1)
    return (coverage >= min_coverage) & (wet >= min_wet_fraction), coverage, wet


# ---- stacks -------------------------------------------------------------------------------------
def is_stack(ds: xr.Dataset) -> bool:
    return "sample" in ds.dims


def make_stack(values: np.ndarray, times: np.ndarray, boxes: Sequence[Box], *, kind: str, source: str,
               long_name: str | None = None, attrs: Mapping[str, str] | None = None) -> xr.Dataset:
    """A validated stack of ``values`` ``(N, h, w)`` mm/h, sample ``i`` being the hour ending ``times[i]``
    of ``boxes[i]`` (sorted by time, then box number)."""
    grids = [contract.grid_for_box(b.bounds, kind) for b in boxes]
    order = np.lexsort(([b.number for b in boxes], np.asarray(times, dtype="datetime64[ns]")))
    boxes = [boxes[i] for i in order]
    ds = xr.Dataset(
        {VARIABLE: (STACK_DIMS, np.asarray(values, dtype=np.float32)[order],
                    contract.cf_attrs(kind, source, long_name))},
        coords={"time": ("sample", np.asarray(times, dtype="datetime64[ns]")[order]),
                "box": ("sample", np.array([b.name for b in boxes], dtype=str)),
                "box_number": ("sample", np.array([b.number for b in boxes], dtype=np.int64)),
                "region": ("sample", np.array([b.region for b in boxes], dtype=str)),
                "lat": (("sample", "y"), np.stack([grids[i][0] for i in order])),
                "lon": (("sample", "x"), np.stack([grids[i][1] for i in order]))},
        attrs={"Conventions": "CF-1.8", "title": f"precipdiff {kind} box-hours", **dict(attrs or {})},
    )
    return validate_stack(add_coord_attrs(ds), kind)


def add_coord_attrs(ds: xr.Dataset) -> xr.Dataset:
    """CF attributes of a stack's coordinates (``lat``/``lon`` are auxiliary coordinates)."""
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude")
    ds["time"].attrs.update(standard_name="time", long_name="end of the averaging hour (UTC)")
    ds["box"].attrs.update(long_name="box of the domain layout (precipdiff.data.boxes)")
    ds["box_number"].attrs.update(long_name="box number (0: the one box of a one-box run)")
    ds["region"].attrs.update(long_name="region of the box (ingestion.regions)")
    return ds  # xarray writes the variables' CF "coordinates" attribute itself


def box_of(ds: xr.Dataset, name: str, kind: str) -> Box:
    """The one box (number 0, region ``name``) of a canonical dataset of ``kind``: its edges from its cells."""
    half = RESOLUTION[kind] / 2
    lat, lon = ds["lat"].values, ds["lon"].values
    return Box(name, 0, name, round(float(lat[0] - half), 6), round(float(lat[-1] + half), 6),
               round(float(lon[0] - half), 6), round(float(lon[-1] + half), 6))


def to_stack(ds: xr.Dataset, box: Box) -> xr.Dataset:
    """A canonical ``(time, lat, lon)`` dataset as the stack of its one box (samples = hours)."""
    da = ds[VARIABLE]
    n = ds.sizes["time"]
    out = xr.Dataset(
        {VARIABLE: (STACK_DIMS, da.values, dict(da.attrs))},
        coords={"time": ("sample", ds["time"].values), "box": ("sample", np.full(n, box.name)),
                "box_number": ("sample", np.full(n, box.number, dtype=np.int64)),
                "region": ("sample", np.full(n, box.region)),
                "lat": (("sample", "y"), np.broadcast_to(ds["lat"].values, (n, ds.sizes["lat"])).copy()),
                "lon": (("sample", "x"), np.broadcast_to(ds["lon"].values, (n, ds.sizes["lon"])).copy())},
        attrs=dict(ds.attrs))
    return add_coord_attrs(out)


def concat(stacks: Sequence[xr.Dataset]) -> xr.Dataset:
    """Stacks of one grid and shape as one, ordered by (time, box number)."""
    out = xr.concat(list(stacks), dim="sample", combine_attrs="override", data_vars="all")
    order = np.lexsort((out["box_number"].values, out["time"].values))
    return add_coord_attrs(out.isel(sample=order))


def sample_grid(ds: xr.Dataset, index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, lon)`` cell centres (degrees) of sample ``index``."""
    return ds["lat"].values[index], ds["lon"].values[index]


def keys(ds: xr.Dataset) -> np.ndarray:
    """Every sample's key (:func:`precipdiff.seeds.sample_keys`): its noise seed and bootstrap unit."""
    return np.asarray(sample_keys(ds["time"].values, ds["box_number"].values), dtype=np.int64)


def validate_stack(ds: xr.Dataset, kind: str, name: str | None = None) -> xr.Dataset:
    """Check a stack: the canonical rules per sample (float32 mm/h, regular ascending axes on the
    grid of ``kind``, no negative rate), one box per ``box`` name, no box-hour twice."""
    name = name or f"{kind} stack"
    da = ds.get(VARIABLE)
    if da is None or da.dims != STACK_DIMS:
        raise ContractError(f"{name}: expected {VARIABLE} with dims {STACK_DIMS}; found "
                            f"{None if da is None else da.dims}")
    if da.dtype != np.float32 or da.attrs.get("units") not in (contract.UNITS, "mm/h"):
        raise ContractError(f"{name}: {VARIABLE} must be float32 in {contract.UNITS}; found {da.dtype}, "
                            f"units {da.attrs.get('units')!r}")
    missing = [c for c in (*SAMPLE_COORDS, "lat", "lon") if c not in ds.coords]
    if missing:
        raise ContractError(f"{name}: missing coordinates {missing}")
    for coord in ("lat", "lon"):  # one box = one grid; checking each distinct grid once
        for row in np.unique(ds[coord].values, axis=0):
            contract.check_axis(row, RESOLUTION[kind], f"{name}: {coord}")
    pairs = ds["box_number"].values.astype(np.int64) * 10**12 + ds["time"].values.astype("datetime64[s]").astype(np.int64)
    if np.unique(pairs).size != pairs.size:
        raise ContractError(f"{name}: a box-hour appears twice")
    if np.any(da.values[np.isfinite(da.values)] < 0):
        raise ContractError(f"{name}: negative precipitation rates (missing values must be NaN)")
    return ds


def validate_stack_pair(satellite: xr.Dataset, radar: xr.Dataset) -> None:
    """Both stacks conform, hold the same box-hours in the same order, and each radar box nests in its
    satellite box (10 × 10 cells per satellite cell, common edges)."""
    validate_stack(satellite, "satellite")
    validate_stack(radar, "radar")
    for c in SAMPLE_COORDS:
        if not np.array_equal(satellite[c].values, radar[c].values):
            raise ContractError(f"radar/satellite stacks: different {c} along sample")
    for c, dim in (("lat", "y"), ("lon", "x")):
        if radar.sizes[dim] != NEST * satellite.sizes[dim]:
            raise ContractError(f"radar/satellite stacks: radar {dim} has {radar.sizes[dim]} cells, expected "
                                f"{NEST} × {satellite.sizes[dim]}")
        edge_s = satellite[c].values[:, 0] - RESOLUTION["satellite"] / 2
        edge_r = radar[c].values[:, 0] - RESOLUTION["radar"] / 2
        if np.abs(edge_s - edge_r).max() > 1e-6:
            raise ContractError(f"radar/satellite stacks: {c} grids start at different edges")


def box_dataset(stack: xr.Dataset, box: str, kind: str) -> xr.Dataset:
    """The canonical ``(time, lat, lon)`` dataset of one box of a stack (its hours in time order)."""
    sel = np.flatnonzero(stack["box"].values == box)
    if sel.size == 0:
        raise KeyError(f"no sample of box {box!r} in the stack")
    da = stack[VARIABLE]
    return contract.make_dataset(da.values[sel], stack["time"].values[sel], stack["lat"].values[sel[0]],
                                 stack["lon"].values[sel[0]], kind=kind, source=da.attrs["source"],
                                 long_name=da.attrs.get("long_name"))
