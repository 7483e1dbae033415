"""Boxes of a large domain and stacks of box-hours (precipdiff.data.boxes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from precipdiff.data import boxes as bx
from precipdiff.data import contract
from precipdiff.data.contract import ContractError
from precipdiff.seeds import BOX_KEY_STRIDE, hour_keys, sample_keys

REGIONS = {"west": {"lat_min": 40.0, "lat_max": 50.0, "lon_min": -100.0, "lon_max": -91.4},
           "east": {"lat_min": 40.0, "lat_max": 50.0, "lon_min": -91.4, "lon_max": -80.0}}
EXTENT = {"lat_min": 42.0, "lat_max": 42.85, "lon_min": -92.0, "lon_max": -90.9}  # 0.8° x 1.1° once snapped


def test_layout_tiles_the_extent_and_names_regions_by_centre():
    boxes = bx.layout(EXTENT, 40, REGIONS)
    assert [b.name for b in boxes] == ["r00c00", "r00c01", "r01c00", "r01c01"]  # 2 x 2 boxes of 0.4°; 0.3° left over
    assert [b.number for b in boxes] == [1, 2, 3, 4]
    assert boxes[3].bounds == {"lat_min": 42.4, "lat_max": 42.8, "lon_min": -91.6, "lon_max": -91.2}
    # centres at lon -91.8 (west) and -91.4 (the east edge is inclusive of its low bound)
    assert [b.region for b in boxes] == ["west", "east", "west", "east"]
    only_east = bx.layout(EXTENT, 40, REGIONS, ["east"])
    assert [b.name for b in only_east] == ["r00c01", "r01c01"]
    assert bx.bounding_box(only_east) == {"lat_min": 42.0, "lat_max": 42.8, "lon_min": -91.6, "lon_max": -91.2}


@pytest.mark.parametrize("cells", [0, 25, 40.5])
def test_layout_refuses_boxes_that_do_not_nest_whole_satellite_cells(cells):
    with pytest.raises(ContractError, match="box_cells"):
        bx.layout(EXTENT, cells, REGIONS)


def test_layout_names_an_unknown_region():
    with pytest.raises(ContractError, match="north"):
        bx.layout(EXTENT, 40, REGIONS, ["north"])


def test_cut_takes_each_box_from_the_field():
    lat, lon = contract.grid_for_box(EXTENT, "radar")
    field = lat[:, None] * 1000 + lon[None, :]  # each cell knows where it is
    boxes = bx.layout(EXTENT, 40, REGIONS)
    windows = bx.cut(field[None], lat, lon, boxes, "radar")
    assert windows.shape == (1, 4, 40, 40)
    for k, b in enumerate(boxes):
        blat, blon = contract.grid_for_box(b.bounds, "radar")
        np.testing.assert_allclose(windows[0, k], blat[:, None] * 1000 + blon[None, :])


def test_keep_hours_counts_wet_cells_among_covered_ones():
    fields = np.zeros((4, 10, 10), np.float32)
    fields[0, :1] = 1.0                    # 10 % wet, fully covered: kept
    fields[1, :1] = 1.0; fields[1, 9] = np.nan  # 10 % missing: coverage 0.9, wet 10/90: kept  # noqa: E702
    fields[2, :1] = 1.0; fields[2, 8:] = np.nan  # coverage 0.8: dropped  # noqa: E702
    fields[3, 0, :4] = 1.0                 # 4 % wet: dropped
    keep, coverage, wet = bx.keep_hours(fields, 0.9, 0.05, 0.1)
    assert keep.tolist() == [True, True, False, False]
    np.testing.assert_allclose(coverage, [1.0, 0.9, 0.8, 1.0])
    np.testing.assert_allclose(wet, [0.1, 10 / 90, 10 / 80, 0.04])


def _stack(values_by_box: dict, hours: list[str], kind: str = "radar"):
    boxes = {b.name: b for b in bx.layout(EXTENT, 40, REGIONS)}
    values, times, chosen = [], [], []
    for name, per_hour in values_by_box.items():
        for hour, v in zip(hours, per_hour):
            values.append(v)
            times.append(np.datetime64(hour))
            chosen.append(boxes[name])
    return bx.make_stack(np.stack(values), np.array(times), chosen, kind=kind, source="test")


def test_stack_orders_box_hours_and_gives_each_box_back_as_canonical_data():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 40, 40)), rng.random((2, 40, 40))
    stack = _stack({"r01c01": b, "r00c00": a}, ["2022-01-01T01", "2022-01-01T02"])
    assert stack["box"].values.tolist() == ["r00c00", "r01c01", "r00c00", "r01c01"]  # (time, box number)
    assert stack["region"].values.tolist() == ["west", "east", "west", "east"]
    one = bx.box_dataset(stack, "r01c01", "radar")
    contract.validate(one, "radar")
    np.testing.assert_allclose(one.precipitation.values, b.astype(np.float32))
    assert one.lat.values[0] == pytest.approx(42.405)
    keys = bx.keys(stack)
    assert len(set(keys)) == 4
    assert keys[1] - keys[0] == (4 - 1) * BOX_KEY_STRIDE  # same hour, boxes 1 and 4


def test_a_box_hour_twice_is_refused():
    v = np.zeros((40, 40))
    with pytest.raises(ContractError, match="twice"):
        _stack({"r00c00": [v, v]}, ["2022-01-01T01", "2022-01-01T01"])


def test_one_box_run_keeps_its_hour_keys():
    times = pd.date_range("2022-10-01T01:00", periods=3, freq="h").values
    assert sample_keys(times, [0, 0, 0]) == hour_keys(times)
    ds = contract.make_dataset(np.ones((3, 20, 20)), times, *contract.grid_for_box(EXTENT | {"lat_max": 42.2,
                               "lon_max": -91.8}, "radar"), kind="radar", source="s")
    stack = bx.to_stack(ds, bx.box_of(ds, "seattle", "radar"))
    bx.validate_stack(stack, "radar")
    assert bx.keys(stack).tolist() == hour_keys(times)
    assert stack["box"].values.tolist() == ["seattle"] * 3


def test_stack_pair_must_nest():
    sat = _stack({"r00c00": np.zeros((1, 4, 4))}, ["2022-01-01T01"], kind="satellite")
    radar = _stack({"r00c00": np.zeros((1, 40, 40))}, ["2022-01-01T01"])
    bx.validate_stack_pair(sat, radar)
    other = _stack({"r00c01": np.zeros((1, 40, 40))}, ["2022-01-01T01"])
    with pytest.raises(ContractError, match="different box"):
        bx.validate_stack_pair(sat, other)
