import numpy as np
import pytest

from precipdiff.data import contract
from precipdiff.data.contract import ContractError


def _ds(kind="radar", n=20, **kw):
    lat, lon = contract.grid_for_box({"lat_min": 47.0, "lat_max": 47.2, "lon_min": -122.2, "lon_max": -122.0}, kind)
    values = np.ones((2, lat.size, lon.size), np.float32)
    times = np.array(["2022-01-01T01", "2022-01-01T02"], dtype="datetime64[ns]")
    return contract.make_dataset(values, times, lat, lon, kind=kind, source="test", **kw)


def test_grids_nest_and_are_cell_centres():
    box = {"lat_min": 46.55, "lat_max": 48.5, "lon_min": -123.5, "lon_max": -121.47}
    slat, slon = contract.grid_for_box(box, "satellite")
    rlat, rlon = contract.grid_for_box(box, "radar")
    assert slat[0] == pytest.approx(46.65) and slat[-1] == pytest.approx(48.45)  # snapped inward
    assert rlat.size == 10 * slat.size and rlon.size == 10 * slon.size
    np.testing.assert_allclose(rlat.reshape(-1, 10).mean(axis=1), slat, atol=1e-9)
    np.testing.assert_allclose(rlon.reshape(-1, 10).mean(axis=1), slon, atol=1e-9)


def test_make_dataset_has_cf_attributes():
    ds = _ds()
    attrs = ds["precipitation"].attrs
    assert attrs["units"] == "mm h-1" and attrs["standard_name"] == "lwe_precipitation_rate"
    assert {"long_name", "source"} <= set(attrs)
    assert ds["precipitation"].dims == ("time", "lat", "lon") and ds["precipitation"].dtype == np.float32


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.isel(lat=slice(None, None, -1)), "lat must be ascending"),
        (lambda ds: ds.transpose("time", "lon", "lat"), "dims must be"),
        (lambda ds: ds.astype(np.float64), "float32"),
        (lambda ds: ds.assign(precipitation=ds.precipitation * -1), "negative"),
        (lambda ds: ds.isel(time=[1, 0]), "strictly increasing"),
        (lambda ds: ds.assign_coords(lon=ds.lon + 0.005), "multiples of 0.01"),
    ],
)
def test_validate_rejects(mutate, message):
    ds = mutate(_ds())
    for v in ds.data_vars.values():
        v.attrs.update(_ds()["precipitation"].attrs)
    with pytest.raises(ContractError, match=message):
        contract.validate(ds, "radar", name="radar_raw")


def test_validate_pair_checks_nesting():
    sat, radar = _ds("satellite"), _ds("radar")
    contract.validate_pair(sat, radar)
    with pytest.raises(ContractError, match="radar lon has"):
        contract.validate_pair(sat, radar.isel(lon=slice(0, 10)))


@pytest.mark.parametrize(
    "box",
    [
        {"lat_min": 47.01, "lat_max": 47.09, "lon_min": -122.3, "lon_max": -122.0},  # under one 0.1° cell
        {"lat_min": 48.0, "lat_max": 47.0, "lon_min": -122.3, "lon_max": -122.0},
        {"lat_min": 47.0, "lon_min": -122.3, "lon_max": -122.0},
    ],
)
def test_bad_box_names_the_parameter(box):
    with pytest.raises(ContractError, match="ingestion.box"):
        contract.snap_box(box, name="ingestion.box")
