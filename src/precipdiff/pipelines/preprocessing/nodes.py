"""Preprocessing nodes: QC, common extent, max pooling, transform, chronological split, patch index."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data import contract, transforms
from precipdiff.data.contract import NEST, VARIABLE

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def _qc_one(ds: xr.Dataset, kind: str, max_rate: float) -> tuple[xr.Dataset, dict]:
    values = ds[VARIABLE].values
    finite = np.isfinite(values)
    negative = finite & (values < 0)  # fill values (-9999.9, -3, ...) and any negative rate
    implausible = finite & (values > max_rate)
    clean = np.where(negative | implausible, np.nan, values).astype(np.float32)
    out = ds.copy(data={VARIABLE: clean})
    report = {"dataset": kind, "cells": values.size, "missing_in": int((~finite).sum()),
              "negative_or_fill": int(negative.sum()), "implausible": int(implausible.sum())}
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
    """Common hours and the largest satellite extent whose 10 × 10 radar cells are all present."""
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
    """Radar coarsened to the 0.1° grid by ``max`` pooling (the paper's choice) or ``mean``."""
    method = params["pooling"]
    pooled = transforms.pool(radar[VARIABLE].values, method, NEST, float(params["pool_max_missing"]))
    lat = radar["lat"].values.reshape(-1, NEST).mean(axis=1)
    lon = radar["lon"].values.reshape(-1, NEST).mean(axis=1)
    return contract.make_dataset(
        pooled, radar["time"].values, lat, lon, kind="satellite",
        source=radar[VARIABLE].attrs["source"],
        long_name=f"radar precipitation rate {method}-pooled to 0.1° (hourly mean)",
    )


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
    """Split table (time, split) from ``preprocessing.split``."""
    cfg = params["split"]
    return split_hours(satellite["time"].values, cfg["fractions"], int(cfg["gap_hours"]))


def _transformed(values: np.ndarray, name: str, what: str) -> xr.Variable:
    attrs = {"units": "1", "long_name": f"{what}: {name} transform of the rate in mm/h",
             "transform": name, "rate_units": contract.UNITS}
    return xr.Variable(("time", "lat", "lon"), transforms.forward_transform(values, name).astype(np.float32), attrs)


def _with_split(ds: xr.Dataset, splits: pd.DataFrame) -> xr.Dataset:
    keep = splits[splits.split != "gap"]
    ds = ds.sel(time=keep.time.values)
    ds = ds.assign_coords(split=("time", np.asarray(keep.split.tolist(), dtype=str)))
    ds["split"].attrs["long_name"] = "chronological split (train / validation / test)"
    return contract.add_coord_attrs(ds)


def build_model_inputs(satellite, radar_coarse, radar, splits: pd.DataFrame, params: dict):
    """Transformed model inputs on the two grids, gap hours removed, ``split`` along time.

    ``coarse``: ``satellite`` and ``radar`` (pooled) at 0.1° — the correction model's pair.
    ``fine``: ``radar`` at 0.01° — the downscaling model's target (its condition is the pooled
    radar upsampled, computed at training time).
    """
    name = params["transform"]
    coarse = xr.Dataset(
        {"satellite": _transformed(satellite[VARIABLE].values, name, "satellite"),
         "radar": _transformed(radar_coarse[VARIABLE].values, name, "radar pooled to 0.1°")},
        coords={c: satellite[c] for c in ("time", "lat", "lon")},
    )
    fine = xr.Dataset({"radar": _transformed(radar[VARIABLE].values, name, "radar at 0.01°")},
                      coords={c: radar[c] for c in ("time", "lat", "lon")})
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
                transform: str) -> pd.DataFrame:
    """All patches with their wet fraction (target ≥ ``wet_mm_h``) and valid fraction, vectorised.

    Patch sums come from summed-area tables (one cumulative sum per field), so the cost is
    O(T·H·W) whatever the number of patches.
    """
    t, h, w = target.shape
    size = min(size, h, w)
    thr = transforms.forward_transform(np.array(wet_mm_h, dtype=np.float32), transform)
    rows, cols = _offsets(h, size, stride), _offsets(w, size, stride)
    out = {}
    for key, mask in (("wet_fraction", target >= thr), ("valid_fraction", np.isfinite(target))):
        sat = np.zeros((t, h + 1, w + 1))
        sat[:, 1:, 1:] = mask.cumsum(1).cumsum(2)
        r0, c0 = rows[:, None], cols[None, :]
        sums = sat[:, r0 + size, c0 + size] - sat[:, r0, c0 + size] - sat[:, r0 + size, c0] + sat[:, r0, c0]
        out[key] = (sums / size**2).reshape(-1)
    ti, ri, ci = np.meshgrid(np.arange(t), rows, cols, indexing="ij")
    return pd.DataFrame({
        "time": np.repeat(pd.to_datetime(times).values, rows.size * cols.size),
        "time_index": ti.ravel(), "row": ri.ravel(), "col": ci.ravel(), "size": size,
        "wet_fraction": out["wet_fraction"].astype(np.float32),
        "valid_fraction": out["valid_fraction"].astype(np.float32),
        "split": np.repeat(np.asarray(split, dtype=str), rows.size * cols.size),
    })


def build_patch_indices(coarse: xr.Dataset, fine: xr.Dataset, params: dict):
    """Patch indices (Parquet) for the correction (0.1°) and downscaling (0.01°) models."""
    cfg, name = params["patches"], params["transform"]
    out = []
    for ds, key in ((coarse, "coarse"), (fine, "fine")):
        out.append(patch_index(ds["radar"].values, ds["time"].values, ds["split"].values,
                               int(cfg[key]["size"]), int(cfg[key]["stride"]),
                               float(cfg["wet_threshold_mm_h"]), name))
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
        c = coarse.isel(time=coarse["split"].values == split)
        f = fine.isel(time=fine["split"].values == split)
        if c.sizes["time"] == 0:
            continue
        for var, vals in (("satellite", c["satellite"].values), ("radar_coarse", c["radar"].values),
                          ("radar_fine", f["radar"].values)):
            rows.append(_describe(transforms.inverse_transform(vals, name), split=split, variable=var, units="mm/h"))
        res_c = c["radar"].values - c["satellite"].values
        res_f = f["radar"].values - transforms.upsample(c["radar"].values, NEST, method)
        rows.append(_describe(res_c, split=split, variable="residual_correction", units=name))
        rows.append(_describe(res_f, split=split, variable="residual_downscaling", units=name))
    return pd.DataFrame(rows)
