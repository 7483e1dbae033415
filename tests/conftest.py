"""Shared test fixtures: project paths and the tiny Kedro project run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import precipdiff  # noqa: F401  (loads the system SQLite before any test imports eccodes)

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

SEATTLE = {"lat_min": 46.5, "lat_max": 48.5, "lon_min": -123.5, "lon_max": -121.5}


def make_project_copy(tmp: Path) -> Path:
    """A throw-away copy of the project's configuration (the package itself is installed)."""
    shutil.copytree(PROJECT_ROOT / "conf", tmp / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp / "conf" / "local").mkdir()
    (tmp / "src").mkdir()  # the package itself is installed (editable)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp / "pyproject.toml")
    for layer in ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
                  "06_models", "07_model_output", "08_reporting"):
        (tmp / "data" / layer).mkdir(parents=True)
    return tmp


def run_kedro(project: Path, pipelines: list[str], env: str = "test", params: dict | None = None):
    """Run pipelines through a real KedroSession inside ``project`` (cwd matters for MLflow)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from precipdiff.hooks import close_session_run

    cwd, interrupted = os.getcwd(), False
    os.chdir(project)
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=params or {}) as session:
            return session.run(pipeline_names=pipelines)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # kedro-mlflow re-opens the run (nested) before every node and closes it once: in a
        # long-lived process the stack keeps it open. Close it while the relative URI points here.
        close_session_run(interrupted)
        os.chdir(cwd)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """The tiny test configuration after ``ingestion`` + ``preprocessing`` (run once per session)."""
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    run_kedro(project, ["ingestion", "preprocessing"])
    return project
