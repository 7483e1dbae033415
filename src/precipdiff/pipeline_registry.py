"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """``__default__``: ingestion → preprocessing → training → evaluation (the HTML report).

    ``inference`` is left out: it reads the user's files named in its parameters (``precipdiff
    downscale`` or ``kedro run --pipelines=inference``), not an output of the other pipelines.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if name != "inference"), Pipeline([]))
    return pipelines
