"""The satellite input of inference: IMERG half hours → hours, canonical NetCDF, and bad inputs."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from precipdiff.data.contract import grid_for_box, make_dataset
from precipdiff.data.errors import ReaderError
from precipdiff.inference.inputs import InputError, check_hours, find_inputs, read_satellite
from tests.inference.imerg_files import imerg_name, write_hours, write_imerg_v07

BOX = {"lat_min": 47.0, "lat_max": 47.4, "lon_min": -122.4, "lon_max": -122.0}
REGION = {"lat_min": 46.5, "lat_max": 48.0, "lon_min": -123.0, "lon_max": -121.5}  # what the files hold
HOURS = pd.date_range("2023-07-01T01:00", periods=3, freq="h")


def field(lat, lon, hour: int) -> np.ndarray:
    """Known rate (mm/h) of hour index ``hour`` at the cell centres."""
    return ((lat[:, None] - 46.0) * 2 + (lon[None, :] + 124.0) + hour).astype(np.float32)


@pytest.fixture
def imerg_dir(tmp_path):
    lat, lon = grid_for_box(REGION, "satellite")
    write_hours(tmp_path / "imerg", HOURS, lat, lon, [field(lat, lon, i) for i in range(len(HOURS))])
    return tmp_path / "imerg"


def test_imerg_half_hours_become_the_hourly_mean_on_the_box(imerg_dir):
    sat, report = read_satellite(find_inputs(imerg_dir), BOX, progress=False)
    lat, lon = grid_for_box(BOX, "satellite")
    assert list(sat["time"].values) == list(HOURS.values)  # hour H = mean of (H-1h, H-30min], (H-30min, H]
    for i in range(3):
        np.testing.assert_allclose(sat["precipitation"].values[i], field(lat, lon, i), rtol=1e-6)
    assert report["kind"] == "IMERG" and report["files"] == 6 and report["hours_dropped_incomplete"] == 0


def test_only_files_of_the_requested_hours_are_read(imerg_dir):
    sat, report = read_satellite(find_inputs(imerg_dir), BOX, start=HOURS[1], end=HOURS[1], progress=False)
    assert list(sat["time"].values) == [HOURS[1].to_datetime64()]
    assert report["files"] == 2 and report["files_skipped_by_name"] == 4


def test_a_missing_half_hour_drops_its_hour_and_reports_it(imerg_dir):
    (imerg_dir / imerg_name(HOURS[1] - pd.Timedelta(minutes=30))).unlink()
    sat, report = read_satellite(find_inputs(imerg_dir), BOX, start=HOURS[0], end=HOURS[2], progress=False)
    assert list(sat["time"].values) == [HOURS[0].to_datetime64(), HOURS[2].to_datetime64()]
    assert report["hours_dropped_incomplete"] == 1 and report["missing_hours"] == [str(HOURS[1])]


def test_imerg_needs_a_box(imerg_dir):
    with pytest.raises(InputError, match="inference.box is required"):
        read_satellite(find_inputs(imerg_dir), None, progress=False)


def test_the_same_half_hour_twice_is_refused_naming_the_files(imerg_dir):
    name = imerg_name(HOURS[0] - pd.Timedelta(minutes=30))
    shutil.copy(imerg_dir / name, imerg_dir / name.replace("3B-HHR.", "3B-HHR-E."))
    with pytest.raises(InputError, match="several files hold the half hour") as info:
        read_satellite(find_inputs(imerg_dir), BOX, progress=False)
    assert name in str(info.value)


def test_all_missing_hours_are_named(tmp_path):
    lat, lon = grid_for_box(REGION, "satellite")
    write_hours(tmp_path, HOURS[:2], lat, lon, [field(lat, lon, 0), np.full((lat.size, lon.size), np.nan)])
    sat, _ = read_satellite(find_inputs(tmp_path), BOX, progress=False)
    with pytest.raises(InputError, match="1 hour") as info:
        check_hours(sat)
    assert str(HOURS[1]) in str(info.value) and str(HOURS[0]) not in str(info.value)


def canonical(tmp_path, box=REGION, hours=HOURS):
    lat, lon = grid_for_box(box, "satellite")
    values = np.stack([field(lat, lon, i) for i in range(len(hours))])
    values[0, 5, 6] = 500.0  # implausible (QC → NaN); the first cell of BOX
    path = tmp_path / "satellite.nc"
    make_dataset(values, hours.values, lat, lon, kind="satellite", source="test").to_netcdf(path)
    return path


def test_canonical_netcdf_is_cropped_to_the_box_and_qc_applied(tmp_path):
    path = canonical(tmp_path)
    sat, report = read_satellite([path], BOX, progress=False)
    lat, lon = grid_for_box(BOX, "satellite")
    np.testing.assert_array_equal(sat["lat"].values, lat)
    np.testing.assert_allclose(sat["precipitation"].values[2], field(lat, lon, 2))
    assert report["kind"] == "canonical NetCDF" and report["qc_cells_above_max_rate"] == 1
    whole, _ = read_satellite([path], None, progress=False)  # no box: the file's extent
    assert whole.sizes["lat"] == 15 and np.isnan(whole["precipitation"].values[0, 5, 6])


def test_box_outside_a_canonical_file_is_named(tmp_path):
    path = canonical(tmp_path)
    with pytest.raises(InputError, match="not inside the file's grid") as info:
        read_satellite([path], {"lat_min": 40.0, "lat_max": 41.0, "lon_min": -122.4, "lon_max": -122.0})
    assert str(path) in str(info.value)


def test_missing_input_and_empty_period(tmp_path, imerg_dir):
    with pytest.raises(InputError, match="does not exist"):
        find_inputs(tmp_path / "nope")
    with pytest.raises(InputError, match="none of the 6 IMERG files"):
        read_satellite(find_inputs(imerg_dir), BOX, start="2030-01-01T01:00", end="2030-01-01T02:00")


def test_file_whose_name_and_content_disagree_is_refused(imerg_dir):
    """Issue #16: downscale selects files by name; a file dated otherwise inside must not be used."""
    first = sorted(imerg_dir.iterdir())[0]
    moved = first.rename(first.with_name(first.name.replace("20230701-S000000-E002959", "20230630-S233000-E235959")))
    with pytest.raises(ReaderError, match="name says the half hour starts 2023-06-30 23:30:00") as info:
        read_satellite(find_inputs(imerg_dir), BOX, progress=False)
    assert moved.name in str(info.value) and "says 2023-07-01 00:00:00" in str(info.value)


def test_one_half_hour_alone_names_the_hour_both_half_hours_and_the_file(tmp_path):
    """Issue #23: a single half hour can never make an hour; the error says which two it needs."""
    lat, lon = grid_for_box(REGION, "satellite")
    start = pd.Timestamp("2023-07-01T00:00")
    path = write_imerg_v07(tmp_path, start, lat, lon, field(lat, lon, 0))
    with pytest.raises(InputError) as info:
        read_satellite(find_inputs(tmp_path), BOX, progress=False)
    message = str(info.value)
    assert "The hour ending 2023-07-01T01:00 needs the half hours starting 00:00 and 00:30" in message
    assert f"found the one starting 2023-07-01T00:00 ({path.name})" in message
    assert "no file for the one starting 2023-07-01T00:30" in message
    assert "labelled by its end" in message


def test_the_second_half_hour_alone_names_the_missing_first(tmp_path):
    lat, lon = grid_for_box(REGION, "satellite")
    path = write_imerg_v07(tmp_path, pd.Timestamp("2023-07-01T00:30"), lat, lon, field(lat, lon, 0))
    with pytest.raises(InputError) as info:
        read_satellite(find_inputs(tmp_path), BOX, progress=False)
    assert (f"The hour ending 2023-07-01T01:00 needs the half hours starting 00:00 and 00:30: found the one "
            f"starting 2023-07-01T00:30 ({path.name}), no file for the one starting 2023-07-01T00:00") in str(info.value)
