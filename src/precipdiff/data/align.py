"""Put satellite and radar on the same hourly time axis.

Time convention (the contract's, MRMS's): an hourly value labelled ``H`` is the mean rate (mm/h)
over the hour **ending** at ``H``, i.e. over the interval (H − 1 h, H].

* IMERG half hours are labelled by their end (see :mod:`~precipdiff.data.imerg`): the half hour
  ending at ``t`` covers (t − 30 min, t]. The hour ending ``H`` is the mean of the half hours ending
  ``H − 30 min`` and ``H`` (:func:`halfhours_to_hours`); an hour with only one of them is dropped
  and counted.
* MRMS ``PrecipRate`` is an instantaneous rate every ``step_minutes`` (2 min). A sample at ``t`` is
  taken to represent (t − step, t], so the samples with t in (H − 1 h, H] — H − 58 min, …, H for
  2-min steps, 30 samples — make the hour ending ``H`` (:func:`rates_to_hours`). A sample exactly at
  ``H`` belongs to the hour ending ``H``, not to the next one.
* MRMS 1-h accumulations (``*_QPE_01H``) already are hourly values ending at their valid time.

Averages do not skip NaN: a cell missing in any contributing step is NaN for the hour.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.data.contract import VARIABLE, ContractError

HOUR = pd.Timedelta(hours=1)
HALF_HOUR = pd.Timedelta(minutes=30)


def _times(ds: xr.Dataset, name: str) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(ds["time"].values)
    if times.has_duplicates:
        raise ContractError(f"{name}: duplicate times {list(times[times.duplicated()][:3])}")
    return times


def halfhours_to_hours(ds: xr.Dataset) -> tuple[xr.Dataset, int]:
    """Average IMERG half-hourly rates (time = end of the half hour) to hours ending at ``H``.

    Parameters
    ----------
    ds
        Canonical satellite data, ``time`` on :00/:30 UTC, rates in mm/h.

    Returns
    -------
    (hourly, n_dropped)
        ``hourly``: mean of the half hours ending ``H − 30 min`` and ``H``, labelled ``H``;
        ``n_dropped``: hours for which only one of the two half hours was present.
    """
    times = _times(ds, "halfhours_to_hours")
    if np.any((times - times.floor("30min")) != pd.Timedelta(0)):
        raise ContractError(f"halfhours_to_hours: times must fall on :00/:30 UTC, found {list(times[:3])}")
    hours = times.ceil("h").unique().sort_values()
    present = set(times)
    complete = pd.DatetimeIndex([h for h in hours if h in present and h - HALF_HOUR in present])
    first = ds.sel(time=(complete - HALF_HOUR).to_numpy())[VARIABLE].values
    second = ds.sel(time=complete.to_numpy())
    mean = ((first + second[VARIABLE].values) / np.float32(2)).astype(np.float32)
    return _hourly(second, mean, "mean of the two half hours ending H-30min and H"), len(hours) - len(complete)


def rates_to_hours(ds: xr.Dataset, step_minutes: int = 2, min_fraction: float = 1.0) -> tuple[xr.Dataset, int]:
    """Average instantaneous rates every ``step_minutes`` to hours ending at ``H``, over (H − 1 h, H].

    Parameters
    ----------
    ds
        Canonical radar data with rates in mm/h on a ``step_minutes`` grid (MRMS ``PrecipRate``).
    step_minutes
        Sampling interval in minutes (must divide 60).
    min_fraction
        Fraction of the ``60 / step_minutes`` samples an hour needs to be kept (1.0: all of them).

    Returns
    -------
    (hourly, n_dropped)
        Hourly means labelled by the hour's end, and the number of incomplete hours dropped.
    """
    if step_minutes <= 0 or 60 % step_minutes or not 0 < min_fraction <= 1:
        raise ValueError(f"rates_to_hours: step_minutes must divide 60 and 0 < min_fraction <= 1, "
                         f"got {step_minutes}, {min_fraction}")
    times = _times(ds, "rates_to_hours")
    off_grid = (times - times.floor(f"{step_minutes}min")) != pd.Timedelta(0)
    if off_grid.any():
        raise ContractError(f"rates_to_hours: time {times[off_grid][0]} is not on the {step_minutes}-min grid")
    labels = times.ceil("h")  # (H - 1 h, H] -> H: a sample exactly at H stays in the hour ending H
    counts = pd.Series(1, index=labels).groupby(level=0).sum()
    needed = math.ceil(min_fraction * (60 // step_minutes) - 1e-9)  # samples an hour needs
    keep = counts.index[counts >= needed]
    grouped = ds[VARIABLE].assign_coords(time=labels.to_numpy()).groupby("time")
    mean = grouped.mean(skipna=False).sel(time=keep.to_numpy())
    template = ds.isel(time=np.searchsorted(labels, keep))  # one step per kept hour, for coords/attrs
    template = template.assign_coords(time=keep.to_numpy())
    return _hourly(template, mean.values.astype(np.float32), f"mean of the {60 // step_minutes} "
                   f"{step_minutes}-min rates in (H-1h, H]"), int((counts < needed).sum())


def _hourly(template: xr.Dataset, values: np.ndarray, method: str) -> xr.Dataset:
    out = template.copy(data={VARIABLE: values})
    out[VARIABLE].attrs["long_name"] = out[VARIABLE].attrs.get("long_name", "").split(" (")[0] + " (hourly mean)"
    out[VARIABLE].attrs["cell_methods"] = f"time: mean ({method})"
    out.attrs["time_convention"] = "time = end of the hour the rate averages over, UTC"
    return out


def intersect_times(sat: xr.Dataset, radar: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Keep the hours both datasets have.

    Raises
    ------
    ContractError
        No hour in common; the message gives both periods.
    """
    common = np.intersect1d(sat["time"].values, radar["time"].values)
    if common.size == 0:
        raise ContractError(f"satellite and radar share no hour: satellite covers {_period(sat)}, "
                            f"radar covers {_period(radar)}")
    return sat.sel(time=common), radar.sel(time=common)


def _period(ds: xr.Dataset) -> str:
    times = ds["time"].values
    if times.size == 0:
        return "no time at all"
    return f"{pd.Timestamp(times.min())} .. {pd.Timestamp(times.max())} ({times.size} steps)"
