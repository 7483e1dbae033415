"""Self-check of the inference product before anything is published (``docs/inference.md``).

:func:`product_problems` runs on every chunk of hours before its part files are written and on the
consolidated dataset before it replaces the output (``EnsembleStore.self_check``); any problem
raises :class:`~precipdiff.inference.output.OutputError` listing them all, and nothing is published.

Checks:

* CF attributes (CF-1.8 §3.1 units, §3.3 standard_name; §7.1 time bounds) of the rate variables,
  the probability and the coordinates, and ``Conventions`` on the published file;
* member and corrected rates are never ±inf, never negative and never above the runaway bound
  (``clipped_cells.max_rate_mm_h``, the guard of :func:`~precipdiff.data.transforms.clip_runaway`);
* members are finite wherever the input allows: a 0.1° member may be NaN only where the satellite
  input is, a 0.01° member only within one 0.1° cell of it (bilinear upsampling spreads a gap to
  the neighbouring cells);
* exceedance probabilities lie in [0, 1] (NaN where a member is missing).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from precipdiff.data.contract import NEST, STANDARD_NAME, UNITS

RATES = ("precipitation", "precipitation_mean", "corrected_precipitation_max", "precipitation_cell_mean",
         "satellite_precipitation")
REQUIRED_ATTRS = {
    **{name: {"units": UNITS, "standard_name": STANDARD_NAME} for name in RATES},
    "probability_of_exceedance": {"units": "1"},
    "lat": {"units": "degrees_north", "standard_name": "latitude"},
    "lon": {"units": "degrees_east", "standard_name": "longitude"},
    "time": {"standard_name": "time"},
}


def product_problems(ds: xr.Dataset, published: bool = False) -> list[str]:
    """Every failed check of ``ds`` (see the module docstring), each as ``"<what>: expected …, found …"``.

    ``published=True`` also asks for the global ``Conventions`` attribute of the final file.
    """
    return cf_problems(ds, published) + value_problems(ds)


def cf_problems(ds: xr.Dataset, published: bool = False) -> list[str]:
    """Missing variables or CF attributes, as ``"<var>.<attr>: expected …, found …"``."""
    problems = []
    for name, attrs in REQUIRED_ATTRS.items():
        if name not in ds.variables:
            problems.append(f"{name}: expected the variable, found none")
            continue
        for key, expected in attrs.items():
            found = ds[name].attrs.get(key)
            if found != expected:
                problems.append(f"{name}.{key}: expected {expected!r}, found {found!r}")
    if published and not str(ds.attrs.get("Conventions", "")).startswith("CF-"):
        problems.append(f"global Conventions: expected 'CF-1.8…', found {ds.attrs.get('Conventions')!r}")
    return problems


def value_problems(ds: xr.Dataset) -> list[str]:
    """Counts of impossible values, as ``"<var>: <what>: N cell(s)"``; lazy data is read once."""
    if any(name not in ds for name in (*RATES, "probability_of_exceedance")):
        return []  # already reported by cf_problems
    bound = ds["clipped_cells"].attrs.get("max_rate_mm_h", np.inf) if "clipped_cells" in ds else np.inf
    checks = {
        "precipitation: infinite values": np.isinf(ds["precipitation"]),
        "precipitation: negative rates": ds["precipitation"] < 0,
        f"precipitation: rates above the runaway bound {bound:g} mm h-1": ds["precipitation"] > bound,
        "precipitation_mean: infinite values": np.isinf(ds["precipitation_mean"]),
        "corrected_precipitation_max: infinite or negative values": np.isinf(ds["corrected_precipitation_max"])
        | (ds["corrected_precipitation_max"] < 0),
        f"corrected_precipitation_max: rates above the runaway bound {bound:g} mm h-1":
            ds["corrected_precipitation_max"] > bound,
        "satellite_precipitation: infinite or negative values": np.isinf(ds["satellite_precipitation"])
        | (ds["satellite_precipitation"] < 0),
        "probability_of_exceedance: values outside [0, 1]": (ds["probability_of_exceedance"] < 0)
        | (ds["probability_of_exceedance"] > 1),
        "corrected_precipitation_max: NaN members where the satellite input is valid":
            ds["corrected_precipitation_max"].isnull() & ds["satellite_precipitation"].notnull(),
    }
    allowed = _fine_gap_footprint(ds)
    if allowed is not None:
        checks["precipitation: NaN members farther than one 0.1° cell from missing input"] = (
            ds["precipitation"].isnull() & ~allowed)
    counts = xr.Dataset({f"c{i}": flag.sum() for i, flag in enumerate(checks.values())}).compute()
    return [f"{what}: {int(counts[f'c{i}'])} cell(s)" for i, what in enumerate(checks) if int(counts[f"c{i}"])]


def _fine_gap_footprint(ds: xr.Dataset) -> xr.DataArray | None:
    """(time, lat, lon) True where a 0.01° member may be NaN: within one 0.1° cell of a missing input cell."""
    gaps = np.isnan(np.asarray(ds["satellite_precipitation"].values))  # the 0.1° grid: small
    if (ds.sizes["lat"], ds.sizes["lon"]) != (NEST * gaps.shape[1], NEST * gaps.shape[2]):
        return None
    padded = np.pad(gaps, ((0, 0), (1, 1), (1, 1)))
    near = np.zeros_like(gaps)
    for di in range(3):
        for dj in range(3):
            near |= padded[:, di:di + gaps.shape[1], dj:dj + gaps.shape[2]]
    fine = near.repeat(NEST, axis=1).repeat(NEST, axis=2)
    return xr.DataArray(fine, dims=("time", "lat", "lon"), coords={"time": ds["time"], "lat": ds["lat"],
                                                                   "lon": ds["lon"]})
