"""Alignment to hours ending at H, on hand-made sequences with hand-computed means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from precipdiff.data.align import halfhours_to_hours, intersect_times, rates_to_hours
from precipdiff.data.contract import ContractError, grid_for_box, make_dataset

BOX = {"lat_min": 43.0, "lat_max": 43.1, "lon_min": -92.0, "lon_max": -91.9}  # one satellite cell


def series(times, values, kind="satellite"):
    """Canonical dataset whose every cell holds ``values[t]`` at ``times[t]``."""
    lat, lon = grid_for_box(BOX, kind)
    data = np.asarray(values, dtype=np.float32)[:, None, None] * np.ones((1, lat.size, lon.size), np.float32)
    return make_dataset(data, pd.DatetimeIndex(times).to_numpy(), lat, lon, kind=kind, source="test")


def test_halfhours_average_the_two_halves_ending_in_the_hour():
    # half hours ending 00:30 01:00 | 01:30 02:00 | 03:00 (02:30 missing) -> hours 01:00, 02:00 kept, 03:00 dropped
    ds = series(["2023-01-01 00:30", "2023-01-01 01:00", "2023-01-01 01:30", "2023-01-01 02:00",
                 "2023-01-01 03:00"], [1.0, 3.0, 5.0, 8.0, 9.0])
    hourly, dropped = halfhours_to_hours(ds)
    assert list(hourly["time"].values) == list(pd.to_datetime(["2023-01-01 01:00", "2023-01-01 02:00"]).to_numpy())
    np.testing.assert_allclose(hourly["precipitation"].values[:, 0, 0], [2.0, 6.5])  # (1+3)/2, (5+8)/2
    assert dropped == 1
    assert hourly["precipitation"].attrs["long_name"].endswith("(hourly mean)")


def test_a_half_hour_ending_on_the_hour_belongs_to_that_hour():
    # 00:00 closes the hour ending 00:00 (its partner 23:30 is absent); 00:30 + 01:00 make 01:00
    hourly, dropped = halfhours_to_hours(series(["2023-01-01 00:00", "2023-01-01 00:30", "2023-01-01 01:00"],
                                                [10.0, 2.0, 4.0]))
    assert hourly["time"].values.tolist() == [pd.Timestamp("2023-01-01 01:00").value]
    assert float(hourly["precipitation"][0, 0, 0]) == 3.0 and dropped == 1


def test_halfhours_propagate_nan():
    hourly, _ = halfhours_to_hours(series(["2023-01-01 00:30", "2023-01-01 01:00"], [np.nan, 4.0]))
    assert np.isnan(hourly["precipitation"].values).all()


def test_halfhours_off_the_half_hour_grid():
    with pytest.raises(ContractError, match=":00/:30"):
        halfhours_to_hours(series(["2023-01-01 00:15"], [1.0]))


def test_rates_hour_covers_h_minus_58_to_h():
    times = pd.date_range("2023-01-01 00:00", "2023-01-01 01:30", freq="2min")  # 00:00 .. 01:30, 46 samples
    values = np.arange(times.size, dtype=float)  # 00:00 -> 0, 00:02 -> 1, …, 01:00 -> 30
    hourly, dropped = rates_to_hours(series(times, values, "radar"))
    # hour ending 01:00 = samples 00:02 .. 01:00 = 1 .. 30 -> mean 15.5; 00:00 alone (hour ending 00:00) and
    # 01:02 .. 01:30 (15 of 30) are incomplete
    assert hourly["time"].values.tolist() == [pd.Timestamp("2023-01-01 01:00").value]
    assert float(hourly["precipitation"][0, 0, 0]) == pytest.approx(15.5)
    assert dropped == 2


def test_rates_min_fraction_keeps_half_hours():
    times = pd.date_range("2023-01-01 01:02", "2023-01-01 01:30", freq="2min")  # 15 of the 30 samples
    hourly, dropped = rates_to_hours(series(times, np.full(times.size, 4.0), "radar"), min_fraction=0.5)
    assert hourly["time"].values.tolist() == [pd.Timestamp("2023-01-01 02:00").value] and dropped == 0
    hourly, dropped = rates_to_hours(series(times, np.full(times.size, 4.0), "radar"), min_fraction=0.6)
    assert hourly.sizes["time"] == 0 and dropped == 1


def test_rates_with_5_minute_steps():
    times = pd.date_range("2023-01-01 00:05", "2023-01-01 01:00", freq="5min")  # 12 samples
    hourly, _ = rates_to_hours(series(times, np.r_[np.zeros(11), 12.0], "radar"), step_minutes=5)
    assert float(hourly["precipitation"][0, 0, 0]) == pytest.approx(1.0)


def test_rates_off_grid_rejected():
    with pytest.raises(ContractError, match="not on the 2-min grid"):
        rates_to_hours(series(["2023-01-01 00:03"], [1.0], "radar"))


def test_intersect_keeps_common_hours():
    sat = series(["2023-01-01 01:00", "2023-01-01 02:00", "2023-01-01 03:00"], [1, 2, 3])
    radar = series(["2023-01-01 02:00", "2023-01-01 03:00", "2023-01-01 04:00"], [5, 6, 7], "radar")
    sat2, radar2 = intersect_times(sat, radar)
    assert sat2["time"].values.tolist() == radar2["time"].values.tolist()
    np.testing.assert_array_equal(sat2["precipitation"].values[:, 0, 0], [2, 3])


def test_intersect_without_overlap_names_both_periods():
    sat = series(["2015-10-01 01:00"], [1.0])
    radar = series(["2016-09-20 00:00", "2016-09-20 01:00"], [1.0, 2.0], "radar")
    with pytest.raises(ContractError, match="share no hour") as info:
        intersect_times(sat, radar)
    assert "2015-10-01 01:00:00 .. 2015-10-01 01:00:00 (1 steps)" in str(info.value)
    assert "2016-09-20 00:00:00 .. 2016-09-20 01:00:00 (2 steps)" in str(info.value)
