"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline``.

Each experiment has its own thin folder (``experiment_<name>``, built in ``pipelines/experiments``):
``kedro run --pipelines=<name>`` imports ``precipdiff.pipelines.<name>``, so a pipeline added only
here would not be found from the command line.
"""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def _in_default(name: str) -> bool:
    return name != "inference" and not name.startswith("experiment")


def register_pipelines() -> dict[str, Pipeline]:
    """``__default__``: ingestion → preprocessing → training → evaluation (the HTML report).

    ``inference`` is left out: it reads the user's files named in its parameters (``precipdiff
    downscale`` or ``kedro run --pipelines=inference``), not an output of the other pipelines.
    The experiments are left out too: each retrains or re-scores (``docs/experiments.md``).
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if _in_default(name)), Pipeline([]))
    return pipelines
