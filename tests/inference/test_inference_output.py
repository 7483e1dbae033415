"""The output product: CF layout, probabilities, and the crash-safe hour-by-hour store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.inference.output import EnsembleJob, EnsembleStore, OutputError, check_writable, hour_dataset

COARSE = (np.array([47.05, 47.15]), np.array([-122.35, -122.25, -122.15]))
FINE = (np.round(47.005 + 0.01 * np.arange(20), 6), np.round(-122.395 + 0.01 * np.arange(30), 6))
SEEDS = [11, 22, 33, 44]


def fake_hours(hours) -> xr.Dataset:
    """Deterministic 'ensemble' for the given hours: member m of hour t is (t_index + m) × a ramp."""
    t = np.array([pd.Timestamp(h).hour for h in hours], float)[:, None, None, None]
    m = np.arange(len(SEEDS))[None, :, None, None]
    ramp = np.linspace(0, 2, 20 * 30).reshape(1, 1, 20, 30)
    members = (t + m) * ramp
    corrected = members[..., ::10, ::10]
    return hour_dataset(hours, members, corrected, corrected[:, 0], FINE, COARSE, SEEDS, [0.5, 5.0])


def job(hours, signature=None, fail_at=None, calls=None):
    calls = [] if calls is None else calls

    def compute(chunk):
        calls.extend(chunk)
        if fail_at is not None and pd.Timestamp(fail_at) in chunk:
            raise RuntimeError("simulated crash")
        return fake_hours(chunk)

    return EnsembleJob(pd.DatetimeIndex(hours), compute, signature or {"steps": 8}, {"title": "test"}, progress=False)


HOURS = pd.date_range("2023-07-01T01:00", periods=4, freq="h")


def test_hour_dataset_is_cf_with_mean_and_exceedance_probabilities():
    ds = fake_hours(HOURS[:2])
    members = ds["precipitation"].values
    np.testing.assert_allclose(ds["precipitation_mean"].values, members.mean(axis=1), rtol=1e-6)
    expected = (members >= 5.0).mean(axis=1)
    np.testing.assert_array_equal(ds["probability_of_exceedance"].sel(threshold=5.0).values, expected)
    assert ds["precipitation"].dims == ("time", "member", "lat", "lon")
    assert ds["precipitation"].attrs["units"] == "mm h-1"
    assert ds["precipitation"].attrs["standard_name"] == "lwe_precipitation_rate"
    assert ds["member"].attrs["standard_name"] == "realization"
    assert ds["time"].attrs["bounds"] == "time_bnds"
    assert (ds["time_bnds"].values[:, 1] - ds["time_bnds"].values[:, 0] == np.timedelta64(1, "h")).all()
    assert list(ds["member_seed"].values) == SEEDS


def test_the_corrected_field_is_named_and_attributed_as_the_cell_maximum_beside_the_cell_mean():
    """Issue #23: the correction model estimates the radar MAX-pooled to 0.1°, so its output is named
    and attributed so (CF-1.8 §7.3 ``area: maximum``); the mean-consistent 0.1° field is the members'
    area mean."""
    ds = fake_hours(HOURS[:1])
    corrected = ds["corrected_precipitation_max"]
    assert "area: maximum" in corrected.attrs["cell_methods"] and "maximum" in corrected.attrs["long_name"]
    assert "corrected_precipitation" not in ds
    cell_mean = ds["precipitation_cell_mean"]
    assert cell_mean.dims == ("time", "member", "lat_sat", "lon_sat")
    assert cell_mean.attrs["cell_methods"] == "time: mean area: mean"
    members = ds["precipitation"].values  # member 1 of hour 1: 2 × ramp; the block (row 1, col 2) by hand
    np.testing.assert_allclose(cell_mean.values[0, 1, 1, 2], members[0, 1, 10:20, 20:30].mean(), rtol=1e-6)
    # totals agree: the cell means average to the 1 km mean
    np.testing.assert_allclose(cell_mean.values.mean(axis=(2, 3)), members.mean(axis=(2, 3)), rtol=1e-6)


def test_nan_input_gives_nan_mean_and_probability():
    members = np.ones((1, 2, 20, 30))
    members[0, 1, 3, 4] = np.nan
    ds = hour_dataset(HOURS[:1], members, members[..., ::10, ::10], members[:, 0, ::10, ::10], FINE, COARSE,
                      [1, 2], [0.5])
    assert np.isnan(ds["precipitation_mean"].values[0, 3, 4])
    assert np.isnan(ds["probability_of_exceedance"].values[0, 0, 3, 4])
    assert ds["probability_of_exceedance"].values[0, 0, 3, 5] == 1.0


def test_store_streams_hours_and_consolidates(tmp_path):
    out = tmp_path / "out.nc"
    calls = []
    EnsembleStore(out).write(job(HOURS, calls=calls))
    assert calls == list(HOURS)
    assert not (tmp_path / "out.nc.parts").exists()
    with xr.open_dataset(out) as ds:
        assert list(ds["time"].values) == list(HOURS.values)
        xr.testing.assert_allclose(ds["precipitation"].load(), fake_hours(HOURS)["precipitation"])
        enc = ds["precipitation"].encoding
        assert enc["zlib"] and enc["chunksizes"] == (1, 1, 20, 30)
        assert ds.attrs["title"] == "test" and "precipdiff_signature" in ds.attrs
        assert ds.attrs["time_coverage_start"] == "2023-07-01T00:00:00Z"  # ISO 8601 (ACDD-1.3)
        assert ds.attrs["time_coverage_end"] == f"{HOURS[-1]:%Y-%m-%dT%H:%M:%SZ}"


def test_crash_leaves_no_corrupt_file_and_rerun_skips_written_hours(tmp_path):
    out = tmp_path / "out.nc"
    EnsembleStore(out).write(job(HOURS[:2]))  # a first, complete run
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match="simulated crash"):
        EnsembleStore(out).write(job(HOURS, fail_at=HOURS[3]))
    assert out.read_bytes() == before  # the output is untouched
    parts = sorted(p.name for p in (tmp_path / "out.nc.parts").glob("*.nc"))
    assert parts == ["20230701T0300.nc"]  # the hour done before the crash, complete
    calls = []
    EnsembleStore(out).write(job(HOURS, calls=calls))
    assert calls == [HOURS[3]]  # hours 1-2 are in the output, hour 3 in the parts
    with xr.open_dataset(out) as ds:
        xr.testing.assert_allclose(ds["precipitation"].load(), fake_hours(HOURS)["precipitation"])


def test_rerun_of_a_complete_output_computes_nothing(tmp_path):
    out = tmp_path / "out.nc"
    EnsembleStore(out).write(job(HOURS))
    calls = []
    EnsembleStore(out).write(job(HOURS[1:3], calls=calls))
    assert calls == [] and not (tmp_path / "out.nc.parts").exists()
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 4


def test_other_settings_are_refused_before_any_compute_or_overwritten(tmp_path):
    out = tmp_path / "out.nc"
    EnsembleStore(out).write(job(HOURS[:2]))
    calls = []
    with pytest.raises(OutputError, match=r"steps: 8 -> 18") as info:
        EnsembleStore(out).write(job(HOURS, {"steps": 18}, calls=calls))
    assert str(out) in str(info.value) and calls == []
    EnsembleStore(out, overwrite=True).write(job(HOURS[2:], {"steps": 18}, calls=calls))
    assert calls == list(HOURS[2:])
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 2 and '"steps": 18' in ds.attrs["precipdiff_signature"]


def test_unwritable_outputs_are_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="a_file is a file; expected a writable directory") as info:
        check_writable(blocker / "out.nc")
    assert str(blocker) in str(info.value)
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path)
    (tmp_path / "foreign.nc").write_bytes(b"")
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(tmp_path / "foreign.nc")
    with pytest.raises(OutputError, match="not written by precipdiff"):
        EnsembleStore(tmp_path / "foreign.nc").write(job(HOURS[:1]))
