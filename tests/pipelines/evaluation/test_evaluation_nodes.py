"""Evaluation nodes on hand-made arrays: hour selection, training-only baselines, scores, flags."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.pipelines.evaluation import flags, methods, nodes
from precipdiff.pipelines.evaluation.scores import MethodScores, ScoreConfig, Scoreboard
from precipdiff.verification import tidy
from tests.stacks import model_input

FIG = {"sample_hours": 2}


@pytest.fixture(scope="module")
def inputs():
    """12 hours (6 train, 6 test) on 3 × 3 coarse / 30 × 30 fine cells, log1p units; test hour k rains k mm/h."""
    rng = np.random.default_rng(0)
    t, split = 12, np.array(["train"] * 6 + ["test"] * 6)
    times = pd.date_range("2022-10-01T01:00", periods=t, freq="h").values
    rate_f = rng.gamma(0.5, 2.0, (t, 30, 30)).astype(np.float32)
    rate_f[6:] = np.arange(6, dtype=np.float32)[:, None, None]  # test hours: uniform k mm/h
    rate_f[:6] *= 100.0  # training radar 100× wetter than anything in the test period
    rate_c = rate_f.reshape(t, 3, 10, 3, 10).max(axis=(2, 4))
    sat = rate_c * 0.5
    coarse = model_input({"satellite": np.log1p(sat), "radar": np.log1p(rate_c)}, np.array([47.05, 47.15, 47.25]),
                         np.array([-122.35, -122.25, -122.15]), split, times=times)
    fine = model_input({"radar": np.log1p(rate_f)}, 47.005 + 0.01 * np.arange(30), -122.395 + 0.01 * np.arange(30),
                       split, times=times)
    return coarse, fine


def test_select_wettest_and_evenly_spaced(inputs):
    coarse, fine = inputs
    hours = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": 3, "selection": "wettest"}, "figures": FIG})
    assert hours["sample_index"].tolist() == [9, 10, 11]  # the three wettest test hours, in time order
    np.testing.assert_allclose(hours["radar_mean_mm_h"], [3, 4, 5], rtol=1e-5)
    assert hours["sample"].tolist() == [False, True, True]
    spaced = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": 3, "selection": "evenly_spaced"},
                                                    "figures": FIG})
    assert spaced["sample_index"].tolist() == [6, 8, 11]
    everything = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": None}, "figures": FIG})
    assert len(everything) == 6
    with pytest.raises(ValueError, match="no 'test' hour"):
        nodes.select_test_hours(coarse.assign_coords(split=("sample", ["train"] * 12)), fine,
                                {"hours": {}, "figures": FIG})


def test_baselines_fitted_on_training_split_only(inputs):
    coarse, fine = inputs
    params = {"qm": {"n_quantiles": 50, "wet_threshold_mm_h": 0.1},
              "rainfarm": {"alpha": "fit", "alpha_fit_hours": 4, "alpha_min_km": 2.0}}
    out = nodes.fit_baselines(coarse, fine, params)
    train_max = np.expm1(fine["radar"].values[:6]).max()
    assert out["train_hours"] == 6
    assert max(out["qm_fine"]["radar_knots"]) == pytest.approx(train_max, rel=1e-5)  # training radar, not test
    assert max(out["qm_coarse"]["radar_knots"]) == pytest.approx(np.expm1(coarse["radar"].values[:6]).max(), rel=1e-5)
    assert np.isfinite(out["rainfarm_alpha"]) and out["qm_fine_fit_seconds"] > 0  # the cost experiment's QM time
    assert nodes.fit_baselines(coarse, fine, {**params, "rainfarm": {"alpha": 1.5}})["rainfarm_alpha"] == 1.5


def test_satellite_fields_share_pixels_with_the_radar(inputs):
    coarse, fine = inputs
    hours = pd.DataFrame({"sample_index": [6, 7, 8]})
    chunks = list(methods.iter_chunks(coarse, fine, hours, chunk_hours=2))
    assert [len(c.times) for c in chunks] == [2, 1]
    fields = methods.satellite_fields(chunks[0])
    assert fields["satellite_nearest"].shape == chunks[0].radar.shape == (2, 30, 30)
    np.testing.assert_allclose(fields["satellite_nearest"][:, :10, :10], chunks[0].sat[:, :1, :1] * np.ones((1, 10, 10)),
                               rtol=1e-5)


def test_point_forecast_crps_is_mae_and_clipping_is_counted():
    rng = np.random.default_rng(1)
    obs = rng.gamma(0.5, 2.0, (3, 8, 8))
    fcst = obs + rng.normal(0, 1, obs.shape)
    fcst[0, 0, 0] = 1e30  # a diverged pixel
    cfg = ScoreConfig(thresholds_mm_h=(1.0,), fss_scales_px=(1, 3), spectra=False, max_rate_mm_h=300.0)
    det = MethodScores(False, cfg)
    det.accum(fcst, obs, range(3))
    rows = {r["metric"]: r["value"] for r in det.records() if "threshold" not in r and "scale" not in r}
    clipped = np.minimum(fcst, 300.0)
    assert rows["crps"] == rows["crps_fair"] == rows["mae"] == pytest.approx(np.abs(clipped - obs).mean())
    assert rows["clipped_fraction"] == pytest.approx(1 / obs.size)
    ens = MethodScores(True, cfg)
    ens.accum(np.stack([obs, obs + 1.0], axis=1), obs, range(3))
    rows = {r["metric"]: r["value"] for r in ens.records() if "threshold" not in r and "scale" not in r}
    assert rows["mae"] == pytest.approx(0.5)  # of the ensemble mean
    assert rows["crps_fair"] == pytest.approx(0.5 - 1.0 / 2)  # E|X - y| - E|X - X'| / 2, Ferro (2014)


def test_scoreboard_squeezes_single_member_ensembles():
    board = Scoreboard({"fine": ScoreConfig(thresholds_mm_h=(1.0,), fss_scales_px=(1,), pixel_km=1.0)})
    obs = np.ones((2, 20, 20))
    board.add("regression_chain", "fine", obs[:, None] * 2.0, obs, range(len(obs)))
    board.add_reference("fine", obs, range(len(obs)))
    table = board.table()
    assert list(table.columns) == ["method", "grid", "metric", "threshold", "scale", "value"]
    assert set(table["method"]) == {"regression_chain", "radar"}
    assert "spread_skill_ratio" not in set(table["metric"])  # scored as deterministic
    bias = table[(table.method == "regression_chain") & (table.metric == "bias")]["value"].item()
    assert bias == pytest.approx(1.0)


def test_flags_from_hand_made_rows():
    wl = [40.0, 20.0, 10.0, 5.0, 2.5]
    rows = [{"method": "radar", "metric": "psd", "scale": w, "value": 4.0} for w in wl]
    rows += [{"method": "smooth", "metric": "psd", "scale": w, "value": 4.0 if w > 10 else 1.0} for w in wl]
    rows += [{"method": m, "metric": "ratio_of_totals", "value": v}
             for m, v in (("satellite_bilinear", 0.8), ("smooth", 1.3), ("good", 1.02))]
    rows += [{"method": "smooth", "metric": "seam_ratio", "scale": 10.0, "value": 1.6}]
    table = tidy(rows, grid="fine")
    psd = flags.psd_ratio_rows(table, {"max_km": 10.0, "tolerance": 0.5}).set_index(["method", "metric", "scale"])["value"]
    assert psd[("smooth", "psd_ratio", 5.0)] == 0.25 and psd[("smooth", "psd_ratio", 20.0)] == 1.0
    assert psd[("smooth", "psd_ratio_small_scales", 10.0)] == pytest.approx(0.25)  # geometric mean ≤ 10 km
    assert psd[("smooth", "oversmoothing_flag", 10.0)] == 1.0
    params = {"reference": {"fine": "satellite_bilinear"}, "factor": 1.0, "tolerance": 0.05}
    amp = flags.bias_amplification_rows(table, params).set_index(["method", "metric"])["value"]
    assert amp[("smooth", "bias_amplification")] == pytest.approx(1.5)  # |1.3 - 1| / |0.8 - 1|
    assert amp[("smooth", "bias_amplification_flag")] == 1.0 and amp[("good", "bias_amplification_flag")] == 0.0
    seams = flags.seam_flag_rows(table, {"max_ratio": 1.3})
    assert seams["value"].tolist() == [1.0]


def test_bias_growth_is_the_slope_against_log_intensity():
    edges = [0.0, 0.1, 1.0, 10.0]
    # satellite: bias −0.5 mm/h per e-fold of intensity; "amplified": three times that; "flat": none
    slope = {"satellite_bilinear": -0.5, "amplified": -1.5, "flat": 0.0}
    rows = [{"method": m, "metric": "bias_bin", "threshold": e, "value": 0.3 + s * np.log(max(e, 1e-9))}
            for m, s in slope.items() for e in edges]
    rows += [{"method": m, "metric": "count_bin", "threshold": e, "value": 500 if e < 10 else 50}
             for m in slope for e in edges]  # the 10 mm/h bin is too small to count
    rows[[r["method"] == "amplified" and r["threshold"] == 10.0 for r in rows].index(True)]["value"] = -100.0
    table = tidy(rows, grid="fine")
    params = {"reference": {"fine": "satellite_bilinear"}, "min_mm_h": 0.1, "min_count": 100,
              "factor": 1.1, "tolerance": 0.2}
    out = flags.bias_growth_rows(table, params)
    got = out.set_index(["method", "metric"])["value"]
    # bins 0.1 and 1 mm/h only: 0 is not wet, the −100 of the 10 mm/h bin has too few pixels
    assert got[("amplified", "bias_growth")] == pytest.approx(-1.5)
    assert got[("satellite_bilinear", "bias_growth")] == pytest.approx(-0.5)
    assert got[("amplified", "bias_growth_flag")] == 1.0
    assert got[("flat", "bias_growth_flag")] == 0.0 and got[("satellite_bilinear", "bias_growth_flag")] == 0.0


@pytest.fixture(scope="module")
def box_hours():
    """Test box-hours of three regions: 6 hours of box 1 (north), 2 of box 2 (south), 4 of box 3 (west)."""
    hours = pd.date_range("2022-10-01T01:00", periods=6, freq="h").values
    rows = [(t, 1, "north") for t in hours] + [(t, 2, "south") for t in hours[:2]] + [(t, 3, "west") for t in hours[2:]]
    rows.sort(key=lambda r: (r[0], r[1]))
    times, numbers, regions = (np.array(c) for c in zip(*rows))
    n = len(rows)
    rate = np.arange(1, n + 1, dtype=np.float32)[:, None, None] * np.ones((n, 20, 20), np.float32)
    kw = {"times": times, "box_numbers": numbers, "regions": regions}
    lat, lon = 47.005 + 0.01 * np.arange(20), -122.395 + 0.01 * np.arange(20)
    fine = model_input({"radar": np.log1p(rate)}, lat, lon, ["test"] * n, **kw)
    coarse = model_input({"radar": np.log1p(rate[:, ::10, ::10]), "satellite": np.log1p(rate[:, ::10, ::10])},
                         lat[5::10], lon[5::10], ["test"] * n, **kw)
    return coarse, fine


def test_stratified_selection_shares_box_hours_among_regions(box_hours):
    coarse, fine = box_hours
    hours = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": 7, "selection": "stratified"}, "figures": FIG})
    counts = hours["region"].value_counts().to_dict()
    assert counts == {"north": 3, "south": 2, "west": 2}  # south has only 2: its third goes to north (name order)
    north = hours[hours.region == "north"]["time"].dt.hour.tolist()
    assert north == [1, 3, 6]  # evenly spaced in time within the region
    assert len(set(hours["hour_key"])) == 7
    one = nodes.select_test_hours(coarse, fine, {"hours": {"regions": ["west"]}, "figures": FIG})
    assert set(one["region"]) == {"west"} and len(one) == 4
    with pytest.raises(ValueError, match="no test box-hour in \\['east'\\]"):
        nodes.select_test_hours(coarse, fine, {"hours": {"regions": ["east"]}, "figures": FIG})


def test_chunks_hold_one_box_each_in_time_order(box_hours):
    coarse, fine = box_hours
    hours = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": None}, "figures": FIG})
    chunks = list(methods.iter_chunks(coarse, fine, hours, chunk_hours=4))
    assert [len(c.times) for c in chunks] == [4, 2, 2, 4]  # box 1: 4 + 2, box 2: 2, box 3: 4
    for c in chunks:
        assert len({k // 2**32 for k in c.hour_keys}) == 1 and np.all(np.diff(c.times) > np.timedelta64(0))
    assert sorted(k for c in chunks for k in c.hour_keys) == sorted(hours["hour_key"])


def test_intervals_have_a_stratum_per_region(box_hours):
    from precipdiff.pipelines.evaluation.intervals import strata

    coarse, fine = box_hours
    hours = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": None}, "figures": FIG})
    s = strata(hours, 0.34)
    assert set(s) == {"all", "wettest", "region:north", "region:south", "region:west"}
    assert len(s["region:south"]) == 2 and set(s["region:west"]) <= set(s["all"])
    boxes = np.asarray(s["all"]) // 2**32
    assert np.all(np.diff(boxes) >= 0)  # box by box: bootstrap blocks are consecutive hours of one box


def test_masked_scores_skip_radar_gaps_and_agree_where_nothing_is_missing():
    from precipdiff.pipelines.evaluation.scores import mask_missing

    rng = np.random.default_rng(5)
    obs, fcst = rng.gamma(0.5, 2.0, (2, 3, 16, 16)).astype(np.float32)[:, 0], rng.gamma(0.5, 2.0, (2, 4, 16, 16))
    assert mask_missing(fcst, obs) is fcst  # nothing missing: the very same array, the same scores
    gappy = obs.copy()
    gappy[1, :4, :4] = np.nan
    cfg = ScoreConfig(fss_scales_px=(1, 3), pixel_km=1.0)
    full, masked = Scoreboard({"fine": cfg}), Scoreboard({"fine": cfg})
    full.add("m", "fine", fcst, obs, [0, 1])
    masked.add("m", "fine", fcst, gappy, [0, 1])
    t_full, t_mask = (b.table().set_index("metric")["value"] for b in (full, masked))
    valid = np.isfinite(gappy)
    assert t_mask["n"] == valid.sum()
    err = fcst.mean(axis=1) - obs
    assert t_mask["rmse"] == pytest.approx(np.sqrt(np.mean(err[valid] ** 2)), rel=1e-6)
    assert t_full["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-6)
    only_first = Scoreboard({"fine": cfg})
    only_first.add("m", "fine", fcst[:1], obs[:1], [0])
    psd = lambda b: b.table().query("metric == 'psd'")["value"].to_numpy()  # noqa: E731
    np.testing.assert_allclose(psd(masked), psd(only_first))  # the gappy field is out of the spectrum
