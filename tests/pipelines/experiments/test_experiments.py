"""The experiments: the table helpers and every experiment end to end on the tiny configuration."""

from __future__ import annotations

import importlib
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.pipelines.experiments import experiment_pipelines
from precipdiff.pipelines.experiments.pipeline import create_pipeline as experiments_pipeline
from precipdiff.pipelines.experiments.cost import _rss_mb, area_km2
from precipdiff.pipelines.experiments.nodes import compare_arms, markdown_table, override_params, wide_table
from tests.conftest import make_project_copy, run_kedro

NAMES = ["ablation", "residual", "season", "geographic", "cost"]


def test_override_params_merges_nested_dicts_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2], "f": 3}
    out = override_params(base, {"a": {"c": {"d": 5}}, "e": [9]})
    assert out == {"a": {"b": 1, "c": {"d": 5}}, "e": [9], "f": 3}
    assert base["a"]["c"]["d"] == 2  # the input is not modified
    assert override_params(base, None) == base


def _tidy(method, metric, value, threshold=np.nan, grid="fine"):
    return {"method": method, "grid": grid, "metric": metric, "threshold": threshold, "scale": np.nan, "value": value}


def test_compare_arms_keeps_the_asked_rows_in_order():
    a = pd.DataFrame([_tidy("m1", "rmse", 1.0), _tidy("m2", "rmse", 2.0), _tidy("m1", "csi", 0.3, 5.0),
                      _tidy("m1", "csi", 0.5, 1.0), _tidy("m1", "rmse", 9.0, grid="coarse")])
    b = pd.DataFrame([_tidy("m2", "rmse", 4.0), _tidy("m3", "rmse", 7.0)])
    params = {"methods": ["m2", "m1"], "metrics": [{"metric": "rmse"}, {"metric": "csi", "threshold": 5.0}]}
    table = compare_arms(params, base=a, other=b)
    assert list(zip(table.arm, table.method, table.metric)) == [
        ("base", "m2", "rmse"), ("base", "m1", "rmse"), ("base", "m1", "csi"), ("other", "m2", "rmse")]
    wide = wide_table(table)
    assert list(wide.columns) == ["arm", "method", "rmse", "csi@5"]
    assert wide.shape == (3, 4)  # (other, m1) has no row: dropped, not a row of NaN
    text = markdown_table(table, "T")
    assert "| base | m1 | 1 | 0.3 |" in text and text.startswith("### T")
    with pytest.raises(ValueError, match="none of the metrics"):
        compare_arms({"metrics": [{"metric": "fss"}]}, base=a)


def test_grid_area_matches_the_spherical_band():
    lat, lon = np.arange(0.005, 1.0, 0.01), np.arange(0.005, 1.0, 0.01)
    exact = 6371.0**2 * np.deg2rad(1.0) * np.sin(np.deg2rad(1.0))  # R² Δλ (sin φ₂ − sin φ₁)
    assert area_km2(lat, lon) == pytest.approx(exact, rel=1e-9)
    assert area_km2(lat + 60, lon) == pytest.approx(
        6371.0**2 * np.deg2rad(1.0) * (np.sin(np.deg2rad(61)) - np.sin(np.deg2rad(60))), rel=1e-9)


def test_every_experiment_is_registered_and_namespaced():
    pipes = experiment_pipelines()
    assert sorted(pipes) == sorted(f"experiment_{n}" for n in [*NAMES, "held_out"])  # held_out: not in `experiments`
    assert not set(experiments_pipeline().nodes) & set(pipes["experiment_held_out"].nodes)
    for name, p in pipes.items():
        # `kedro run --pipelines=<name>` imports precipdiff.pipelines.<name>: each needs its folder
        module = importlib.import_module(f"precipdiff.pipelines.{name}")
        assert set(module.create_pipeline().nodes) == set(p.nodes)
        short = name.removeprefix("experiment_")
        assert f"experiments.{short}.table" in p.all_outputs()
        own = {d for d in p.all_outputs() if not d.startswith(f"experiments.{short}.")}
        assert not own, f"{name} writes datasets outside its namespace: {own}"


@pytest.fixture(scope="module")
def experimented(tmp_path_factory):
    """``kedro run --env test --pipelines=training,evaluation`` then ``--pipelines=experiments``."""
    project = make_project_copy(tmp_path_factory.mktemp("experiments"))
    run_kedro(project, ["training", "evaluation"], env="test")
    run_kedro(project, ["experiments"], env="test")
    return project


def _table(project, name):
    return pd.read_parquet(project / f"data/08_reporting/experiments/{name}.parquet")


def _value(table, arm, method, metric, grid="fine"):
    sel = (table.arm == arm) & (table.method == method) & (table.metric == metric) & (table.grid == grid)
    assert sel.sum() == 1, (arm, method, metric)
    return float(table.loc[sel, "value"].iloc[0])


def test_every_experiment_leaves_table_figure_and_markdown(experimented):
    out = experimented / "data/08_reporting/experiments"
    for name in NAMES:
        assert (out / f"{name}.md").read_text().startswith("### ")
        assert json.loads((out / f"{name}.json").read_text())["data"], name


def test_ablation_scores_the_downscaling_model_alone(experimented):
    t = _table(experimented, "ablation")
    assert set(t.arm) == {"evaluation", "downscaling_only"}
    assert np.isfinite(_value(t, "downscaling_only", "downscaling_diffusion", "crps_fair"))
    for method in ("correction_diffusion_bilinear", "diffusion_chain", "regression_chain"):
        assert np.isfinite(_value(t, "evaluation", method, "crps_fair"))
    assert (t.metric == "psd_ratio_small_scales").any()  # the radar reference was scored with it


def test_residual_variant_is_trained_apart_and_scored(experimented):
    t = _table(experimented, "residual")
    default, variant = (_value(t, arm, "diffusion_chain", "crps_fair") for arm in ("default", "variant"))
    assert np.isfinite(variant) and variant != default
    assert (t.metric == "bias_bin").sum() >= 2 * 6
    client = mlflow.MlflowClient(f"sqlite:///{experimented / 'mlflow.db'}")
    for stage in ("correction", "downscaling"):
        (version,) = client.search_model_versions(f"name = 'precipdiff-{stage}-residual'")
        assert version.tags["residual"] == "absolute" and version.tags["stage"] == stage
        # the run's own models are untouched: one version, the transformed residual
        (own,) = client.search_model_versions(f"name = 'precipdiff-{stage}'")
        assert own.tags["residual"] == "transformed"
        (rebased,) = client.search_model_versions(f"name = 'precipdiff-{stage}-residual-rebased'")
        assert rebased.tags["residual_base"] == "input"  # base_overrides (conf/base)
    other = _value(t, "other_base", "diffusion_chain", "crps_fair")
    assert np.isfinite(other) and other not in (default, variant)
    for arm in ("default", "variant", "other_base"):  # the validation-tile scores that choose a variant
        for stage in ("correction", "downscaling"):
            assert _value(t, arm, "diffusion_chain", "crps_fair", f"validation_{stage}") > 0


def test_season_is_another_rain_regime(experimented):
    own = xr.open_dataset(experimented / "data/05_model_input/experiments/season/fine.nc")
    run = xr.open_dataset(experimented / "data/05_model_input/fine.nc")
    wet = lambda ds: float((ds["radar"] > np.log1p(0.1)).mean())  # noqa: E731
    assert wet(own) < wet(run)  # wet_fraction 0.1 instead of 0.2
    t = _table(experimented, "season")
    assert set(t.arm) == {"in_distribution", "shifted"}
    assert _value(t, "shifted", "qm_bilinear", "rmse") != _value(t, "in_distribution", "qm_bilinear", "rmse")


def test_geographic_compares_transferred_and_target_trained_models(experimented):
    own = xr.open_dataset(experimented / "data/05_model_input/experiments/geographic/coarse.nc")
    assert float(own.lat.min()) > 44.0 and float(own.lat.max()) < 44.4  # the target box of conf/test
    t = _table(experimented, "geographic")
    values = {arm: _value(t, arm, "diffusion_chain", "crps_fair")
              for arm in ("source_region", "transferred", "trained_on_target")}
    assert len(set(values.values())) == 3, values  # three different model/data pairs
    client = mlflow.MlflowClient(f"sqlite:///{experimented / 'mlflow.db'}")
    for stage in ("correction", "downscaling"):
        assert client.search_model_versions(f"name = 'precipdiff-{stage}-geographic'")


def test_cost_table_measures_every_method(experimented):
    cost = _table(experimented, "cost")
    assert list(cost.method) == ["qm_bilinear", "regression_chain", "diffusion_chain"]
    assert (cost.inference_seconds > 0).all() and (cost.us_per_km2_member > 0).all()
    assert (cost.peak_rss_mb >= cost.baseline_rss_mb).all() and (cost.baseline_rss_mb > 50).all()
    # the child's own peak, not the parent's inherited one (ru_maxrss survives fork + exec on Linux)
    assert (cost.baseline_rss_mb < _rss_mb()).all()
    assert cost.set_index("method").loc["diffusion_chain", "members"] == 3  # conf/test evaluation.chain.n_members
    assert np.isfinite(cost.crps_fair).all() and (cost.train_seconds > 0).all()


def test_experiment_metrics_are_in_the_mlflow_run(experimented):
    client = mlflow.MlflowClient(f"sqlite:///{experimented / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "attributes.run_name = 'experiments'")
    assert len(runs) == 1
    keys = runs[0].data.metrics
    assert any(k.startswith("experiments.ablation.downscaling_only.downscaling_diffusion.crps_fair") for k in keys)
    assert "experiments.cost.diffusion_chain.us_per_km2_member" in keys
    assert "experiments.season.shifted.qm_bilinear.rmse" in keys


def test_two_identical_runs_choose_the_same_samplers_and_give_the_same_metrics(experimented, tmp_path_factory):
    """The evaluation tests' tiny project and this module's ran the same command (`kedro run --env test
    --pipelines=training,evaluation`) in two fresh folders: the choices and the figures must agree (#22)."""
    from tests.pipelines.evaluation.evaluated_project import build_evaluated_project

    other = build_evaluated_project(tmp_path_factory)
    for stage in ("correction", "downscaling"):
        a, b = (pd.read_csv(p / f"data/08_reporting/{stage}_sampler_selection.csv").drop(columns="seconds")
                for p in (experimented, other))
        pd.testing.assert_frame_equal(a, b)
    a, b = (pd.read_parquet(p / "data/08_reporting/metrics.parquet") for p in (experimented, other))
    a, b = (t[t.grid != "cost"].reset_index(drop=True) for t in (a, b))  # wall-clock timings differ
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(*(pd.read_parquet(p / "data/08_reporting/intervals.parquet")
                                    for p in (experimented, other)))
