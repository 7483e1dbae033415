"""Evaluation and inference sample with one sampler setting: the evaluation scores what users run.

``evaluation.chain.sampler`` reads ``inference.chain.sampler`` (``conf/base``); in every
configuration environment the resolved settings, built by the one builder
:meth:`ChainSettings.from_params`, must give the same sampler — and by default each model's own,
chosen on validation after training.
"""

import pytest
from kedro.config import OmegaConfigLoader

from precipdiff.inference.chain import ChainSettings
from tests.conftest import PROJECT_ROOT

ENVS = ["base", "test", "gpu", "mrms"]


def parameters(env: str, runtime_params: dict | None = None) -> dict:
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env,
                               merge_strategy={"parameters": "soft"}, runtime_params=runtime_params)  # as settings.py
    return loader["parameters"]


def samplers(params: dict) -> tuple[dict, dict]:
    ev = ChainSettings.from_params(params["evaluation"]["chain"], "evaluation.chain")
    inf = ChainSettings.from_params(params["inference"]["chain"], "inference.chain")
    return ev.sampler, inf.sampler


@pytest.mark.parametrize("env", ENVS)
def test_evaluation_scores_the_sampler_inference_ships(env):
    params = parameters(env)
    ev, inf = samplers(params)
    assert ev == inf, f"conf/{env}: evaluation.chain.sampler {ev} != inference.chain.sampler {inf}"
    assert inf == {}, f"conf/{env}: inference.chain.sampler overrides the models' own sampler: {inf}"
    for stage in ("correction", "downscaling"):
        assert params[f"{stage}_training"]["sampler_selection"]["enabled"]


def test_a_sampler_set_for_inference_is_the_one_evaluated():
    ev, inf = samplers(parameters("base", {"inference": {"chain": {"sampler": {"num_steps": 5}}}}))
    assert ev == inf == {"num_steps": 5}


@pytest.mark.parametrize("env", ENVS)
def test_evaluation_samples_with_the_precision_inference_ships(env):
    """Issue #23: the evaluation's scores are the product's, on the same device, in the same precision."""
    params = parameters(env)
    assert params["evaluation"]["chain"]["precision"] == params["inference"]["chain"]["precision"]
