"""MRMS reader: real GaugeCorr files (decoded once per session), gzip, missing codes and bitmaps in
synthetic GRIB2 messages, and every bad input naming the file."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from precipdiff.data.contract import grid_for_box
from precipdiff.data.errors import ReaderError
from precipdiff.data.mrms import parse_name, read_mrms

SMALL = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}  # inside the synthetic grids

# ---------------------------------------------------------------- real files


def test_real_files_on_the_radar_grid(mrms_real, iowa_box):
    lat, lon = grid_for_box(iowa_box, "radar")
    for path, ds in mrms_real.items():
        assert ds["precipitation"].shape == (1, 260, 520) and ds["precipitation"].dtype == np.float32
        np.testing.assert_array_equal(ds["lat"], lat)  # ascending although the file scans north -> south
        np.testing.assert_array_equal(ds["lon"], lon)  # 265.8..271.0 °E in the file
        assert ds["time"].values[0] == parse_name(path)[1].to_datetime64()
        assert ds.attrs["mrms_product"] == "GaugeCorr_QPE_01H"


def test_real_values_match_eccodes_nearest_point(mrms_real, mrms_real_paths):
    noon = mrms_real[mrms_real_paths[0]]["precipitation"].isel(time=0)
    # eccodes.codes_grib_find_nearest on the 12:00 file: (43.005 N, 267.995 E) -> 3.7 mm, (44.005, 269.995) -> 5.0 mm
    assert float(noon.sel(lat=43.005, lon=-92.005)) == pytest.approx(3.7, abs=1e-5)
    assert float(noon.sel(lat=44.005, lon=-90.005)) == pytest.approx(5.0, abs=1e-5)
    assert 0 <= float(noon.min()) and float(noon.max()) < 200


def test_real_full_conus_codes_become_nan(mrms_real_paths):
    conus = {"lat_min": 20.0, "lat_max": 55.0, "lon_min": -130.0, "lon_max": -60.0}
    values = read_mrms(mrms_real_paths[0], conus)["precipitation"].values
    assert values.shape == (1, 3500, 7000)
    assert np.nanmin(values) >= 0  # no -3 left
    assert np.isnan(values).mean() == pytest.approx(0.35, abs=0.02)  # no-coverage share (shared data README)


def test_gzipped_operational_name_reads_the_same(mrms_real, mrms_real_paths, iowa_box, tmp_path):
    plain = mrms_real_paths[0]
    gz = tmp_path / (plain.name + ".gz")
    gz.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=1))
    np.testing.assert_array_equal(read_mrms(gz, iowa_box)["precipitation"], mrms_real[plain]["precipitation"])


# ---------------------------------------------------------------- synthetic messages


def test_synthetic_field_orientation(make_grib, known_field):
    ds = read_mrms(make_grib(), SMALL)
    lat, lon = grid_for_box(SMALL, "radar")
    np.testing.assert_allclose(ds["precipitation"].values[0], np.round(known_field(lat[:, None], lon[None, :]), 1),
                               atol=1e-4)
    assert ds["time"].values[0] == np.datetime64("2023-01-01T01:00")


@pytest.mark.parametrize("gz", [False, True])
def test_missing_codes_and_bitmap_are_nan(make_grib, gz):
    values = np.full((150, 200), 2.5)
    # grid row 60 is 44.0 - 0.005 - 0.60 = 43.395 N; columns 50..54 are 91.995..91.955 W (west edge of SMALL)
    values[60, 50:55] = [-3.0, -1.0, -999.0, 9999.0, 0.0]  # no coverage, missing x2, bitmap-masked, a real zero
    path = make_grib(values, gz=gz, bitmap_value=9999.0)
    cells = read_mrms(path, SMALL)["precipitation"].isel(time=0).sel(lat=43.395).values
    assert np.isnan(cells[:4]).all() and cells[4] == 0.0 and np.all(cells[5:] == 2.5)


def test_specks_above_the_physical_range_become_missing_but_a_mis_scaled_field_is_refused(make_grib, caplog):
    values = np.full((150, 200), 2.5)
    values[60, 50:52] = 3112.0  # two cells of 3112 mm, as in the real file of 2016-09-22 23:00 (Sierra Nevada)
    ds = read_mrms(make_grib(values), SMALL)
    cells = ds["precipitation"].isel(time=0).sel(lat=43.395).values
    assert np.isnan(cells[:2]).all() and np.all(cells[2:] == 2.5)
    assert "2 decoded rate(s) outside the physical range" in caplog.text and "set to missing" in caplog.text
    values[50:60, 50:70] = 3112.0  # 200 cells: damaged or mis-scaled, not specks
    with pytest.raises(ReaderError, match="202 decoded rate.*damaged or mis-scaled"):
        read_mrms(make_grib(values), SMALL)


def test_precip_rate_product(make_grib):
    ds = read_mrms(make_grib(product="PrecipRate", valid="2023-06-01 12:02"), SMALL)
    assert ds["time"].values[0] == np.datetime64("2023-06-01T12:02")
    assert "instantaneous" in ds["precipitation"].attrs["long_name"]


def test_parse_operational_and_archive_names():
    assert parse_name("MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230101-010000.grib2.gz") == (
        "MultiSensor_QPE_01H_Pass2", pd.Timestamp("2023-01-01 01:00"))
    assert parse_name("GaugeCorr_QPE_01H_00.00_20160920-000000.grib2")[0] == "GaugeCorr_QPE_01H"  # IEM: no prefix


# ---------------------------------------------------------------- bad inputs


def _raises(path, match, box=SMALL):
    with pytest.raises(ReaderError, match=match) as info:
        read_mrms(path, box)
    assert str(path) in str(info.value)


def test_unsupported_product(tmp_path):
    path = tmp_path / "MRMS_MergedReflectivityQCComposite_00.50_20230101-010000.grib2.gz"
    path.write_bytes(b"")
    _raises(path, "unsupported MRMS product 'MergedReflectivityQCComposite'")


def test_name_not_mrms(tmp_path):
    path = tmp_path / "rain.grib2"
    path.write_bytes(b"")
    _raises(path, "file name is not MRMS_")


def test_truncated_grib(make_grib):
    path = make_grib()
    path.write_bytes(path.read_bytes()[:-500])
    _raises(path, "truncated GRIB2 message")


def test_truncated_gzip(make_grib):
    path = make_grib(gz=True)
    path.write_bytes(path.read_bytes()[:200])
    _raises(path, "truncated or corrupt gzip")


def test_not_grib(tmp_path):
    path = tmp_path / "MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230101-010000.grib2"
    path.write_text("<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>")
    _raises(path, "not a GRIB file")


def test_valid_time_differs_from_name(make_grib):
    _raises(make_grib(valid="2023-01-01 01:00", name_time="2023-01-01 02:00"), "GRIB valid time 2023-01-01 01:00:00 "
            "differs from the file name's 2023-01-01 02:00:00")


def test_parameter_differs_from_name(make_grib):
    _raises(make_grib(product="MultiSensor_QPE_01H_Pass2", parameter=9), r"holds parameter \(209, 6, 9\)")


def test_box_outside_grid(make_grib):
    _raises(make_grib(), "not inside the file's lat grid",
            box={"lat_min": 30.0, "lat_max": 30.5, "lon_min": -92.0, "lon_max": -91.0})
