import os
import subprocess
import sys

import click
import pytest
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT


def test_default_runs_ingestion_to_report_without_inference():
    bootstrap_project(PROJECT_ROOT)
    from precipdiff.pipeline_registry import register_pipelines

    pipes = register_pipelines()
    assert {"ingestion", "preprocessing", "correction_training", "downscaling_training", "training",
            "evaluation", "inference"} <= set(pipes)
    default = pipes["__default__"]
    assert {"satellite_raw", "evaluation.report"} <= default.all_outputs()
    assert not set(pipes["inference"].all_outputs()) & default.all_outputs()
    assert set(pipes["training"].nodes) == set((pipes["ingestion"] + pipes["preprocessing"]
                                                + pipes["correction_training"] + pipes["downscaling_training"]).nodes)
    assert not any(out.startswith("experiments.") for out in default.all_outputs())  # experiments are opt-in
    assert {f"experiment_{n}" for n in ("ablation", "residual", "season", "geographic", "cost")} <= set(pipes)


def test_valid_names_are_the_registered_pipelines():
    bootstrap_project(PROJECT_ROOT)
    from precipdiff.pipeline_registry import pipeline_names, register_pipelines

    assert set(pipeline_names()) == set(register_pipelines())


def test_unknown_requested_pipeline_is_refused_with_the_valid_names():
    bootstrap_project(PROJECT_ROOT)
    from kedro.framework.project import pipelines

    from precipdiff.pipeline_registry import register_pipelines

    pipelines.set_requested(["ingestion", "nonexistent"])  # what `kedro run --pipelines=…` does first
    try:
        with pytest.raises(click.BadParameter) as info:
            register_pipelines()
    finally:
        pipelines.set_requested(None)
    message = info.value.format_message()
    assert message.startswith("Invalid value for '--pipelines': unknown pipeline 'nonexistent'. Valid pipelines: ")
    assert "ingestion, preprocessing, training" in message and "'ingestion'" not in message


def test_kedro_run_with_an_unknown_pipeline_says_which_are_valid():
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines=nonexistent"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Error: Invalid value for '--pipelines': unknown pipeline 'nonexistent'. Valid pipelines: __default__" \
        in done.stderr
    assert "ImportError" not in done.stderr
