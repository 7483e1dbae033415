"""Self-check of the inference product: every corruption is named, and a failing product is never published."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.inference.output import EnsembleJob, EnsembleStore, OutputError, hour_dataset, with_clip_counts
from precipdiff.inference.selfcheck import product_problems

COARSE = (np.array([47.05, 47.15]), np.array([-122.35, -122.25, -122.15]))
FINE = (np.round(47.005 + 0.01 * np.arange(20), 6), np.round(-122.395 + 0.01 * np.arange(30), 6))
HOURS = pd.date_range("2023-07-01T01:00", periods=3, freq="h")
BOUND = 300.0


def product(hours=HOURS[:1], members=None, satellite=None) -> xr.Dataset:
    """A valid 3-member product (rates 0..2 mm/h), with the runaway bound recorded."""
    t = len(hours)
    if members is None:
        members = np.broadcast_to(np.linspace(0, 2, 600).reshape(1, 1, 20, 30), (t, 3, 20, 30)).copy()
    corrected = members[..., ::10, ::10]
    if satellite is None:
        satellite = corrected[:, 0]
    corrected = np.where(np.isnan(satellite)[:, None], np.nan, np.nan_to_num(corrected, nan=1.0))  # gaps = input's
    ds = hour_dataset(hours, members, corrected, satellite, FINE, COARSE, [1, 2, 3], [0.5, 5.0])
    return with_clip_counts(ds, np.zeros(t), np.zeros(t), BOUND)


def test_a_valid_product_passes():
    assert product_problems(product(), published=False) == []


def _set(ds, var, index, value):
    values = ds[var].values.copy()
    values[index] = value
    return ds.assign({var: (ds[var].dims, values, ds[var].attrs)})


@pytest.mark.parametrize("corrupt, problem", [
    (lambda ds: _set(ds, "precipitation", (0, 1, 3, 4), np.inf), "precipitation: infinite values: 1 cell(s)"),
    (lambda ds: _set(ds, "precipitation", (0, 0, 0, slice(0, 2)), -1.0), "precipitation: negative rates: 2 cell(s)"),
    (lambda ds: _set(ds, "precipitation", (0, 2, 5, 5), 400.0),
     "precipitation: rates above the runaway bound 300 mm h-1: 1 cell(s)"),
    (lambda ds: _set(ds, "probability_of_exceedance", (0, 0, 1, 1), 1.5),
     "probability_of_exceedance: values outside [0, 1]: 1 cell(s)"),
    (lambda ds: _set(ds, "precipitation", (0, 0, 15, 25), np.nan),
     "precipitation: NaN members farther than one 0.1° cell from missing input: 1 cell(s)"),
    (lambda ds: _set(ds, "corrected_precipitation_max", (0, 1, 0, 0), np.nan),
     "corrected_precipitation_max: NaN members where the satellite input is valid: 1 cell(s)"),
    (lambda ds: ds.assign(precipitation=ds["precipitation"].assign_attrs(units="mm")),
     "precipitation.units: expected 'mm h-1', found 'mm'"),
    (lambda ds: ds.drop_vars("probability_of_exceedance"), "probability_of_exceedance: expected the variable"),
])
def test_each_corruption_is_named(corrupt, problem):
    assert any(p.startswith(problem) for p in product_problems(corrupt(product())))


def test_gaps_next_to_missing_input_are_allowed():
    satellite = np.full((1, 2, 3), 1.0)
    satellite[0, 0, 0] = np.nan  # the south-west 0.1° cell is missing
    members = np.ones((1, 3, 20, 30))
    members[:, :, :20, :20] = np.nan  # bilinear spreads the gap over the neighbouring 0.1° cells
    assert product_problems(product(members=members, satellite=satellite)) == []
    members[:, :, 0, 25] = np.nan  # two 0.1° cells away from the gap: a broken member
    assert product_problems(product(members=members, satellite=satellite)) == [
        "precipitation: NaN members farther than one 0.1° cell from missing input: 3 cell(s)"]


def test_published_file_needs_conventions():
    ds = product()
    assert product_problems(ds, published=True) == [
        "global Conventions: expected 'CF-1.8…', found None"]


def _job(compute):
    return EnsembleJob(HOURS, compute, {"steps": 8}, {"title": "test"}, progress=False)


def test_store_publishes_nothing_when_a_chunk_fails(tmp_path):
    out = tmp_path / "out.nc"
    EnsembleStore(out).write(_job(lambda hours: product(hours)))  # a first, good output
    before = out.read_bytes()

    def runaway(hours):
        ds = product(hours)
        return _set(ds, "precipitation", (0, 0, 0, 0), np.inf) if HOURS[1] in hours else ds

    with pytest.raises(OutputError, match=r"self-check failed, nothing published: precipitation: infinite") as info:
        EnsembleStore(out, overwrite=True).write(_job(runaway))
    assert str(out) in str(info.value)
    assert out.read_bytes() == before  # the previous output is untouched
    parts = sorted(p.name for p in (tmp_path / "out.nc.parts").glob("*.nc"))
    assert parts == ["20230701T0100.nc"]  # the good hour before; nothing of the failing hour
    assert not list(tmp_path.glob(".out.nc.tmp-*"))


def test_consolidation_refuses_a_damaged_part(tmp_path):
    out = tmp_path / "out.nc"
    calls = []

    def crash_on_last(hours):
        calls.extend(hours)
        if HOURS[2] in hours:
            raise RuntimeError("simulated crash")
        return product(hours)

    with pytest.raises(RuntimeError):
        EnsembleStore(out).write(_job(crash_on_last))
    part = tmp_path / "out.nc.parts" / "20230701T0200.nc"
    damaged = xr.load_dataset(part)
    damaged["probability_of_exceedance"][:] = 2.0  # e.g. a part edited or written by a broken version
    damaged.to_netcdf(part)
    with pytest.raises(OutputError, match=r"probability_of_exceedance: values outside \[0, 1\]"):
        EnsembleStore(out).write(_job(lambda hours: product(hours)))
    assert not out.exists() and part.exists()  # nothing published; the parts stay for inspection
