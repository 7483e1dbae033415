"""``precipdiff downscale`` stopped by SIGINT and SIGKILL while it writes, then re-run (issue #13, item 4).

The run streams hour files into ``<output>.parts/`` and consolidates them into ``<output>`` at the
end, every file through a temporary name (``precipdiff.inference.output``); these tests stop it
inside those writes. Training: ``tests/pipelines/test_killed_run.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
import xarray as xr
from mlflow import MlflowClient

from precipdiff.atomic import atomic_write
from precipdiff.pipelines.inference import nodes
from tests import paused_run
from tests.pipelines.inference.conftest import downscale, downscale_args

PROVENANCE_TIMES = ("date_created", "history")  # when the file was written: the only differences allowed


def inference_runs(project) -> dict[str, str]:
    """``{run_id: status}`` of the MLflow runs of the ``inference`` pipeline in ``project``'s store."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.run_name = 'inference'")
    return {run.info.run_id: run.info.status for run in runs}


def test_downscale_stopped_by_sigint_and_sigkill_then_rerun_matches_the_uninterrupted_run(
        first_run, trained_project, imerg_dir, imerg_hours, tmp_path, monkeypatch):
    """Issue #13 item 4, inference (3 hours × 3 members, as ``first_run``):

    1. SIGINT (this process, ``precipdiff.cli.main``) inside the write of the second hour file: the
       call raises ``KeyboardInterrupt``; the first hour's file is kept, the second's temporary file
       removed, nothing is published; the MLflow run is ended as ``KILLED`` and the process is left
       without the run's SIGINT state (an atomic write afterwards publishes its file);
    2. SIGKILL (a ``precipdiff downscale`` child, by PID) inside the write of the consolidated output,
       half of it on disk: the child skipped the hour already written; polled all along, the output
       path never held a file, and after the kill it still holds none;
    3. the re-run computes nothing (every hour is in ``<output>.parts/``), removes the killed run's
       temporary file, and publishes an output identical to the uninterrupted run's — every variable,
       coordinate and attribute, except the times it was written at.
    """
    out = tmp_path / "out" / "ensemble.nc"
    parts = out.with_name(out.name + ".parts")
    period = ("--start", imerg_hours[0], "--end", imerg_hours[2], "--members", 3)

    runs_before = inference_runs(trained_project)
    undo = paused_run.install("hour:2", lambda half_written: os.kill(os.getpid(), signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt):
            downscale(trained_project, imerg_dir, out, *period)
    finally:
        undo()
    assert sorted(p.name for p in parts.iterdir()) == [f"{imerg_hours[0]:%Y%m%dT%H%M}.nc", "manifest.json"]
    assert not out.exists()
    interrupted = {k: v for k, v in inference_runs(trained_project).items() if k not in runs_before}
    assert list(interrupted.values()) == ["KILLED"]
    atomic_write(tmp_path / "after.txt", lambda tmp: tmp.write_text("published"))
    assert (tmp_path / "after.txt").read_text() == "published"

    def nothing_published():
        assert not out.exists(), "the output path holds a file before the consolidation finished"

    child = paused_run.start("consolidation", tmp_path / "kill", ["precipdiff", *downscale_args(
        trained_project, imerg_dir, out, *period)], cwd=tmp_path)
    half_written = paused_run.signal_at_pause(child, tmp_path / "kill", watch=nothing_published)
    assert child.returncode == -signal.SIGKILL
    assert "1 of 3 hours already written, skipped" in paused_run.log_text(tmp_path / "kill")
    assert not out.exists() and half_written.parent == out.parent and half_written.exists()
    with pytest.raises(Exception):  # noqa: B017 - truncated: HDF5 refuses it
        xr.open_dataset(half_written).close()

    computed = []
    real = nodes.run_chain
    monkeypatch.setattr(nodes, "run_chain", lambda sat_t, *a, **k: computed.append(len(sat_t)) or real(sat_t, *a, **k))
    assert downscale(trained_project, imerg_dir, out, *period) == 0
    assert computed == []
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no parts, no temporary file
    with xr.open_dataset(out) as new, xr.open_dataset(first_run) as old:
        new, old = new.load(), old.load()
    for key in PROVENANCE_TIMES:
        new.attrs[key] = old.attrs[key]
    xr.testing.assert_identical(new, old)
