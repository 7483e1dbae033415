import numpy as np
import pandas as pd
import pytest

from precipdiff.data import boxes as bx
from precipdiff.data import contract
from precipdiff.pipelines.preprocessing import nodes


def test_split_is_chronological_with_gap_and_no_shared_hour():
    times = pd.date_range("2022-01-01", periods=100, freq="h").values
    table = nodes.split_hours(times, {"train": 0.6, "validation": 0.2, "test": 0.2}, gap_hours=5)
    order = {"train": 0, "validation": 1, "test": 2}
    kept = table[table.split != "gap"]
    assert (np.diff(kept.split.map(order).to_numpy()) >= 0).all()  # train < validation < test in time
    assert kept.time.is_unique
    assert (table.split == "gap").sum() == 10
    for a, b in (("train", "validation"), ("validation", "test")):
        gap = table[table.split == b].time.min() - table[table.split == a].time.max()
        assert gap == pd.Timedelta(hours=6)  # 5 dropped hours between the two segments
    assert (table.split == "train").sum() == 60


@pytest.mark.parametrize("fractions", [{"train": 0.7, "validation": 0.2, "test": 0.2},
                                       {"train": 0.7, "valid": 0.3}])
def test_split_fractions_must_sum_to_one(fractions):
    times = pd.date_range("2022-01-01", periods=10, freq="h").values
    with pytest.raises(ValueError, match="preprocessing.split.fractions"):
        nodes.split_hours(times, fractions, 0)


def test_patch_index_counts_wet_fraction_like_a_loop():
    rng = np.random.default_rng(0)
    target = np.log1p(rng.gamma(0.3, 2.0, size=(3, 40, 50))).astype(np.float32)
    target[1, :5, :5] = np.nan
    idx = nodes.patch_index(target, pd.date_range("2022", periods=3, freq="h"), ["train"] * 3,
                            size=16, stride=8, wet_mm_h=0.5, transform="log1p")
    assert set(idx.row) == {0, 8, 16, 24} and set(idx.col) == {0, 8, 16, 24, 32, 34}
    for rec in idx.sample(10, random_state=0).itertuples():
        patch = target[rec.sample_index, rec.row : rec.row + 16, rec.col : rec.col + 16]
        assert rec.wet_fraction == pytest.approx((patch >= np.log1p(0.5)).mean(), abs=1e-6)
        assert rec.valid_fraction == pytest.approx(np.isfinite(patch).mean(), abs=1e-6)


def test_crop_to_common_nests_and_intersects_hours():
    box_s = {"lat_min": 47.0, "lat_max": 47.5, "lon_min": -122.5, "lon_max": -122.0}
    box_r = {"lat_min": 47.1, "lat_max": 47.6, "lon_min": -122.6, "lon_max": -122.1}
    t = pd.date_range("2022-01-01", periods=4, freq="h").values
    sat = contract.make_dataset(np.ones((4, 5, 5)), t, *contract.grid_for_box(box_s, "satellite"),
                                kind="satellite", source="s")
    rad = contract.make_dataset(np.ones((3, 50, 50)), t[1:], *contract.grid_for_box(box_r, "radar"),
                                kind="radar", source="r")
    s, r = nodes.crop_to_common(sat, rad)  # as the stack of the one box
    assert s.sizes == {"sample": 3, "y": 4, "x": 4} and r.sizes == {"sample": 3, "y": 40, "x": 40}
    assert s.lat.values[0, 0] == pytest.approx(47.15)
    assert (s.time.values == t[1:]).all() and set(s.box.values) == {"box"} and set(s.box_number.values) == {0}


def test_quality_control_counts_and_masks():
    t = pd.date_range("2022-01-01", periods=1, freq="h").values
    box = {"lat_min": 47.0, "lat_max": 47.1, "lon_min": -122.1, "lon_max": -122.0}
    vals = np.zeros((1, 10, 10), np.float32)
    ds = contract.make_dataset(vals, t, *contract.grid_for_box(box, "radar"), kind="radar", source="r")
    raw = ds.precipitation.values.copy()
    raw[0, 0, :3] = [-3.0, -9999.9, 400.0]
    ds = ds.copy(data={"precipitation": raw})
    sat = ds.coarsen(lat=10, lon=10).mean()
    _, out, report = nodes.quality_control(sat, ds, {"qc": {"max_rate_mm_h": 300}})
    assert np.isnan(out.precipitation.values[0, 0, :3]).all()
    assert report.set_index("dataset").loc["radar", ["negative_or_fill", "implausible"]].tolist() == [2, 1]


def _box_hours():
    """A satellite/radar stack pair of two boxes and three hours (box r00c01 misses hour 2)."""
    regions = {"a": {"lat_min": 40, "lat_max": 50, "lon_min": -100, "lon_max": -91.6},
               "b": {"lat_min": 40, "lat_max": 50, "lon_min": -91.6, "lon_max": -80}}
    layout = bx.layout({"lat_min": 42.0, "lat_max": 42.4, "lon_min": -92.0, "lon_max": -91.2}, 40, regions)
    hours = pd.date_range("2022-01-01T01", periods=3, freq="h").values
    chosen = [(t, b) for t in hours for b in layout if not (b.name == "r00c01" and t == hours[1])]
    rng = np.random.default_rng(1)
    radar = rng.gamma(0.5, 2.0, size=(len(chosen), 40, 40)).astype(np.float32)
    radar[0, :3, :3] = np.nan  # a radar gap: masked, never filled
    times, boxes = [c[0] for c in chosen], [c[1] for c in chosen]
    sat = bx.make_stack(radar.reshape(-1, 4, 10, 4, 10).mean(axis=(2, 4)), times, boxes, kind="satellite", source="s")
    return sat, bx.make_stack(radar, times, boxes, kind="radar", source="r")


def test_box_hours_go_through_preprocessing_with_their_split_and_region():
    sat, radar = _box_hours()
    params = {"pooling": "max", "pool_max_missing": 0.5, "transform": "log1p", "upsampling": "bilinear",
              "split": {"fractions": {"train": 0.34, "validation": 0.33, "test": 0.33}, "gap_hours": 0},
              "patches": {"wet_threshold_mm_h": 0.1, "coarse": {"size": 4, "stride": 2},
                          "fine": {"size": 20, "stride": 20}}}
    s, r = nodes.crop_to_common(sat, radar)
    pooled = nodes.pool_radar(r, params)
    assert pooled.sizes == {"sample": 5, "y": 4, "x": 4}
    np.testing.assert_allclose(pooled.lat.values[:, 0], s.lat.values[:, 0])
    splits = nodes.make_splits(s, params)
    assert splits.split.tolist() == ["train", "validation", "test"]  # three hours, however many boxes each
    coarse, fine = nodes.build_model_inputs(s, pooled, r, splits, params)
    assert fine["split"].values.tolist() == ["train", "train", "validation", "test", "test"]
    assert fine["region"].values.tolist() == ["a", "b", "a", "a", "b"]
    assert np.isnan(fine["radar"].values[0, :3, :3]).all() and np.isfinite(fine["radar"].values[1:]).all()
    _, patches = nodes.build_patch_indices(coarse, fine, params)
    assert len(patches) == 5 * 4 and set(patches["region"]) == {"a", "b"}
    first = patches[(patches.sample_index == 0) & (patches.row == 0) & (patches.col == 0)].iloc[0]
    assert first.valid_fraction == pytest.approx(1 - 9 / 400)
