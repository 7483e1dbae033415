"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline``, plus one
``experiment_<name>`` per experiment (``pipelines/experiments``)."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments import experiment_pipelines

NOT_DEFAULT = ("inference", "experiments")


def register_pipelines() -> dict[str, Pipeline]:
    """``__default__``: ingestion → preprocessing → training → evaluation (the HTML report).

    ``inference`` is left out: it reads the user's files named in its parameters (``precipdiff
    downscale`` or ``kedro run --pipelines=inference``), not an output of the other pipelines.
    The experiments are left out too: each retrains or re-scores (``docs/experiments.md``).
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if name not in NOT_DEFAULT), Pipeline([]))
    pipelines.update(experiment_pipelines())
    return pipelines
