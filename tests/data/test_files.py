"""Many-file ingestion: discovery, day grouping, one day end to end, radar-only, 2-min rates,
skipping bad files, day iteration and a distributed scheduler."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from precipdiff.data.errors import ReaderError
from precipdiff.data.files import discover, group_by_day, ingest_day, iter_days, observed_day

SMALL = {"lat_min": 43.0, "lat_max": 43.5, "lon_min": -92.0, "lon_max": -91.0}  # inside the synthetic files


def test_discover_sorted_and_errors(tmp_path):
    (tmp_path / "b.grib2").write_bytes(b"")
    (tmp_path / "a.grib2").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert [p.name for p in discover(tmp_path, "*.grib2")] == ["a.grib2", "b.grib2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReaderError, match="no files match") as info:
        discover(empty, "*.grib2.gz")
    assert str(empty) in str(info.value)
    with pytest.raises(ReaderError, match="does not exist; expected a directory"):
        discover(tmp_path / "absent")


def test_day_of_a_file_is_the_day_its_data_were_observed():
    d = dt.date(2023, 1, 1)
    assert observed_day("3B-HHR.MS.MRG.3IMERG.20230101-S000000-E002959.0000.V07B.HDF5") == d
    assert observed_day("3B-HHR.MS.MRG.3IMERG.20230101-S233000-E235959.1410.V07B.HDF5") == d  # ends 24:00
    assert observed_day("MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230102-000000.grib2.gz") == d  # rain of 23-24 h
    assert observed_day("MRMS_MultiSensor_QPE_01H_Pass2_00.00_20230102-010000.grib2.gz") == d + dt.timedelta(1)
    assert observed_day("MRMS_PrecipRate_00.00_20230102-000200.grib2.gz") == d + dt.timedelta(1)
    groups = group_by_day(["MRMS_PrecipRate_00.00_20230102-000200.grib2.gz",
                           "MRMS_PrecipRate_00.00_20230102-000000.grib2.gz"])
    assert list(groups) == [d, d + dt.timedelta(1)]


def test_ingest_day_aligns_satellite_and_radar(make_imerg, make_grib, known_field):
    imerg = [make_imerg("v07", f"2023-01-01 {hhmm}") for hhmm in ("00:00", "00:30", "01:00", "01:30", "02:00")]
    mrms = [make_grib(valid=f"2023-01-01 {hhmm}") for hhmm in ("01:00", "02:00", "02:30", "03:00")]
    sat, radar, report = ingest_day(imerg, mrms, SMALL, scheduler="synchronous")
    hours = pd.to_datetime(["2023-01-01 01:00", "2023-01-01 02:00"]).to_numpy()
    assert list(sat["time"].values) == list(radar["time"].values) == list(hours)
    lat, lon = sat["lat"].values, sat["lon"].values
    np.testing.assert_allclose(sat["precipitation"].values[0], known_field(lat[:, None], lon[None, :]), atol=1e-5)
    assert radar["precipitation"].shape == (2, 50, 100)
    assert report["mrms_files_off_the_hour"] == 1  # the 02:30 file
    assert report["hours_dropped_incomplete_halfhours"] == 1  # 02:00-02:30 alone -> hour ending 03:00
    assert report["hours"] == 2 and report["errors"] == {}


def test_radar_only_with_threads(make_grib):
    mrms = [make_grib(valid=f"2023-01-01 {h:02d}:00") for h in range(1, 4)]
    sat, radar, report = ingest_day([], mrms, SMALL)
    assert sat is None and radar.sizes["time"] == 3 and report["imerg_files"] == 0


def test_precip_rate_averaged_to_complete_hours(make_grib):
    times = pd.date_range("2023-01-01 00:02", "2023-01-01 01:10", freq="2min")  # hour ending 01:00 + 5 samples
    mrms = [make_grib(np.full((150, 200), float(i % 4)), product="PrecipRate", valid=t) for i, t in enumerate(times)]
    _, radar, report = ingest_day([], mrms, SMALL)
    assert radar["time"].values.tolist() == [pd.Timestamp("2023-01-01 01:00").value]
    # values cycle 0,1,2,3 over the first 30 samples: 7 full cycles (sum 42) + 0 + 1 -> 43 / 30
    np.testing.assert_allclose(radar["precipitation"].values, 43 / 30, rtol=1e-6)
    assert report["hours_dropped_incomplete_rates"] == 1


def test_unreadable_file_skipped_and_reported(make_grib):
    good = [make_grib(valid="2023-01-01 01:00"), make_grib(valid="2023-01-01 02:00")]
    bad = make_grib(valid="2023-01-01 03:00")
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(ReaderError, match="truncated"):
        ingest_day([], [*good, bad], SMALL, scheduler="synchronous")
    _, radar, report = ingest_day([], [*good, bad], SMALL, scheduler="synchronous", on_error="skip")
    assert radar.sizes["time"] == 2 and list(report["errors"]) == [str(bad)]


def test_mixed_products_refused(make_grib):
    paths = [make_grib(valid="2023-01-01 01:00"), make_grib(product="RadarOnly_QPE_01H", valid="2023-01-01 02:00")]
    with pytest.raises(ReaderError, match="mix products"):
        ingest_day([], paths, SMALL)


def test_iter_days_one_day_at_a_time(make_grib, make_imerg):
    mrms = [make_grib(valid=t) for t in ("2023-01-01 12:00", "2023-01-02 00:00", "2023-01-02 12:00",
                                         "2023-01-03 12:00")]
    days = iter_days([], mrms, SMALL, skip_days=["2023-01-03"], scheduler="synchronous")
    sat, radar, report = next(days)  # a generator: nothing of the next day is read yet
    assert sat is None and report["day"] == "2023-01-01" and radar.sizes["time"] == 2  # 12:00 and 24:00
    assert [r["day"] for _, _, r in days] == ["2023-01-02"]
    # with IMERG, a day lacking satellite files is skipped
    imerg = [make_imerg("v07", "2023-01-02 11:00"), make_imerg("v07", "2023-01-02 11:30")]
    assert [r["day"] for _, _, r in iter_days(imerg, mrms, SMALL, scheduler="synchronous")] == ["2023-01-02"]


def test_iter_days_on_a_distributed_scheduler(make_grib):
    distributed = pytest.importorskip("distributed")
    mrms = [make_grib(valid=f"2023-01-01 {h:02d}:00") for h in (1, 2)]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        out = list(iter_days([], mrms, SMALL, scheduler=cluster.scheduler_address))
    assert len(out) == 1 and out[0][1].sizes["time"] == 2


def test_real_files_radar_only(mrms_real_paths, iowa_box):
    _, radar, report = ingest_day([], mrms_real_paths, iowa_box)
    assert radar.sizes == {"time": 2, "lat": 260, "lon": 520} and report["mrms_product"] == "GaugeCorr_QPE_01H"
