"""The model registry (``precipdiff.registry``): one precedence, version > run_id > alias > latest,
for every request, and one ``weights_only`` load path, through the dataset that registers models.

A throw-away SQLite registry holds two versions of one model, logged by two runs through
:class:`MlflowResidualModelDataset` (as training does), with ``champion`` on version 1.
"""

from __future__ import annotations

import mlflow
import pytest
import torch
from kedro.io import DatasetError
from mlflow import MlflowClient

from precipdiff import registry
from precipdiff.datasets.mlflow_model import MlflowResidualModelDataset
from tests.inference.chain_models import unet_model

NAME = "precipdiff-correction"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """``{"client", "runs": [run id of v1, run id of v2], "models": [model v1, model v2]}``."""
    root = tmp_path_factory.mktemp("registry")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("registry", artifact_location=str(root / "art")))
    runs, models = [], []
    for seed in (1, 2):
        model = unet_model("correction", seed)
        with mlflow.start_run() as run:
            MlflowResidualModelDataset(name="correction_diffusion", registered_model_name=NAME).save(model)
        runs.append(run.info.run_id)
        models.append(model)
    client = MlflowClient()
    client.set_registered_model_alias(NAME, "champion", "1")
    yield {"client": client, "runs": runs, "models": models}
    mlflow.set_tracking_uri(previous)


def version(store, **request) -> str:
    return str(registry.resolve_version(NAME, client=store["client"], **request).version)


def test_alias_version_and_run_id_each_choose_their_version(store):
    assert version(store, alias="champion") == "1"
    assert version(store, version=2) == "2" and version(store, version="1") == "1"
    assert version(store, run_id=store["runs"][0]) == "1" and version(store, run_id=store["runs"][1]) == "2"
    assert version(store) == "2" and version(store, version="latest") == "2"  # nothing asked: the latest


def test_one_precedence_version_then_run_id_then_alias(store):
    run1, run2 = store["runs"]
    assert version(store, version=2, run_id=run1, alias="champion") == "2"  # version wins over everything
    assert version(store, run_id=run2, alias="champion") == "2"  # a run id wins over an alias
    assert version(store, version="latest", alias="champion") == "2"  # "latest" is a version too


@pytest.mark.parametrize(
    ("request_", "message"),
    [({"alias": "nope"}, "'precipdiff-correction' has no alias 'nope' (aliases: ['champion']; versions: [1, 2])"),
     ({"version": 7}, "'precipdiff-correction' has no version 7; versions: [1, 2]"),
     ({"run_id": "abc"}, "has no version logged by run 'abc'; runs: ["),
     ({"version": 7, "alias": "champion"}, "has no version 7"),  # an explicit version never falls back
     ],
)
def test_a_request_that_matches_nothing_is_named(store, request_, message):
    with pytest.raises(registry.ModelNotFoundError) as info:
        registry.resolve_version(NAME, client=store["client"], **request_)
    assert message in str(info.value)
    assert registry.find_version(NAME, client=store["client"], **request_) is None


def test_unknown_model_lists_what_is_registered(store):
    with pytest.raises(registry.ModelNotFoundError, match=r"no registered model 'precipdiff-nowcast' \(registered: "
                                                          r"\['precipdiff-correction'\]\)"):
        registry.resolve_version("precipdiff-nowcast", client=store["client"])


def test_the_dataset_loads_with_the_same_precedence_and_weights_only(store, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    cases = [({"alias": "champion"}, 0), ({"version": 2, "alias": "champion"}, 1),
             ({"run_id": store["runs"][0]}, 0), ({}, 1)]
    for load_args, which in cases:
        trained = MlflowResidualModelDataset(name="m", registered_model_name=NAME, load_args=load_args).load()
        expected = store["models"][which].model.state_dict()
        for key, value in trained.model.state_dict().items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
        assert trained.registered.version == str(which + 1)
        assert trained.registered.run_id == store["runs"][which]
    assert calls == [True] * len(cases)  # every load: torch.load(..., weights_only=True), no pyfunc unpickling


def test_the_dataset_refuses_unknown_load_args():
    with pytest.raises(DatasetError, match=r"unknown load_args \['stage'\]; expected some of \['version', 'run_id', "
                                           r"'alias'\]"):
        MlflowResidualModelDataset(name="m", registered_model_name=NAME, load_args={"stage": "Production"})
