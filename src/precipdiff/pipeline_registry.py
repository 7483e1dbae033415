"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline``.

Each experiment has its own thin folder (``experiment_<name>``, built in ``pipelines/experiments``):
``kedro run --pipelines=<name>`` imports ``precipdiff.pipelines.<name>``, so a pipeline added only
here would not be found from the command line.

An unknown name in ``kedro run --pipelines=…`` is refused here, listing the valid names: Kedro's
own ``find_pipelines(raise_errors=True)`` reports it as an ``ImportError`` of the module
``precipdiff.pipelines.<name>`` with no list (Kedro 1.7), before its session could suggest names.
"""

from importlib import resources

import click
from kedro.framework.project import find_pipelines
from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Pipeline


def _in_default(name: str) -> bool:
    return name != "inference" and not name.startswith("experiment")


def register_pipelines() -> dict[str, Pipeline]:
    """``__default__``: ingestion → preprocessing → training → evaluation (the HTML report).

    ``inference`` is left out: it reads the user's files named in its parameters (``precipdiff
    downscale`` or ``kedro run --pipelines=inference``), not an output of the other pipelines.
    The experiments are left out too: each retrains or re-scores (``docs/experiments.md``).
    """
    check_requested()
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if _in_default(name)), Pipeline([]))
    return pipelines


def pipeline_names() -> list[str]:
    """Every pipeline name ``kedro run --pipelines`` accepts: ``__default__`` and the folders of ``pipelines/``."""
    folders = resources.files("precipdiff.pipelines").iterdir()
    return ["__default__", *sorted(p.name for p in folders if p.is_dir() and not p.name.startswith(("_", ".")))]


def check_requested() -> None:
    """Raise ``click.BadParameter`` (``Error: Invalid value for '--pipelines'``) for unknown requested names.

    The names come from ``kedro run --pipelines`` through Kedro's lazy pipeline registry (its
    ``_requested_pipelines``, set before the registry is read); without it nothing is checked.
    """
    requested = getattr(project_pipelines, "_requested_pipelines", None) or []
    valid = pipeline_names()
    unknown = [name for name in requested if name not in valid]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise click.BadParameter(f"unknown pipeline {names}. Valid pipelines: {', '.join(valid)}",
                                 ctx=click.get_current_context(silent=True), param_hint="'--pipelines'")
