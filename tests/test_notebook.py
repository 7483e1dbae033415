"""notebooks/walkthrough.ipynb runs top to bottom (nbclient) on a project with evaluation outputs, and is
kept in git without outputs (its plotly figures alone were ~10k lines of JSON)."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.pipelines.evaluation.evaluated_project import build_evaluated_project

NOTEBOOK = PROJECT_ROOT / "notebooks" / "walkthrough.ipynb"


@pytest.fixture(scope="session")
def evaluated_project(tmp_path_factory):
    """The tiny project after ``training`` + ``evaluation`` (shared with tests/pipelines/evaluation)."""
    return build_evaluated_project(tmp_path_factory)


def test_walkthrough_executes(evaluated_project, monkeypatch):
    monkeypatch.setenv("PRECIPDIFF_PROJECT", str(evaluated_project))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "evaluation_metrics" in text and "diffusion_chain" in text and "CRPS fair" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_walkthrough_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    kept = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not kept, (f"{NOTEBOOK.name}: code cells {kept} carry outputs; clear them before committing "
                      "(Jupyter: Edit → Clear All Outputs)")
