"""The served model is the evaluated one: the MLflow pyfunc model, loaded from the registry as
``mlflow models serve`` would, gives the chain's member for the same seed and hours (issue #24).

Both go through :mod:`precipdiff.nn.sampling` (one sampling path); the equality is bit for bit.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from precipdiff.data import transforms
from precipdiff.datasets.mlflow_model import MlflowResidualModelDataset
from precipdiff.inference import chain
from tests.inference.chain_models import grids, satellite, unet_model

HOURS = [455_000, 455_001]  # whole hours since 1970 of two consecutive hours


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``{stage: (pyfunc model loaded from the registry, the TrainedModel logged)}``."""
    root = tmp_path_factory.mktemp("serving")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("serving", artifact_location=str(root / "art")))
    out = {}
    with mlflow.start_run():
        for seed, stage in enumerate(("correction", "downscaling")):
            trained = unet_model(stage, seed + 5)
            MlflowResidualModelDataset(name=f"{stage}_diffusion", registered_model_name=f"precipdiff-{stage}").save(
                trained)
            out[stage] = (mlflow.pyfunc.load_model(f"models:/precipdiff-{stage}/1"), trained)
    yield out
    mlflow.set_tracking_uri(previous)


@pytest.mark.parametrize("stage", ["correction", "downscaling"])
def test_pyfunc_and_chain_give_the_same_members_for_the_same_seed(served, stage):
    pyfunc, trained = served[stage]
    (lat_c, lon_c), (lat_f, lon_f) = grids(3, 4)
    sat = satellite(len(HOURS), 3, 4, seed=2)
    settings = chain.ChainSettings(n_members=3, seed=11)
    models = (trained, None) if stage == "correction" else (None, trained)
    corrected, fine = chain.run_chain(sat, (lat_c, lon_c), (lat_f, lon_f), HOURS, *models, settings)
    member = corrected if stage == "correction" else fine  # (T, M, h, w), transformed units

    base = sat if stage == "correction" else transforms.upsample(sat, 10, trained.card.upsampling)
    lat, lon = (lat_c, lon_c) if stage == "correction" else (lat_f, lon_f)
    cond = transforms.condition(base, trained.card.conditioning.static_channels, lat, lon)
    residual = pyfunc.predict(cond, params={"n_members": 3, "seed": 11, "hour_keys": HOURS})  # (T, M, 1, h, w)
    served_member = transforms.apply_residual(base[:, None], residual[:, :, 0], trained.card.residual,
                                              trained.card.transform)
    assert residual.shape == (len(HOURS), 3, 1, *base.shape[-2:])
    np.testing.assert_array_equal(served_member, member)
    assert np.abs(residual[:, 0] - residual[:, 1]).max() > 1e-3  # members differ: a real ensemble


def test_pyfunc_params_reach_the_sampler(served):
    """The signature carries the params (MLflow drops params a signature does not declare)."""
    pyfunc, _ = served["correction"]
    cond = transforms.condition(satellite(1, 3, 4), ["lat", "lon"], *grids(3, 4)[0])
    one = pyfunc.predict(cond)
    assert one.shape == (1, 1, 1, 3, 4)  # defaults: one member
    steps = pyfunc.predict(cond, params={"num_steps": 1})
    seed = pyfunc.predict(cond, params={"seed": 1})
    assert not np.array_equal(one, steps) and not np.array_equal(one, seed)
    np.testing.assert_array_equal(pyfunc.predict(cond, params={"num_steps": 3}), one)  # the card's sampler: 3 steps
