"""Fixtures of the evaluation tests."""

import pytest

from tests.pipelines.evaluation.evaluated_project import build_evaluated_project


@pytest.fixture(scope="session")
def evaluated_project(tmp_path_factory):
    """The tiny project after ``training`` + ``evaluation`` (one real KedroSession per test session)."""
    return build_evaluated_project(tmp_path_factory)
