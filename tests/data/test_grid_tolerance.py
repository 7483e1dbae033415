"""Tolerant grid matching (``contract.GRID_TOLERANCE``, 1 % of a cell) in both readers, on files written
here with jittered origins: GRIB2 with eccodes (both scan directions, 0–360 longitudes, PNG and complex
packing) and IMERG HDF5 with h5py (lat descending, lon 0–360)."""

from __future__ import annotations

import eccodes
import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from precipdiff.data.contract import GRID_TOLERANCE, grid_for_box
from precipdiff.data.errors import ReaderError
from precipdiff.data.imerg import read_imerg
from precipdiff.data.mrms import read_mrms

BOX = {"lat_min": 43.0, "lat_max": 43.2, "lon_min": -92.0, "lon_max": -91.7}  # 20 x 30 radar, 2 x 3 satellite
MICRO = 1e-6


def field(lat, lon):
    """Known rate (mm/h, 0.1 mm steps) at the canonical centres, so a shifted read shows."""
    return np.round((np.asarray(lat) - 40.0) * 10 + (np.asarray(lon) + 100.0), 1)


# ---------------------------------------------------------------- MRMS GRIB2


def write_grib(path, *, jitter_micro=(0, 0), south_to_north=False, west_to_east=True, packing="grid_png",
               missing_at=None):
    """GRIB2 (209/6/37) on 43.0–43.2 N × 92.0–91.7 W plus a margin, origin shifted by ``jitter_micro``
    (lat, lon) micro-degrees; longitudes 0–360 as MRMS writes them. ``missing_at`` (row, col) of the
    canonical-order field is written as the missing value (complex packing with missing management)."""
    lat = np.round(42.955 + 0.01 * np.arange(30), 3)  # 42.955 .. 43.245, ascending
    lon = np.round(-92.045 + 0.01 * np.arange(40), 3)
    values = field(lat[:, None], lon[None, :])
    if missing_at is not None:
        values[missing_at] = 9999.0
    lat, values = (lat, values) if south_to_north else (lat[::-1], values[::-1])
    lon, values = (lon, values) if west_to_east else (lon[::-1], values[:, ::-1])
    lat0 = round(lat[0] + jitter_micro[0] * MICRO, 6)
    lon0 = round(lon[0] % 360 + jitter_micro[1] * MICRO, 6)
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    keys = [("centre", 161), ("discipline", 209), ("parameterCategory", 6), ("parameterNumber", 37),
            ("jScansPositively", int(south_to_north)), ("iScansNegatively", int(not west_to_east)),
            ("Ni", lon.size), ("Nj", lat.size),
            ("latitudeOfFirstGridPointInDegrees", lat0), ("longitudeOfFirstGridPointInDegrees", lon0),
            ("latitudeOfLastGridPointInDegrees", round(lat[-1] + jitter_micro[0] * MICRO, 6)),
            ("longitudeOfLastGridPointInDegrees", round(lon[-1] % 360 + jitter_micro[1] * MICRO, 6)),
            ("iDirectionIncrementInDegrees", 0.01), ("jDirectionIncrementInDegrees", 0.01),
            ("dataDate", 20230101), ("dataTime", 100), ("packingType", packing), ("decimalScaleFactor", 1), ("bitsPerValue", 16)]
    for key, value in keys:
        eccodes.codes_set(handle, key, value)
    if missing_at is not None:
        eccodes.codes_set(handle, "missingValueManagementUsed", 1)
        eccodes.codes_set(handle, "missingValue", 9999.0)
    eccodes.codes_set_values(handle, values.ravel())
    path.write_bytes(eccodes.codes_get_message(handle))
    eccodes.codes_release(handle)
    return path


def _grib_path(tmp_path):
    return tmp_path / "MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230101-010000.grib2"


def _expected_radar():
    lat, lon = grid_for_box(BOX, "radar")
    return field(lat[:, None], lon[None, :])


@pytest.mark.parametrize("south_to_north", [False, True], ids=["lat-descending", "lat-ascending"])
@pytest.mark.parametrize("west_to_east", [True, False], ids=["lon-ascending", "lon-descending"])
@pytest.mark.parametrize("jitter", [(0, 4), (-7, 3), (100, -100)], ids=["230.005004", "mixed", "at-tolerance"])
def test_mrms_jittered_origin_reads_the_canonical_cells(tmp_path, jitter, south_to_north, west_to_east):
    path = write_grib(_grib_path(tmp_path), jitter_micro=jitter, south_to_north=south_to_north,
                      west_to_east=west_to_east)
    ds = read_mrms(path, BOX)
    np.testing.assert_allclose(ds["precipitation"].values[0], _expected_radar(), atol=1e-4)
    np.testing.assert_array_equal(ds["lon"], grid_for_box(BOX, "radar")[1])  # canonical, not the jittered ones


def test_mrms_complex_packing_missing_becomes_nan_after_snapping(tmp_path):
    # as the old archive files: complex packing with missing-value management and a jittered origin
    path = write_grib(_grib_path(tmp_path), jitter_micro=(0, 4), packing="grid_complex_spatial_differencing",
                      missing_at=(10, 10))  # canonical cell (43.055 N, 91.945 W) = box row 5, column 5
    values = read_mrms(path, BOX)["precipitation"].values[0]
    expected = _expected_radar()
    expected[5, 5] = np.nan
    np.testing.assert_allclose(values, expected, atol=1e-4)


@pytest.mark.parametrize("jitter, axis, measured", [((0, 150), "lon", "0.000150° (1.5 % of a cell)"),
                                                    ((-5000, 0), "lat", "0.005000° (50.0 % of a cell)")])
def test_mrms_origin_beyond_tolerance_is_refused_with_the_offset(tmp_path, jitter, axis, measured):
    path = write_grib(_grib_path(tmp_path), jitter_micro=jitter)
    with pytest.raises(ReaderError) as info:
        read_mrms(path, BOX)
    message = str(info.value)
    assert message.startswith(str(path)) and f"{axis} cell centres of the box are {measured} off" in message
    assert "expected within 1% of a cell" in message


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jitter=st.integers(-300, 300))
def test_mrms_accepts_exactly_the_jitter_within_tolerance(tmp_path, jitter):
    path = write_grib(_grib_path(tmp_path), jitter_micro=(jitter, -jitter))
    if abs(jitter) <= GRID_TOLERANCE * 10_000:  # 1 % of 0.01° = 100 micro-degrees
        np.testing.assert_allclose(read_mrms(path, BOX)["precipitation"].values[0], _expected_radar(), atol=1e-4)
    else:
        with pytest.raises(ReaderError, match=rf"{abs(jitter) / 1e6:.6f}° \({abs(jitter) / 100:.1f} % of a cell\)"):
            read_mrms(path, BOX)


# ---------------------------------------------------------------- IMERG HDF5

IMERG_NAME = "3B-HHR.MS.MRG.3IMERG.20230101-S000000-E002959.0000.V07B.HDF5"


def write_imerg(path, *, jitter_deg=(0.0, 0.0), lat_descending=False, lon_360=False):
    """Regional V07-like HDF5: Grid/precipitation (time, lon, lat), float32 coordinates shifted by
    ``jitter_deg``, lat optionally descending, lon optionally in 0–360."""
    lat = np.round(42.55 + 0.1 * np.arange(10), 2)
    lon = np.round(-92.45 + 0.1 * np.arange(10), 2)
    values = field(lat[None, :], lon[:, None])  # (lon, lat)
    if lat_descending:
        lat, values = lat[::-1], values[:, ::-1]
    stored_lon = lon % 360 if lon_360 else lon
    with h5py.File(path, "w") as h5:
        grid = h5.create_group("Grid")
        grid["lat"] = (lat + jitter_deg[0]).astype(np.float32)
        grid["lon"] = (stored_lon + jitter_deg[1]).astype(np.float32)
        grid["time"] = np.array([int((pd.Timestamp("2023-01-01") - pd.Timestamp("1980-01-06")).total_seconds())])
        grid["time"].attrs["units"] = np.bytes_("seconds since 1980-01-06 00:00:00 UTC")
        var = grid.create_dataset("precipitation", data=values[np.newaxis].astype(np.float32))
        var.attrs["DimensionNames"] = np.bytes_("time,lon,lat")
        var.attrs["units"] = np.bytes_("mm/hr")
    return path


def _expected_satellite():
    lat, lon = grid_for_box(BOX, "satellite")
    return field(lat[:, None], lon[None, :])


@pytest.mark.parametrize("lat_descending", [False, True], ids=["lat-ascending", "lat-descending"])
@pytest.mark.parametrize("lon_360", [False, True], ids=["lon-180", "lon-0-360"])
@pytest.mark.parametrize("jitter", [(0.0, 0.0004), (-0.0009, 0.0009)], ids=["0.4%", "0.9%"])
def test_imerg_jittered_axes_read_the_canonical_cells(tmp_path, jitter, lat_descending, lon_360):
    path = write_imerg(tmp_path / IMERG_NAME, jitter_deg=jitter, lat_descending=lat_descending, lon_360=lon_360)
    ds = read_imerg(path, BOX)
    np.testing.assert_allclose(ds["precipitation"].values[0], _expected_satellite(), atol=1e-4)
    np.testing.assert_array_equal(ds["lat"], grid_for_box(BOX, "satellite")[0])


@pytest.mark.parametrize("jitter, axis, measured", [((0.0, 0.002), "lon", "(2.0 % of a cell)"),
                                                    ((0.05, 0.0), "lat", "(50.0 % of a cell)")])
def test_imerg_axis_beyond_tolerance_is_refused_with_the_offset(tmp_path, jitter, axis, measured):
    path = write_imerg(tmp_path / IMERG_NAME, jitter_deg=jitter, lat_descending=True)
    with pytest.raises(ReaderError) as info:
        read_imerg(path, BOX)
    message = str(info.value)
    assert message.startswith(str(path)) and f"{axis} cell centres of the box are" in message
    assert measured in message and "expected the 0.1° grid within 1% of a cell" in message


def test_imerg_box_beyond_the_file_is_outside_not_off_grid(tmp_path):
    path = write_imerg(tmp_path / IMERG_NAME, lon_360=True)
    with pytest.raises(ReaderError, match=r"box lon -95.00..-94.00 is not inside the file's lon grid "
                                          r"\(centres -92.45..-91.55\)"):
        read_imerg(path, {"lat_min": 43.0, "lat_max": 43.2, "lon_min": -95.0, "lon_max": -94.0})
