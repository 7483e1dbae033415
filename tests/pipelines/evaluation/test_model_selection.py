"""Model selection: the rule (better → the alias moves, worse → it stays) and the registry datasets."""

import math

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from precipdiff.pipelines.evaluation.registry import ChampionDataset, ModelSelectionDataset
from precipdiff.pipelines.evaluation.selection import decide, selection_decision, setup_fingerprint, tagged_score
from precipdiff.verification import tidy

NAMES = {"correction": "precipdiff-correction", "downscaling": "precipdiff-downscaling"}
PARAMS = {"mode": "if_better", "metric": "crps_fair", "min_improvement": 0.0, "tag_metrics": ["crps_fair", "rmse"]}


@pytest.mark.parametrize("mode, candidate, champion, same, promote", [
    ("if_better", 0.10, 0.20, False, True),    # better → moves
    ("if_better", 0.30, 0.20, False, False),   # worse → stays
    ("if_better", 0.20, 0.20, False, False),   # a tie is not better
    ("if_better", 0.30, None, False, True),    # no champion yet → the first pair becomes champion
    ("if_better", math.nan, 0.2, False, False),
    ("always", 0.30, 0.20, False, True),
    ("never", 0.10, 0.20, False, False),
    ("if_better", 0.10, 0.10, True, False),    # already the champion
])
def test_decide(mode, candidate, champion, same, promote):
    assert decide(mode, candidate, champion, same)[0] is promote


def test_min_improvement_and_bad_mode():
    assert not decide("if_better", 0.19, 0.20, False, min_improvement=0.05)[0]
    assert decide("if_better", 0.14, 0.20, False, min_improvement=0.05)[0]
    with pytest.raises(ValueError, match="evaluation.selection.mode"):
        decide("sometimes", 0.1, 0.2, False)


def _metrics(candidate: float, champion: float | None, grid: str = "validation") -> pd.DataFrame:
    rows = [{"method": "diffusion_chain", "metric": "crps_fair", "value": candidate},
            {"method": "diffusion_chain", "metric": "rmse", "value": 1.5}]
    if champion is not None:
        rows.append({"method": "champion_chain", "metric": "crps_fair", "value": champion})
    return tidy(rows, grid=grid)


def _champion(versions):
    return {"alias": "champion", "registered_models": NAMES, "versions": versions}


def test_selection_decision_builds_tags_and_reason():
    test = _metrics(0.7, None, grid="fine")  # the test scores: tags only
    d = selection_decision(_metrics(0.1, 0.2), {"correction": "2", "downscaling": "2"},
                           _champion({"correction": "1", "downscaling": "1"}), PARAMS, reported=test)
    assert d["promote"] and d["champion"]["score"] == 0.2 and d["candidate"]["score"] == 0.1
    assert d["tags"]["eval.validation_crps_fair"] == "0.1" and d["tags"]["eval.champion_validation_crps_fair"] == "0.2"
    assert d["tags"]["eval.crps_fair"] == "0.7" and d["grid"] == "validation"
    assert d["tags"]["eval.decision"] == "promoted" and d["tags"]["eval.rmse"] == "1.5"
    worse = selection_decision(_metrics(0.3, 0.2), {"correction": "2", "downscaling": "2"},
                               _champion({"correction": "1", "downscaling": "1"}), PARAMS)
    assert not worse["promote"] and worse["tags"]["eval.decision"] == "kept"
    unregistered = selection_decision(_metrics(0.1, None), {"correction": None, "downscaling": None},
                                      _champion({"correction": None, "downscaling": None}), PARAMS)
    assert not unregistered["promote"] and "not registered" in unregistered["reason"]


def test_the_champion_rule_reads_validation_scores_never_test_scores():
    """Issue #23: the alias moves on validation scores; the test split is reported, never used to choose."""
    v1, v2 = {"correction": "1", "downscaling": "1"}, {"correction": "2", "downscaling": "2"}
    better_on_test = pd.concat([_metrics(0.30, 0.20), _metrics(0.05, 0.50, grid="fine")], ignore_index=True)
    d = selection_decision(better_on_test, v2, _champion(v1), PARAMS, reported=_metrics(0.05, 0.50, grid="fine"))
    assert not d["promote"] and d["candidate"]["score"] == 0.30  # worse on validation: kept, whatever the test says
    only_test = selection_decision(_metrics(0.05, 0.50, grid="fine"), v2, _champion(v1), PARAMS)
    assert not only_test["promote"] and "not finite" in only_test["reason"]  # test rows alone are never read
    better_on_validation = selection_decision(_metrics(0.10, 0.20), v2, _champion(v1), PARAMS,
                                              reported=_metrics(0.90, 0.10, grid="fine"))
    assert better_on_validation["promote"]


def test_champion_score_reused_only_for_the_same_setup():
    hours = pd.DataFrame({"hour_key": [10, 11], "radar_mean_mm_h": [1.0, 2.0]})
    params = {"chain": {"n_members": 8, "sampler": {"num_steps": 6}}, "scores": {"max_rate_mm_h": 300.0},
              "selection": {"metric": "crps_fair"}}
    fp = setup_fingerprint(hours, params)
    assert fp == setup_fingerprint(hours.copy(), params)
    assert fp != setup_fingerprint(hours.assign(radar_mean_mm_h=[1.0, 2.5]), params)  # other data
    assert fp != setup_fingerprint(hours, {**params, "chain": {"n_members": 8, "sampler": {"num_steps": 8}}})
    pair = {"correction": "1", "downscaling": "1"}
    tags = {s: {"eval.validation_setup": fp, "eval.validation_pair": "correction=1,downscaling=1",
                "eval.validation_crps_fair": "0.25", "eval.crps_fair": "0.01"} for s in NAMES}
    assert tagged_score(tags, pair, fp, "crps_fair") == 0.25  # the validation score, not the test one
    other_setup = {**tags, "downscaling": {**tags["downscaling"], "eval.validation_setup": "other"}}
    assert tagged_score(other_setup, pair, fp, "crps_fair") is None
    other_pair = {**tags, "downscaling": {**tags["downscaling"], "eval.validation_pair": "correction=3,downscaling=1"}}
    assert tagged_score(other_pair, pair, fp, "crps_fair") is None  # version 1 also scored in another pair
    assert tagged_score({s: {} for s in NAMES}, pair, fp, "crps_fair") is None
    not_scored = {s: {**t, "eval.validation_crps_fair": "nan"} for s, t in tags.items()}
    assert tagged_score(not_scored, pair, fp, "crps_fair") is None
    flag = tidy([{"method": "champion_chain", "metric": "score_reused_from_tags", "value": 1.0}], grid="validation")
    reused = pd.concat([_metrics(0.2, 0.25), flag], ignore_index=True)
    d = selection_decision(reused, {"correction": "2", "downscaling": "2"}, _champion({"correction": "1", "downscaling": "1"}),
                           PARAMS, fp)
    assert d["promote"] and d["champion"]["score_from"] == "version tags" and d["tags"]["eval.validation_setup"] == fp


@pytest.fixture
def registry(tmp_path):
    """A throw-away MLflow registry with versions 1 and 2 of both models (no artifacts needed)."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    for name in NAMES.values():
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=str(tmp_path))
    yield client
    mlflow.set_tracking_uri(None)


def test_registry_alias_moves_only_when_better(registry):
    champion = ChampionDataset(registered_models=NAMES, candidates={s: {"version": "1"} for s in NAMES})
    state = champion.load()
    assert state["versions"] == {"correction": None, "downscaling": None}
    assert state["candidate_versions"] == {"correction": "1", "downscaling": "1"} and state["models"] is None
    target = ModelSelectionDataset()
    v1 = {"correction": "1", "downscaling": "1"}
    target.save(selection_decision(_metrics(0.3, None), v1, _champion(state["versions"]), PARAMS))  # first → champion
    for name in NAMES.values():
        assert str(registry.get_model_version_by_alias(name, "champion").version) == "1"
        assert registry.get_model_version(name, "1").tags["eval.validation_crps_fair"] == "0.3"
    v2 = {"correction": "2", "downscaling": "2"}
    target.save(selection_decision(_metrics(0.4, 0.3), v2, _champion(v1), PARAMS))  # worse → stays
    assert all(str(registry.get_model_version_by_alias(n, "champion").version) == "1" for n in NAMES.values())
    assert registry.get_model_version(NAMES["correction"], "2").tags["eval.decision"] == "kept"
    target.save(selection_decision(_metrics(0.2, 0.3), v2, _champion(v1), PARAMS))  # better → moves
    assert all(str(registry.get_model_version_by_alias(n, "champion").version) == "2" for n in NAMES.values())
    latest = ChampionDataset(registered_models=NAMES).load()  # default candidates: the latest versions
    assert latest["versions"] == latest["candidate_versions"] == v2 and latest["models"] is None
