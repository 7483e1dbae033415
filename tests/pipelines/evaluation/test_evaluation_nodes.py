"""Evaluation nodes on hand-made arrays: hour selection, training-only baselines, scores, flags."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.pipelines.evaluation import flags, methods, nodes
from precipdiff.pipelines.evaluation.scores import MethodScores, ScoreConfig, Scoreboard
from precipdiff.verification import tidy

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
    attrs = {"transform": "log1p", "upsampling": "bilinear"}
    coords = {"time": times, "split": ("time", split)}
    coarse = xr.Dataset({"satellite": (("time", "lat", "lon"), np.log1p(sat)),
                         "radar": (("time", "lat", "lon"), np.log1p(rate_c))},
                        coords={**coords, "lat": [47.05, 47.15, 47.25], "lon": [-122.35, -122.25, -122.15]}, attrs=attrs)
    fine = xr.Dataset({"radar": (("time", "lat", "lon"), np.log1p(rate_f))},
                      coords={**coords, "lat": 47.005 + 0.01 * np.arange(30), "lon": -122.395 + 0.01 * np.arange(30)},
                      attrs=attrs)
    return coarse, fine


def test_select_wettest_and_evenly_spaced(inputs):
    coarse, fine = inputs
    hours = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": 3, "selection": "wettest"}, "figures": FIG})
    assert hours["time_index"].tolist() == [9, 10, 11]  # the three wettest test hours, in time order
    np.testing.assert_allclose(hours["radar_mean_mm_h"], [3, 4, 5], rtol=1e-5)
    assert hours["sample"].tolist() == [False, True, True]
    spaced = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": 3, "selection": "evenly_spaced"},
                                                    "figures": FIG})
    assert spaced["time_index"].tolist() == [6, 8, 11]
    everything = nodes.select_test_hours(coarse, fine, {"hours": {"max_hours": None}, "figures": FIG})
    assert len(everything) == 6
    with pytest.raises(ValueError, match="no 'test' hour"):
        nodes.select_test_hours(coarse.assign_coords(split=("time", ["train"] * 12)), fine,
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
    hours = pd.DataFrame({"time_index": [6, 7, 8]})
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
