"""The inference product: a CF-1.8 NetCDF of the 1 km ensemble, written hour by hour, crash-safe.

Layout of the file (``docs/inference.md``):

==============================  ===============================  ==========================================
variable                        dims                             content
==============================  ===============================  ==========================================
``precipitation``               (time, member, lat, lon)         ensemble members, mm h-1, 0.01°
``precipitation_mean``          (time, lat, lon)                 ensemble mean, mm h-1
``probability_of_exceedance``   (time, threshold, lat, lon)      fraction of members with rate ≥ threshold
``corrected_precipitation_max`` (time, member, lat_sat, lon_sat) the correction model's 0.1° members: the
                                                                 MAXIMUM of the 1 km rates in each 0.1° cell
``precipitation_cell_mean``     (time, member, lat_sat, lon_sat) the 1 km members averaged over each 0.1° cell
``satellite_precipitation``     (time, lat_sat, lon_sat)         the input on its own 0.1° grid, mm h-1
``member_seed``                 (member)                         seed of each member's latents
``clipped_cells``               (time)                           member cells clipped at the runaway bound
``clipped_corrected_cells``     (time)                           the same for the 0.1° corrected members
``time_bnds``, ``crs``                                           CF time bounds and grid mapping
==============================  ===============================  ==========================================

Streaming (:class:`EnsembleStore`): each hour is written to ``<output>.parts/<hour>.nc`` as soon as
it is computed (atomically: temporary name, then ``os.replace``), next to a ``manifest.json`` holding
the run's *signature* (models, sampler, members, seeds, box …). A re-run with the same signature
skips the hours already in the parts or in the existing output; a different signature is refused
before any compute (or replaced with ``overwrite``). At the end the parts and the hours of an
existing compatible output are consolidated into ``<output>`` (again atomically: zlib, chunked by
time) and the parts removed. A crash leaves complete hour files and an untouched output. Every
chunk and the consolidated file pass :func:`self_check` (CF attributes, finite members, rates
within the runaway bound, probabilities in [0, 1]; :mod:`~precipdiff.inference.selfcheck`) before
they are written: a failing product is never published.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from precipdiff.atomic import atomic_write
from precipdiff.data.contract import STANDARD_NAME, UNITS
from precipdiff.inference.selfcheck import product_problems

log = logging.getLogger(__name__)
SIGNATURE_ATTR = "precipdiff_signature"
PRODUCT_VERSION = 2  # of the file layout (2: corrected_precipitation_max, precipitation_cell_mean), in the signature
CHUNK_CELLS = 512  # spatial chunk side of the output variables (cells)
_TIME_ENCODING = {"units": "hours since 1970-01-01 00:00:00", "calendar": "standard", "dtype": "int64"}


class OutputError(OSError):
    """The output cannot be written or is incompatible with this run; the message names the path."""


@dataclass
class EnsembleJob:
    """What an inference run asks the store to write (built by the ``inference`` pipeline).

    ``compute(hours)`` returns :func:`hour_dataset` for those hours; nothing is computed before
    :meth:`EnsembleStore.write` has checked the output. ``signature`` holds every setting that
    changes the numbers; ``attrs`` the provenance written into the file.
    """

    hours: pd.DatetimeIndex
    compute: Callable[[pd.DatetimeIndex], xr.Dataset]
    signature: dict
    attrs: dict = field(default_factory=dict)
    hours_per_chunk: int = 1
    progress: bool = True  # tqdm bar with ETA over the hours to compute


def hour_dataset(times, members_mm_h: np.ndarray, corrected_mm_h: np.ndarray, satellite_mm_h: np.ndarray,
                 fine_grid: tuple[np.ndarray, np.ndarray], coarse_grid: tuple[np.ndarray, np.ndarray],
                 seeds: Sequence[int], thresholds_mm_h: Sequence[float]) -> xr.Dataset:
    """One or more hours of the product (see the module docstring) from ``(T, M, H, W)`` members in mm/h."""
    from precipdiff.data.transforms import pool  # here: the CLI's early checks import this module without torch

    lat, lon = fine_grid
    lat_s, lon_s = coarse_grid
    times = np.asarray(times, dtype="datetime64[ns]")
    members = np.asarray(members_mm_h, dtype=np.float32)
    valid = np.isfinite(members).all(axis=1)
    prob = np.stack([np.where(valid, (members >= th).mean(axis=1), np.nan) for th in thresholds_mm_h], axis=1)
    ds = xr.Dataset(
        {
            "precipitation": (("time", "member", "lat", "lon"), members, _rate_attrs(
                "PrecipDiff ensemble member precipitation rate, 0.01 degree (hourly mean)")),
            "precipitation_mean": (("time", "lat", "lon"), members.mean(axis=1), _rate_attrs(
                "PrecipDiff ensemble mean precipitation rate, 0.01 degree (hourly mean)",
                "time: mean member: mean")),
            "probability_of_exceedance": (("time", "threshold", "lat", "lon"), prob.astype(np.float32), {
                "long_name": "fraction of ensemble members with precipitation rate >= threshold",
                "units": "1", "valid_range": np.array([0.0, 1.0], np.float32), "grid_mapping": "crs"}),
            # the correction model's target is the radar max-pooled to 0.1° (preprocessing.pooling: max)
            "corrected_precipitation_max": (("time", "member", "lat_sat", "lon_sat"),
                                            np.asarray(corrected_mm_h, np.float32), _rate_attrs(
                "correction-model ensemble member estimate of the maximum 0.01 degree precipitation rate "
                "(hourly mean) within each 0.1 degree cell; not an area mean: use precipitation_cell_mean "
                "for totals", CELL_MAX)),
            "precipitation_cell_mean": (("time", "member", "lat_sat", "lon_sat"), pool(members, "mean"), _rate_attrs(
                "ensemble member precipitation rate (hourly mean) averaged over each 0.1 degree cell "
                "(area mean of the 0.01 degree members; consistent with their totals)", "time: mean area: mean")),
            "satellite_precipitation": (("time", "lat_sat", "lon_sat"), np.asarray(satellite_mm_h, np.float32),
                                        _rate_attrs("input satellite precipitation rate, 0.1 degree (hourly mean)")),
            "member_seed": (("member",), np.asarray(seeds, np.int64), {
                "long_name": "seed of the member's latent noise (regenerate a member with it alone)"}),
            "time_bnds": (("time", "nv"), np.stack([times - np.timedelta64(1, "h"), times], axis=1)),
            "crs": ((), np.int32(0), {"grid_mapping_name": "latitude_longitude", "semi_major_axis": 6378137.0,
                                      "inverse_flattening": 298.257223563, "long_name": "WGS 84 latitude/longitude"}),
        },
        coords={
            "time": ("time", times, {"standard_name": "time", "axis": "T", "bounds": "time_bnds",
                                     "long_name": "end of the averaging hour (UTC)"}),
            "member": ("member", np.arange(members.shape[1], dtype=np.int32),
                       {"standard_name": "realization", "long_name": "ensemble member"}),
            "threshold": ("threshold", np.asarray(thresholds_mm_h, np.float32),
                          {"standard_name": STANDARD_NAME, "units": UNITS, "long_name": "rate threshold"}),
            "lat": ("lat", lat, _axis_attrs("lat", "0.01 degree")),
            "lon": ("lon", lon, _axis_attrs("lon", "0.01 degree")),
            "lat_sat": ("lat_sat", lat_s, _axis_attrs("lat", "0.1 degree (satellite grid)")),
            "lon_sat": ("lon_sat", lon_s, _axis_attrs("lon", "0.1 degree (satellite grid)")),
        },
    )
    return ds


def with_clip_counts(ds: xr.Dataset, clipped: np.ndarray, clipped_corrected: np.ndarray,
                     max_rate_mm_h: float) -> xr.Dataset:
    """``ds`` with the per-hour counts of cells clipped at the runaway bound
    (:func:`precipdiff.data.transforms.clip_runaway`); the totals become global attributes on consolidation."""
    note = f"cells whose rate exceeded {max_rate_mm_h:g} mm h-1 (a diverging sample) and were clipped to it"
    return ds.assign(
        clipped_cells=("time", np.asarray(clipped, np.int64), {"long_name": f"member {note}, 0.01 degree",
                                                                "units": "1", "max_rate_mm_h": max_rate_mm_h}),
        clipped_corrected_cells=("time", np.asarray(clipped_corrected, np.int64),
                                 {"long_name": f"corrected-member {note}, 0.1 degree", "units": "1"}))


# CF-1.8 §7.3 cell_methods (+ §7.3.3 comment in parentheses)
CELL_MAX = "time: mean area: maximum (of the 0.01 degree cells within the 0.1 degree cell)"


def _rate_attrs(long_name: str, cell_methods: str = "time: mean") -> dict:
    return {"standard_name": STANDARD_NAME, "long_name": long_name, "units": UNITS,
            "cell_methods": cell_methods, "grid_mapping": "crs"}


def _axis_attrs(name: str, grid: str) -> dict:
    if name == "lat":
        return {"standard_name": "latitude", "units": "degrees_north", "axis": "Y", "long_name": f"latitude, {grid}"}
    return {"standard_name": "longitude", "units": "degrees_east", "axis": "X", "long_name": f"longitude, {grid}"}


def encoding(ds: xr.Dataset, complevel: int = 4) -> dict:
    """zlib for every float variable, chunks of one time step (and member) × ≤ 512 × 512 cells."""
    enc: dict = {"time": dict(_TIME_ENCODING), "time_bnds": dict(_TIME_ENCODING)}
    for name, var in ds.data_vars.items():
        if var.dtype.kind != "f" or "time" not in var.dims:
            continue
        chunks = tuple(1 if d in ("time", "member", "threshold") else min(ds.sizes[d], CHUNK_CELLS)
                       for d in var.dims)
        enc[name] = {"zlib": True, "complevel": complevel, "chunksizes": chunks, "_FillValue": np.float32(np.nan)}
    return enc


def self_check(ds: xr.Dataset, where: Path, published: bool = False) -> None:
    """Raise :class:`OutputError` naming ``where`` if ``ds`` fails :func:`~precipdiff.inference.selfcheck.product_problems`."""
    problems = product_problems(ds, published)
    if problems:
        raise OutputError(f"output {where}: self-check failed, nothing published: " + "; ".join(problems))


def write_atomic(ds: xr.Dataset, path: Path, unlimited_time: bool = False) -> None:
    """Write ``ds`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, encoding=encoding(ds),
                                                unlimited_dims=["time"] if unlimited_time else None), hidden=True)


def check_writable(path: str | Path) -> Path:
    """Absolute output path, after checking that it could be written; creates nothing.

    The nearest existing folder above ``path`` must be a directory that takes files; missing folders
    are made only when the first hour is written (:meth:`EnsembleStore.write`), so a run that fails
    earlier leaves no directory behind. Raises :class:`OutputError` naming the path otherwise.
    """
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise OutputError(f"output {path}: is a directory; give a file name such as {path / 'precipdiff.nc'}")
    existing = nearest_existing(path.parent)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"output {path}: {blocker} is a file; expected a writable directory there")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=f".{path.name}.probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"output {path}: cannot write in {existing} ({exc.strerror or exc}); expected a "
                          "writable directory") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"output {path}: the file exists and is not writable")
    return path


def nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest parent that exists (a file or a directory)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


class EnsembleStore:
    """Writes an :class:`EnsembleJob` to ``path`` hour by hour (see the module docstring)."""

    def __init__(self, path: str | Path, overwrite: bool = False, progress: bool = True):
        self.path = Path(path).expanduser().absolute()
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.overwrite, self.progress = bool(overwrite), bool(progress)

    def write(self, job: EnsembleJob) -> None:
        """Check the output, compute and write the missing hours, consolidate."""
        check_writable(self.path)
        reuse_final = self._prepare(job.signature)
        done = set(self._part_hours()) | (set(self._final_hours()) if reuse_final else set())
        todo = pd.DatetimeIndex([h for h in job.hours if h not in done])
        if len(todo) < len(job.hours):
            log.info("%s: %d of %d hours already written, skipped", self.path.name, len(job.hours) - len(todo),
                     len(job.hours))
        self._stream(job, todo)
        if todo.empty and reuse_final and not self._part_hours():
            log.info("%s: nothing to do, every hour is in the output", self.path)
            shutil.rmtree(self.parts)
            return
        self.consolidate(job.attrs | {SIGNATURE_ATTR: _dumps(job.signature)}, reuse_final)

    def _stream(self, job: EnsembleJob, todo: pd.DatetimeIndex) -> None:
        """Compute ``todo`` in chunks of ``job.hours_per_chunk`` hours, one part file per hour as it comes."""
        size = max(1, job.hours_per_chunk)
        show = self.progress and job.progress and len(todo) > 0
        with tqdm(total=len(todo), desc="downscaling", unit="h", disable=not show) as bar:
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                ds = job.compute(chunk)
                self_check(ds, self.path)  # before any part of the chunk is written
                for t in chunk:
                    write_atomic(ds.sel(time=[t.to_datetime64()]), self._part_path(t))
                bar.update(len(chunk))

    # ------------------------------------------------------------------ signature and parts

    def _prepare(self, signature: dict) -> bool:
        """Validate (or reset) the parts directory and the existing output; True if the output is reusable."""
        manifest = self.parts / "manifest.json"
        if self.overwrite and self.parts.exists():
            shutil.rmtree(self.parts)
        if manifest.exists():
            _same(json.loads(manifest.read_text()), signature, self.parts)
        reuse = False
        if self.path.exists() and not self.overwrite:
            with xr.open_dataset(self.path) as ds:
                if SIGNATURE_ATTR not in ds.attrs:
                    raise OutputError(f"output {self.path}: exists and was not written by precipdiff inference; "
                                      "choose another output or overwrite it")
                _same(json.loads(ds.attrs[SIGNATURE_ATTR]), signature, self.path)
            reuse = True
        self.parts.mkdir(parents=True, exist_ok=True)
        if not manifest.exists():
            atomic_write(manifest, lambda tmp: tmp.write_text(_dumps(signature, indent=1)), hidden=True)
        return reuse

    def _part_path(self, hour: pd.Timestamp) -> Path:
        return self.parts / f"{hour:%Y%m%dT%H%M}.nc"

    def _part_hours(self) -> list[pd.Timestamp]:
        if not self.parts.exists():
            return []
        return sorted(pd.Timestamp(dt.datetime.strptime(p.stem, "%Y%m%dT%H%M")) for p in self.parts.glob("*.nc"))

    def _final_hours(self) -> list[pd.Timestamp]:
        if not self.path.exists():
            return []
        with xr.open_dataset(self.path) as ds:
            return list(pd.DatetimeIndex(ds["time"].values))

    # ------------------------------------------------------------------ consolidation

    def consolidate(self, attrs: dict, reuse_final: bool) -> None:
        """Parts (+ the hours of the existing output) → ``path`` atomically; the parts are then removed."""
        parts = sorted(self.parts.glob("*.nc"))
        opened = [xr.open_dataset(p, chunks={}) for p in parts]
        try:
            pieces = list(opened)
            if reuse_final and self.path.exists():
                old = xr.open_dataset(self.path, chunks={})
                opened.append(old)
                new_hours = set(self._part_hours())
                keep = [t for t in old["time"].values if pd.Timestamp(t) not in new_hours]
                if keep:
                    pieces.append(old.sel(time=keep))
            ds = xr.concat(pieces, dim="time", data_vars="minimal", coords="minimal", compat="override",
                           join="exact", combine_attrs="override").sortby("time")
            ds.attrs = _global_attrs(ds, attrs)
            self_check(ds, self.path, published=True)  # the output is replaced only after it passes
            write_atomic(ds, self.path, unlimited_time=True)
        finally:
            for d in opened:
                d.close()
        shutil.rmtree(self.parts)
        log.info("%s: %d hours written", self.path, ds.sizes["time"])

    def load(self) -> xr.Dataset:
        """The consolidated output, opened lazily (dask chunks)."""
        if not self.path.exists():
            raise OutputError(f"output {self.path}: does not exist (run the inference pipeline first)")
        return xr.open_dataset(self.path, chunks={})


def _global_attrs(ds: xr.Dataset, attrs: dict) -> dict:
    times = pd.DatetimeIndex(ds["time"].values)
    lat, lon = ds["lat"].values, ds["lon"].values
    return {
        "Conventions": "CF-1.8",  # provenance() gives "CF-1.8, ACDD-1.3"; kept when present
        **attrs,
        "time_coverage_start": iso8601(times[0] - pd.Timedelta(hours=1)),
        "time_coverage_end": iso8601(times[-1]),
        "geospatial_lat_min": float(lat[0] - 0.005), "geospatial_lat_max": float(lat[-1] + 0.005),
        "geospatial_lon_min": float(lon[0] - 0.005), "geospatial_lon_max": float(lon[-1] + 0.005),
        "date_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{f"{name}_total": int(ds[name].sum()) for name in ("clipped_cells", "clipped_corrected_cells")
           if name in ds},
    }


def iso8601(t) -> str:
    """``2023-07-01T00:00:00Z``: ISO 8601 in UTC (ACDD-1.3 time_coverage_*)."""
    return f"{pd.Timestamp(t):%Y-%m-%dT%H:%M:%SZ}"


def _dumps(obj, indent: int | None = None) -> str:
    return json.dumps(obj, sort_keys=True, indent=indent, default=str)


def _same(old: dict, new: dict, where: Path) -> None:
    """Raise :class:`OutputError` listing the settings that differ between ``old`` and ``new``."""
    old, new = json.loads(_dumps(old)), json.loads(_dumps(new))
    if old == new:
        return
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
    raise OutputError(f"{where}: written by a run with other settings ({lines[:600]}). Choose another output, "
                      "or overwrite it (--overwrite / inference.overwrite)")
