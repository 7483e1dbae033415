"""IMERG reader: the real old Early-run file, every GES DISC layout written to spec, and bad inputs."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from precipdiff.data.contract import grid_for_box
from precipdiff.data.errors import ReaderError
from precipdiff.data.files import end_time
from precipdiff.data.imerg import name_start, read_imerg

SMALL = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}  # inside the synthetic files' data

# ---------------------------------------------------------------- the real file (V03E, 2-D, no time axis)


def test_real_file_box_matches_raw_hdf5(imerg_real_path, iowa_box):
    ds = read_imerg(imerg_real_path, iowa_box)
    lat, lon = grid_for_box(iowa_box, "satellite")
    assert ds["precipitation"].shape == (1, lat.size, lon.size) == (1, 26, 52)
    np.testing.assert_array_equal(ds["lat"], lat)
    np.testing.assert_array_equal(ds["lon"], lon)
    # FileHeader StartGranuleDateTime=2015-10-01T00:00:00.000Z -> end of the half hour 00:30
    assert ds["time"].values[0] == np.datetime64("2015-10-01T00:30:00")
    assert "Early" in ds["precipitation"].attrs["source"] and "V03E" in ds["precipitation"].attrs["source"]
    with h5py.File(imerg_real_path) as h5:  # independent lookup: nearest centre in the file's own axes
        i = int(np.argmin(np.abs(h5["Grid/lon"][:] - lon[7])))
        j = int(np.argmin(np.abs(h5["Grid/lat"][:] - lat[3])))
        raw = h5["Grid/precipitationCal"][i, j]
    assert ds["precipitation"].values[0, 3, 7] == pytest.approx(raw if raw >= 0 else np.nan, nan_ok=True)


def test_real_file_global_fill_and_max(imerg_real_path):
    ds = read_imerg(imerg_real_path, {"lat_min": -90, "lat_max": 90, "lon_min": -180, "lon_max": 180})
    values = ds["precipitation"].values
    assert values.shape == (1, 1800, 3600)
    assert int(np.isnan(values).sum()) == 2_160_000  # the file's -9999.9 cells (shared data README)
    assert float(np.nanmax(values)) == pytest.approx(57.2, abs=0.01)


# ---------------------------------------------------------------- synthetic files in each layout


@pytest.mark.parametrize(
    ("layout", "run", "variable"),
    [("v07", "Final V07B", "Grid/precipitation"), ("v06", "Final V06B", "Grid/precipitationCal"),
     ("rt", "Early V07B", "Grid/precipitation"), ("v05_2d", "Late V05B", "Grid/precipitationCal"),
     ("subset", "Final V07B", "precipitation"), ("subset_nodims", "Final V07B", "precipitation"),
     ("subset_desc", "Final V07B", "precipitation")],
)
def test_layouts_read_the_same_field(make_imerg, small_box, known_field, layout, run, variable):
    path = make_imerg(layout, "2023-01-01 01:30")
    ds = read_imerg(path, small_box)
    lat, lon = grid_for_box(small_box, "satellite")
    np.testing.assert_allclose(ds["precipitation"].values[0], known_field(lat[:, None], lon[None, :]), atol=1e-5)
    # time units parsed from the file: 1980-01-06 (V07) and 1970-01-01 (V06) epochs give the same end
    assert list(ds["time"].values) == [np.datetime64("2023-01-01T02:00:00")]
    assert ds["precipitation"].dtype == np.float32
    assert run in ds["precipitation"].attrs["source"] and ds.attrs["imerg_variable"] == variable


def test_fill_value_and_negative_become_nan(make_imerg, known_field):
    path = make_imerg("v07")
    box = {"lat_min": 40.0, "lat_max": 40.3, "lon_min": -96.0, "lon_max": -95.7}  # corner of the written region
    values = read_imerg(path, box)["precipitation"].values[0]
    assert np.isnan(values[0, 0]) and np.isnan(values[1, 1])  # -9999.9 and -1.0 as written
    assert values[0, 1] == pytest.approx(known_field(40.05, -95.85), abs=1e-5)


def test_reads_only_the_box(make_imerg, monkeypatch):
    path = make_imerg("v07")
    shapes = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        out = original(self, key)
        if self.name.endswith("/precipitation"):
            shapes.append(np.shape(out))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    read_imerg(path, SMALL)
    assert shapes == [(1, 10, 5)]  # (time, lon, lat) hyperslab of the 5 x 10 box, not 3600 x 1800


def test_time_ends_half_hour_after_start_for_each_epoch(make_imerg):
    v07 = read_imerg(make_imerg("v07", "2024-02-29 23:30"), SMALL)
    v06 = read_imerg(make_imerg("v06", "2024-02-29 23:30"), SMALL)
    assert v07["time"].values[0] == v06["time"].values[0] == np.datetime64("2024-03-01T00:00")


# ---------------------------------------------------------------- bad inputs name the file and the problem


def test_not_hdf5(tmp_path):
    path = tmp_path / "3B-HHR.MS.MRG.3IMERG.20230101-S000000-E002959.0000.V07B.HDF5"
    path.write_text("<html>Earthdata login required</html>")
    with pytest.raises(ReaderError, match="not an HDF5") as info:
        read_imerg(path, SMALL)
    assert str(path) in str(info.value)


def test_hdf5_without_precipitation_lists_contents(tmp_path):
    path = tmp_path / "3B-HHR.MS.MRG.3IMERG.20230101-S000000-E002959.0000.V07B.HDF5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("Grid/randomError", data=np.zeros((2, 2), np.float32))
    with pytest.raises(ReaderError, match="no precipitation variable") as info:
        read_imerg(path, SMALL)
    assert str(path) in str(info.value) and "Grid/randomError" in str(info.value)


def test_box_outside_subset_grid(make_imerg):
    path = make_imerg("subset")
    with pytest.raises(ReaderError, match="not inside the file's lat grid") as info:
        read_imerg(path, {"lat_min": 10.0, "lat_max": 11.0, "lon_min": -92.0, "lon_max": -91.0})
    assert str(path) in str(info.value)


def test_wrong_units(make_imerg):
    path = make_imerg("v07")
    with h5py.File(path, "r+") as h5:
        h5["Grid/precipitation"].attrs["units"] = np.bytes_("mm/day")
    with pytest.raises(ReaderError, match="units 'mm/day'") as info:
        read_imerg(path, SMALL)
    assert str(path) in str(info.value)


def test_time_variable_disagreeing_with_file_header(make_imerg):
    path = make_imerg("v07", time_offset_s=3600)
    with pytest.raises(ReaderError, match="FileHeader StartGranuleDateTime") as info:
        read_imerg(path, SMALL)
    assert str(path) in str(info.value)


def test_daily_file_refused(make_imerg):
    path = make_imerg("v07", interval="DAY")
    with pytest.raises(ReaderError, match="TimeInterval=DAY"):
        read_imerg(path, SMALL)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such IMERG file"):
        read_imerg(tmp_path / "absent.HDF5", SMALL)


def test_time_units_are_parsed_not_assumed(make_imerg):
    path = make_imerg("v07")
    with h5py.File(path, "r+") as h5:  # same instant, expressed in minutes since another epoch
        minutes = int((pd.Timestamp("2023-01-01 00:00") - pd.Timestamp("2000-01-01")).total_seconds() // 60)
        del h5["Grid/time"].attrs["Units"]
        h5["Grid/time"].attrs["units"] = np.bytes_("minutes since 2000-01-01 00:00:00 UTC")
        h5["Grid/time"][0] = minutes
    assert read_imerg(path, SMALL)["time"].values[0] == np.datetime64("2023-01-01T00:30")


@pytest.mark.parametrize("layout", ["v07", "subset", "v05_2d"])
def test_name_disagreeing_with_content_is_refused(make_imerg, tmp_path, layout):
    """Issue #16: files are selected by name and dated by content; a renamed file must not slip through."""
    made = make_imerg(layout, "2023-01-01 00:00")
    renamed = made.rename(tmp_path / made.name.replace("20230101", "20230102"))
    with pytest.raises(ReaderError) as info:
        read_imerg(renamed, SMALL)
    message = str(info.value)
    assert str(renamed) in message
    assert "name says the half hour starts 2023-01-02 00:00:00" in message
    assert "says 2023-01-01 00:00:00" in message


def test_name_time_is_the_rule_both_for_selection_and_reading(make_imerg):
    path = make_imerg("v07", "2023-01-01 01:30")
    assert name_start(path) == pd.Timestamp("2023-01-01 01:30")
    assert end_time(path) == pd.Timestamp(read_imerg(path, SMALL)["time"].values[0])


@pytest.mark.parametrize("layout", ["v07", "subset"])
def test_swapped_dimension_names_are_refused_as_wrong_order(make_imerg, layout):
    """Issue #16: was refused with a misleading 'box lon … not inside the file's lon grid'."""
    path = make_imerg(layout)
    name = "Grid/precipitation" if layout == "v07" else "precipitation"
    with h5py.File(path, "r+") as h5:
        h5[name].attrs["DimensionNames"] = np.bytes_("time,lat,lon")
    with pytest.raises(ReaderError, match=r"DimensionNames 'time,lat,lon' is in the wrong dimension order: "
                                          r"the axes of shape .* hold \(time, lon, lat\)") as info:
        read_imerg(path, SMALL)
    assert str(path) in str(info.value)
