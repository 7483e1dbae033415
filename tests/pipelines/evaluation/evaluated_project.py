"""One tiny project with ``training`` + ``evaluation`` outputs, built once per test session.

Shared by ``tests/pipelines/evaluation`` and ``tests/test_notebook.py`` (a module-level cache, so
the two fixtures that call :func:`build_evaluated_project` run Kedro only once).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_project_copy, run_kedro

_BUILT: dict[str, Path] = {}


def build_evaluated_project(tmp_path_factory) -> Path:
    """``kedro run --env test --pipelines=training,evaluation`` in a throw-away project copy."""
    if "path" not in _BUILT:
        project = make_project_copy(tmp_path_factory.mktemp("evaluated"))
        run_kedro(project, ["training", "evaluation"], env="test")
        _BUILT["path"] = project
    return _BUILT["path"]
