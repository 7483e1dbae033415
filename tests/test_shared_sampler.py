"""Evaluation and inference sample with the same sampler: each model's own, chosen on validation.

In every configuration environment, neither ``evaluation.chain.sampler`` nor ``inference.sampler``
may override the models' validation-selected sampler, so the evaluation scores what users run.
"""

import pytest
from kedro.config import OmegaConfigLoader

from precipdiff.inference.chain import ChainSettings
from precipdiff.pipelines.evaluation.nodes import chain_settings as evaluation_settings
from precipdiff.pipelines.inference.nodes import chain_settings as inference_settings
from tests.conftest import PROJECT_ROOT


@pytest.mark.parametrize("env", ["base", "test", "gpu", "mrms"])
def test_evaluation_and_inference_use_the_models_own_sampler(env):
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env,
                               merge_strategy={"parameters": "soft"})  # as settings.py
    params = loader["parameters"]
    ev, inf = evaluation_settings(params["evaluation"]), inference_settings(params["inference"])
    assert isinstance(ev, ChainSettings) and isinstance(inf, ChainSettings)
    assert ev.sampler == inf.sampler == {}, (ev.sampler, inf.sampler)
    for stage in ("correction", "downscaling"):
        assert params[f"{stage}_training"]["sampler_selection"]["enabled"]
