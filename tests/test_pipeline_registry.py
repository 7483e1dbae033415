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
