"""``kedro run --env test --pipelines=training,evaluation`` through a real KedroSession: outputs and MLflow."""

import json
import os

import mlflow
import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from mlflow import MlflowClient
from plotly.offline import get_plotlyjs

from precipdiff.nn.sampling import sample_members
from precipdiff.verification import COLUMNS

FINE = {"satellite_nearest", "satellite_bilinear", "qm_bilinear", "rainfarm", "regression_chain",
        "correction_diffusion_bilinear", "diffusion_chain", "diffusion_chain_mean"}
COARSE = {"satellite", "qm", "regression_correction", "correction_diffusion"}


def test_metrics_table_has_every_method_and_metric(evaluated_project):
    m = pd.read_parquet(evaluated_project / "data/08_reporting/metrics.parquet")
    assert list(m.columns) == list(COLUMNS)
    assert FINE | {"radar"} == set(m[m.grid == "fine"].method)
    assert COARSE == set(m[m.grid == "coarse"].method)
    chain = m[(m.method == "diffusion_chain") & (m.grid == "fine")]
    metrics = set(chain.metric)
    assert {"crps", "crps_fair", "rmse", "mae", "bias", "ratio_of_totals", "corr", "spread_skill_ratio", "rank_0",
            "csi", "pod", "far", "fss_members", "fss_prob", "psd", "psd_ratio", "bias_bin", "rmse_bin", "seam_ratio",
            "oversmoothing_flag", "bias_amplification_flag", "seam_flag", "clipped_fraction"} <= metrics
    assert set(chain[chain.metric == "csi"].threshold) == {1.0, 5.0, 10.0}
    assert set(chain[chain.metric == "fss_members"].scale) == {1.0, 5.0, 11.0}
    ranks = chain[chain.metric.str.match(r"rank_\d+$")]
    assert len(ranks) == 4 and np.isclose(ranks.value.sum(), 1.0)  # 3 members → 4 ranks
    hours = pd.read_parquet(evaluated_project / "data/08_reporting/evaluation_hours.parquet")
    assert len(hours) == 3 and hours["sample"].sum() == 2


def test_figures_and_self_contained_report(evaluated_project):
    out = evaluated_project / "data/08_reporting"
    for name in ("maps", "scores", "coarse_scores", "psd", "rank_histogram", "fss"):
        assert len(pio.read_json(out / f"evaluation_{name}.json").data) > 0, name
    maps = pio.read_json(out / "evaluation_maps.json")
    assert maps.layout.xaxis.title.text.startswith("longitude") and len(maps.data) == 2 * 7
    page = (out / "evaluation_report.html").read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()[:200]) == 1  # plotly.js inlined exactly once
    assert "CRPS fair" in page and "How to read" in page and "diffusion_chain" in page
    selection = json.loads((out / "model_selection.json").read_text())
    assert selection["promote"] and selection["reason"] == "no champion yet" and selection["grid"] == "validation"
    assert "do the probabilities mean what they say" in page and "Rain where the satellite sees none" in page
    assert len(pio.read_json(out / "evaluation_reliability.json").data) > 0


def test_brier_scores_and_reliability_of_every_method(evaluated_project):
    out = evaluated_project / "data/08_reporting"
    scores = pd.read_parquet(out / "probability_scores.parquet")
    assert set(scores["cells"]) == {"all", "sat_dry", "sat_wet"}
    assert {"diffusion_chain", "rainfarm", "qm_bilinear", "regression_chain"} <= set(scores["method"])
    assert set(scores.loc[scores["method"] == "qm_bilinear", "members"]) == {1}  # deterministic: 0/1
    bs = scores[(scores["metric"] == "brier") & (scores["cells"] == "all")]
    assert (bs["ci_low"] <= bs["estimate"]).all() and (bs["estimate"] <= bs["ci_high"]).all()
    metrics = pd.read_parquet(out / "metrics.parquet")  # the all-cells Brier score is also in the metrics table
    row = metrics[(metrics["method"] == "diffusion_chain") & (metrics["metric"] == "brier")
                  & np.isclose(metrics["threshold"], 1.0) & (metrics["grid"] == "fine")]
    chain = bs[(bs["method"] == "diffusion_chain") & np.isclose(bs["threshold"], 1.0)]
    assert row["value"].iloc[0] == pytest.approx(chain["estimate"].iloc[0])


def test_the_champion_is_scored_on_validation_hours(evaluated_project):
    """A champion that differs from the evaluated pair is compared on validation hours, never test ones."""
    from precipdiff.pipelines.evaluation import nodes

    loaded, params = _load(evaluated_project, ["coarse_model_input", "fine_model_input",
                                               "correction_diffusion_model", "downscaling_diffusion_model"])
    coarse, fine = loaded["coarse_model_input"], loaded["fine_model_input"]
    models = {s: loaded[f"{s}_diffusion_model"] for s in ("correction", "downscaling")}
    hours = nodes.select_validation_hours(coarse, fine, params)
    assert set(coarse["split"].values[hours["sample_index"]].astype(str)) == {"validation"}
    champion = {"alias": "champion", "versions": {"correction": "9", "downscaling": "9"}, "tags": {},
                "candidate_versions": {"correction": "1", "downscaling": "1"}, "models": models}
    table = nodes.score_selection(coarse, fine, hours, champion, models["correction"], models["downscaling"], params)
    assert set(table["grid"]) == {"validation"} and {"diffusion_chain", "champion_chain"} <= set(table["method"])
    crps = table[table["metric"] == "crps_fair"].set_index("method")["value"]
    assert crps["diffusion_chain"] == pytest.approx(crps["champion_chain"])  # the same models, same noise
    test = pd.read_parquet(evaluated_project / "data/08_reporting/metrics.parquet")
    test_crps = test[(test["method"] == "diffusion_chain") & (test["metric"] == "crps_fair") & (test["grid"] == "fine")]
    assert crps["diffusion_chain"] != pytest.approx(test_crps["value"].iloc[0])  # other hours than the test ones


def test_mlflow_metrics_artifacts_and_champion(evaluated_project):
    mlflow.set_tracking_uri(f"sqlite:///{evaluated_project / 'mlflow.db'}")
    try:
        run = mlflow.search_runs(experiment_names=["precipdiff"]).iloc[0]
        assert np.isfinite(run["metrics.evaluation.fine.diffusion_chain.crps_fair"])
        assert "metrics.evaluation.coarse.correction_diffusion.crps_fair" in run
        client = MlflowClient()
        experiment = client.get_experiment_by_name("precipdiff")  # the UI opens it on its runs (#24)
        assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
        artifacts = {a.path for a in client.list_artifacts(run.run_id, "evaluation")}
        assert {"evaluation/metrics.parquet", "evaluation/evaluation_report.html",
                "evaluation/model_selection.json"} <= artifacts
        for name in ("precipdiff-correction", "precipdiff-downscaling"):
            champion = client.get_model_version_by_alias(name, "champion")
            assert champion.tags["eval.decision"] == "promoted" and champion.tags["eval.run_id"] == run.run_id
            assert float(champion.tags["eval.crps_fair"]) == pytest.approx(  # the test score, reported as a tag
                run["metrics.evaluation.fine.diffusion_chain.crps_fair"], rel=1e-5)
            assert "eval.validation_crps_fair" not in champion.tags  # no other champion: nothing scored to choose
    finally:
        mlflow.set_tracking_uri(None)


def test_runtime_params_choose_the_registry_versions(evaluated_project):
    """`kedro run --pipelines=evaluation --params=evaluation.models.alias=champion` (catalog_evaluation.yml)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(evaluated_project)
    latest = {"version": None, "run_id": None, "alias": None}  # nothing asked: the latest version
    champion = {**latest, "alias": "champion"}
    cases = [({}, latest, latest),
             ({"alias": "champion"}, champion, champion),
             ({"correction": {"alias": "champion"}, "downscaling": {"version": 1, "run_id": "abc"},
               "downscaling_regression": {"version": 1}},
              champion, {**latest, "version": 1, "run_id": "abc"})]
    for models, correction, downscaling in cases:
        runtime = {"evaluation": {"models": models}} if models else {}
        with KedroSession.create(project_path=evaluated_project, env="test", runtime_params=runtime) as session:
            catalog = session.load_context().catalog
            assert catalog.get("correction_diffusion_model").load_args == correction
            assert catalog.get("downscaling_diffusion_model").load_args == downscaling
            candidates = catalog.get("evaluation.champion")._describe()["candidates"]
            assert candidates["correction"] == correction and candidates["downscaling"] == downscaling
        regression = catalog.get("downscaling_regression_model").load_args
        assert regression == {**latest, "version": 1 if "downscaling_regression" in models else None}
    cwd = os.getcwd()
    os.chdir(evaluated_project)  # the MLflow store is the project's (conf/base/mlflow.yml)
    try:
        with KedroSession.create(project_path=evaluated_project, env="test",
                                 runtime_params={"evaluation": {"models": {"alias": "champion"}}}) as session:
            catalog = session.load_context().catalog  # loaded by precipdiff.registry: the champion is version 1
            assert catalog.load("correction_diffusion_model").registered.version == "1"
    finally:
        os.chdir(cwd)
        mlflow.set_tracking_uri(None)


def test_both_residual_bases_train_register_and_load(evaluated_project):
    """conf/test: correction on the input base, downscaling on the regression (CorrDiff) base; the
    registered downscaling model carries its regression (``mean.*``) and samples whole residuals."""
    import torch

    from precipdiff.registry import load_registered

    mlflow.set_tracking_uri(f"sqlite:///{evaluated_project / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        for stage, base in (("correction", "input"), ("downscaling", "regression")):
            (version,) = client.search_model_versions(f"name = 'precipdiff-{stage}'")
            assert version.tags["residual_base"] == base
            assert version.tags["training_source"] == "synthetic" and "synthetic data" in version.tags["training_data"]
        trained = load_registered("precipdiff-downscaling", alias=None, version=1)
        regression = load_registered("precipdiff-downscaling-regression", alias=None, version=1)
    finally:
        mlflow.set_tracking_uri(None)
    assert trained.card.residual_base == "regression" and trained.model.mean is not None
    report = (evaluated_project / "data/08_reporting/evaluation_report.html").read_text()
    assert "correction: input base" in report and "downscaling: regression base" in report
    provenance = trained.card.provenance  # what it learnt from (#23)
    assert provenance.source == "synthetic" and provenance.regions == () and provenance.period[0] == "2022-10-01T01:00Z"
    assert provenance.domain.lat_min == pytest.approx(47.005) and provenance.domain.lon_max == pytest.approx(-122.005)
    assert "Trained on: correction: synthetic data" in report
    mean = dict(trained.model.mean.state_dict())
    for key, value in regression.model.state_dict().items():  # the base is the registered regression
        torch.testing.assert_close(mean[key], value)
    cond = torch.randn(2, trained.config["cond_channels"], 16, 16)
    members = sample_members(trained.model, cond, {"num_steps": 2}, [0, 1], [0, 1], trained.card.grid)
    assert torch.isfinite(members).all() and members.shape == (2, 2, 1, 16, 16)


def _load(project, names):
    """The datasets ``names`` of the project's catalog (models from its registry) and ``params:evaluation``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    cwd = os.getcwd()
    os.chdir(project)  # the MLflow store is the project's (conf/base/mlflow.yml)
    try:
        with KedroSession.create(project_path=project, env="test") as session:
            context = session.load_context()
            return {name: context.catalog.load(name) for name in names}, context.params["evaluation"]
    finally:
        os.chdir(cwd)
        mlflow.set_tracking_uri(None)
