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
    assert set(coarse["split"].values[hours["time_index"]].astype(str)) == {"validation"}
    champion = {"alias": "champion", "versions": {"correction": "9", "downscaling": "9"}, "tags": {},
                "candidate_versions": {"correction": "1", "downscaling": "1"}, "models": models}
    table = nodes.score_selection(coarse, fine, hours, champion, models["correction"], models["downscaling"], params)
    assert set(table["grid"]) == {"validation"} and {"diffusion_chain", "champion_chain"} <= set(table["method"])
    crps = table[table["metric"] == "crps_fair"].set_index("method")["value"]
    assert crps["diffusion_chain"] == pytest.approx(crps["champion_chain"])  # the same models, same noise
    test = pd.read_parquet(evaluated_project / "data/08_reporting/metrics.parquet")
    test_crps = test[(test["method"] == "diffusion_chain") & (test["metric"] == "crps_fair") & (test["grid"] == "fine")]
    assert crps["diffusion_chain"] != pytest.approx(test_crps["value"].iloc[0])  # other hours than the test ones


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
