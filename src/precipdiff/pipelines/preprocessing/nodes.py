"""Preprocessing nodes: QC, common extent, max pooling, transform, chronological split, patch index.

From :func:`crop_to_common` on, every dataset is a stack of box-hours (:mod:`precipdiff.data.boxes`,
dims ``sample, y, x``): the hours of the one box of a one-box run, or the kept box-hours of a large
domain. The split is by hour (every box of an hour shares its split), so no box-hour of a validation
or test hour, nor of the gap hours around them, is seen in training.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import boxes as bx
from precipdiff.data import contract, transforms
from precipdiff.data.contract import NEST, VARIABLE

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def _qc_one(ds: xr.Dataset, kind: str, max_rate: float) -> tuple[xr.Dataset, dict]:
    values = ds[VARIABLE].values
    clean = values.astype(np.float32, copy=True)
    counts = np.zeros(3, np.int64)  # missing in, negative or fill, implausible
    for start in range(0, len(clean), 256):  # a field block at a time: masks of the size of a block, not the data
        part = clean[start:start + 256]
        with np.errstate(invalid="ignore"):
            negative = part < 0  # fill values (-9999.9, -3, ...) and any negative rate (NaN compares False)
            implausible = part > max_rate
        counts += [int(np.isnan(part).sum()), int(negative.sum()), int(implausible.sum())]
        part[negative | implausible] = np.nan
    out = ds.copy(data={VARIABLE: clean})
    report = {"dataset": kind, "cells": values.size, "missing_in": int(counts[0]),
              "negative_or_fill": int(counts[1]), "implausible": int(counts[2])}
    return out, report


def quality_control(satellite: xr.Dataset, radar: xr.Dataset, params: dict):
    """Negatives/fill values and rates over ``qc.max_rate_mm_h`` → NaN; counts in a report."""
    max_rate = float(params["qc"]["max_rate_mm_h"])
    sat, rep_s = _qc_one(satellite, "satellite", max_rate)
    rad, rep_r = _qc_one(radar, "radar", max_rate)
    for rep in (rep_s, rep_r):
        log.info("QC %(dataset)s: %(negative_or_fill)d negative/fill and %(implausible)d implausible "
                 "cells set to NaN (%(missing_in)d already missing of %(cells)d)", rep)
    return sat, rad, pd.DataFrame([rep_s, rep_r])


def crop_to_common(satellite: xr.Dataset, radar: xr.Dataset):
    """Stacks of box-hours both sources hold, on grids where every satellite cell nests 10 × 10 radar cells.

    Canonical one-box data: the common hours and the largest satellite extent whose 10 × 10 radar
    cells are all present, as the stack of that box (named by the data's ``region`` attribute, else
    ``box``). Stacks (a large domain): the common box-hours, checked to nest.
    """
    if bx.is_stack(satellite):
        return _common_box_hours(satellite, radar)
    sat, rad = _crop_box(satellite, radar)
    box = bx.box_of(sat, str(satellite.attrs.get("region") or "box"), "satellite")
    return bx.to_stack(sat, box), bx.to_stack(rad, box)


def _common_box_hours(satellite: xr.Dataset, radar: xr.Dataset):
    key = lambda ds: bx.keys(ds)  # noqa: E731
    common = np.intersect1d(key(satellite), key(radar))
    if common.size == 0:
        raise ValueError("preprocessing: the satellite and radar stacks share no box-hour")
    sat = satellite.isel(sample=np.flatnonzero(np.isin(key(satellite), common)))
    rad = radar.isel(sample=np.flatnonzero(np.isin(key(radar), common)))
    bx.validate_stack_pair(sat, rad)
    return sat, rad


def _crop_box(satellite: xr.Dataset, radar: xr.Dataset):
    times = np.intersect1d(satellite["time"].values, radar["time"].values)
    if times.size == 0:
        raise ValueError(
            f"preprocessing: satellite ({satellite['time'].values[0]} .. {satellite['time'].values[-1]}) "
            f"and radar ({radar['time'].values[0]} .. {radar['time'].values[-1]}) share no hour"
        )
    half = contract.RESOLUTION["satellite"] / 2
    sel = {}
    for c in ("lat", "lon"):
        lo = max(satellite[c].values[0] - half, radar[c].values[0] - contract.RESOLUTION["radar"] / 2)
        hi = min(satellite[c].values[-1] + half, radar[c].values[-1] + contract.RESOLUTION["radar"] / 2)
        sel[c] = (round(lo, 6), round(hi, 6))
    box = contract.snap_box({"lat_min": sel["lat"][0], "lat_max": sel["lat"][1],
                             "lon_min": sel["lon"][0], "lon_max": sel["lon"][1]},
                            name="satellite/radar common extent")
    out = []
    for ds, kind in ((satellite, "satellite"), (radar, "radar")):
        lat, lon = contract.grid_for_box(box, kind)
        ds = ds.sel(time=times).reindex(lat=lat, lon=lon, method="nearest", tolerance=1e-4)
        out.append(ds)
    contract.validate_pair(*out)
    return tuple(out)


def pool_radar(radar: xr.Dataset, params: dict) -> xr.Dataset:
    """Radar box-hours coarsened to the 0.1° grid by ``max`` pooling (the paper's choice) or ``mean``."""
    method = params["pooling"]
    pooled = transforms.pool(radar[VARIABLE].values, method, NEST, float(params["pool_max_missing"]))
    n = radar.sizes["sample"]
    attrs = contract.cf_attrs("satellite", radar[VARIABLE].attrs["source"],
                              f"radar precipitation rate {method}-pooled to 0.1° (hourly mean)")
    out = xr.Dataset(
        {VARIABLE: (bx.STACK_DIMS, pooled.astype(np.float32), attrs)},
        coords={**{c: radar[c] for c in bx.SAMPLE_COORDS},
                "lat": (("sample", "y"), np.round(radar["lat"].values.reshape(n, -1, NEST).mean(axis=2), 6)),
                "lon": (("sample", "x"), np.round(radar["lon"].values.reshape(n, -1, NEST).mean(axis=2), 6))},
        attrs=dict(radar.attrs))
    return bx.validate_stack(bx.add_coord_attrs(out), "satellite", name="radar_coarse")


def split_hours(times: np.ndarray, fractions: dict, gap_hours: int) -> pd.DataFrame:
    """Chronological train/validation/test split with ``gap_hours`` dropped between segments.

    Hours in a gap get split ``gap`` and are used nowhere, so no hour (nor its temporal
    neighbours within the gap) leaks between training and evaluation.
    """
    fr = np.array([float(fractions.get(k, 0)) for k in SPLITS])
    if set(fractions) - set(SPLITS) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"preprocessing.split.fractions must give {SPLITS} summing to 1, got {fractions}")
    n = len(times)
    bounds = np.round(np.cumsum(fr) * n).astype(int)
    labels = np.empty(n, dtype=object)
    start = 0
    for name, end in zip(SPLITS, bounds):
        labels[start:end] = name
        start = end
    for end in bounds[:-1]:  # the gap takes the first hours after each boundary
        labels[end : min(end + gap_hours, n)] = "gap"
    table = pd.DataFrame({"time": pd.to_datetime(times), "split": labels})
    kept = table[table.split != "gap"]
    if kept.split.nunique() < (fr > 0).sum():
        raise ValueError(f"preprocessing.split: {n} hours are too few for fractions {fractions} "
                         f"with a {gap_hours}-hour gap")
    return table


def make_splits(satellite: xr.Dataset, params: dict) -> pd.DataFrame:
    """Split table (time, split) of the hours of the stack, from ``preprocessing.split``.

    The fractions and the gap count *hours*: every box-hour of an hour shares its split, so the
    split of a large domain is as chronological as that of one box (each hour once, however many
    boxes it holds)."""
    cfg = params["split"]
    return split_hours(np.unique(satellite["time"].values), cfg["fractions"], int(cfg["gap_hours"]))


def _transformed(values: np.ndarray, name: str, what: str) -> xr.Variable:
    attrs = {"units": "1", "long_name": f"{what}: {name} transform of the rate in mm/h",
             "transform": name, "rate_units": contract.UNITS}
    return xr.Variable(bx.STACK_DIMS, transforms.forward_transform(values, name).astype(np.float32), attrs)


def _with_split(ds: xr.Dataset, splits: pd.DataFrame) -> xr.Dataset:
    """The box-hours of hours outside the gaps, with their hour's ``split`` along ``sample``."""
    label = pd.Series(splits.split.to_numpy(), index=pd.DatetimeIndex(splits.time))
    split = label.reindex(pd.DatetimeIndex(ds["time"].values)).to_numpy()
    keep = np.flatnonzero(pd.notna(split) & (split != "gap"))
    ds = ds.isel(sample=keep).assign_coords(split=("sample", np.asarray(split[keep], dtype=str)))
    ds["split"].attrs["long_name"] = "chronological split of the hour (train / validation / test)"
    return bx.add_coord_attrs(ds)


def build_model_inputs(satellite, radar_coarse, radar, splits: pd.DataFrame, params: dict):
    """Transformed model inputs on the two grids, gap hours removed, ``split`` along ``sample``.

    ``coarse``: ``satellite`` and ``radar`` (pooled) at 0.1° — the correction model's pair.
    ``fine``: ``radar`` at 0.01° — the downscaling model's target (its condition is the pooled
    radar upsampled, computed at training time).
    """
    name = params["transform"]
    coords = (*bx.SAMPLE_COORDS, "lat", "lon")
    coarse = xr.Dataset(
        {"satellite": _transformed(satellite[VARIABLE].values, name, "satellite"),
         "radar": _transformed(radar_coarse[VARIABLE].values, name, "radar pooled to 0.1°")},
        coords={c: satellite[c] for c in coords},
    )
    fine = xr.Dataset({"radar": _transformed(radar[VARIABLE].values, name, "radar at 0.01°")},
                      coords={c: radar[c] for c in coords})
    attrs = {"Conventions": "CF-1.8", "transform": name, "pooling": params["pooling"],
             "upsampling": params["upsampling"]}
    coarse.attrs.update(attrs, title="precipdiff coarse (0.1°) model input")
    fine.attrs.update(attrs, title="precipdiff fine (0.01°) model input")
    return _with_split(coarse, splits), _with_split(fine, splits)


def _offsets(n: int, size: int, stride: int) -> np.ndarray:
    """Top-left offsets of patches of ``size`` with ``stride``, always including the last one."""
    offs = np.arange(0, n - size + 1, stride)
    return np.unique(np.append(offs, n - size))


def patch_index(target: np.ndarray, times, split, size: int, stride: int, wet_mm_h: float,
                transform: str, regions=None) -> pd.DataFrame:
    """All patches of the samples (box-hours) ``target`` ``(N, H, W)`` with their wet fraction
    (target ≥ ``wet_mm_h``) and valid fraction, vectorised; ``sample_index`` is the sample's position.

    Patch sums come from summed-area tables (one integer cumulative sum per field, ``chunk`` fields
    at a time so memory stays bounded), so the cost is O(N·H·W) whatever the number of patches.
    ``regions`` (N,): the region of each sample (column ``region``, what a held-out region is
    filtered on).
    """
    t, h, w = target.shape
    size = min(size, h, w)
    thr = transforms.forward_transform(np.array(wet_mm_h, dtype=np.float32), transform)
    rows, cols = _offsets(h, size, stride), _offsets(w, size, stride)
    r0, c0 = rows[:, None], cols[None, :]
    out = {"wet_fraction": [], "valid_fraction": []}
    chunk = 256
    for start in range(0, t, chunk):
        part = target[start:start + chunk]
        for key, mask in (("wet_fraction", part >= thr), ("valid_fraction", np.isfinite(part))):
            sat = np.zeros((len(part), h + 1, w + 1), np.int32)
            sat[:, 1:, 1:] = mask.cumsum(1, dtype=np.int32).cumsum(2, dtype=np.int32)
            sums = sat[:, r0 + size, c0 + size] - sat[:, r0, c0 + size] - sat[:, r0 + size, c0] + sat[:, r0, c0]
            out[key].append((sums / size**2).reshape(-1))
    out = {k: np.concatenate(v) for k, v in out.items()}
    ti, ri, ci = np.meshgrid(np.arange(t), rows, cols, indexing="ij")
    per = rows.size * cols.size
    regions = np.full(t, "box") if regions is None else np.asarray(regions, dtype=str)
    return pd.DataFrame({
        "time": np.repeat(pd.to_datetime(times).values, per),
        "sample_index": ti.ravel(), "row": ri.ravel(), "col": ci.ravel(), "size": size,
        "wet_fraction": out["wet_fraction"].astype(np.float32),
        "valid_fraction": out["valid_fraction"].astype(np.float32),
        "split": np.repeat(np.asarray(split, dtype=str), per),
        "region": pd.Categorical(np.repeat(regions, per)),
    })


def build_patch_indices(coarse: xr.Dataset, fine: xr.Dataset, params: dict):
    """Patch indices (Parquet) for the correction (0.1°) and downscaling (0.01°) models."""
    cfg, name = params["patches"], params["transform"]
    out = []
    for ds, key in ((coarse, "coarse"), (fine, "fine")):
        out.append(patch_index(ds["radar"].values, ds["time"].values, ds["split"].values,
                               int(cfg[key]["size"]), int(cfg[key]["stride"]),
                               float(cfg["wet_threshold_mm_h"]), name, ds["region"].values))
        log.info("patch index %s: %d patches of %d px", key, len(out[-1]), out[-1]["size"].iloc[0])
    return tuple(out)


def _describe(values: np.ndarray, **labels) -> dict:
    v = values[np.isfinite(values)]
    q = np.percentile(v, [50, 90, 99]) if v.size else [np.nan] * 3
    return {**labels, "count": int(v.size), "missing_fraction": float(1 - v.size / max(values.size, 1)),
            "mean": float(v.mean()) if v.size else np.nan, "std": float(v.std()) if v.size else np.nan,
            "p50": q[0], "p90": q[1], "p99": q[2], "max": float(v.max()) if v.size else np.nan,
            "wet_fraction": float((v >= 0.1).mean()) if v.size else np.nan}


def compute_statistics(coarse: xr.Dataset, fine: xr.Dataset, params: dict) -> pd.DataFrame:
    """Per-split statistics in mm/h and of the two residuals in transformed units."""
    name, method = params["transform"], params["upsampling"]
    rows = []
    for split in SPLITS:
        c = coarse.isel(sample=coarse["split"].values.astype(str) == split)
        f = fine.isel(sample=fine["split"].values.astype(str) == split)
        if c.sizes["sample"] == 0:
            continue
        for var, vals in (("satellite", c["satellite"].values), ("radar_coarse", c["radar"].values),
                          ("radar_fine", f["radar"].values)):
            rows.append(_describe(transforms.inverse_transform(vals, name), split=split, variable=var, units="mm/h"))
        res_c = c["radar"].values - c["satellite"].values
        res_f = f["radar"].values - transforms.upsample(c["radar"].values, NEST, method)
        rows.append(_describe(res_c, split=split, variable="residual_correction", units=name))
        rows.append(_describe(res_f, split=split, variable="residual_downscaling", units=name))
    return pd.DataFrame(rows)
