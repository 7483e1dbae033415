"""A run killed outright (SIGKILL, by PID) during preprocessing, then re-run: the re-run loads no
half-written file and ends with the same outputs as the uninterrupted run (issue #13, item 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.conftest import make_project_copy, run_kedro

OUTPUTS_NC = ["data/03_primary/radar.nc", "data/04_feature/radar_coarse.nc", "data/05_model_input/fine.nc"]
OUTPUTS_PARQUET = ["data/04_feature/splits.parquet", "data/05_model_input/fine_patches.parquet"]


def test_sigkill_during_preprocessing_then_rerun_matches_the_uninterrupted_run(tmp_path, tiny_project):
    project = make_project_copy(tmp_path)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    child = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--env", "test",
                              "--pipelines", "ingestion,preprocessing"], cwd=project, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker, deadline = project / "data/03_primary/satellite.nc", time.monotonic() + 240
    while not marker.exists():  # ingestion done, preprocessing writing
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the run never reached preprocessing (status {child.poll()})")
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    run_kedro(project, ["ingestion", "preprocessing"])  # the re-run
    assert not list((project / "data").rglob("*.tmp-*"))  # the killed run's leftovers are gone
    for rel in OUTPUTS_NC:
        with xr.open_dataset(project / rel) as a, xr.open_dataset(tiny_project / rel) as b:
            xr.testing.assert_identical(a.load(), b.load())
    for rel in OUTPUTS_PARQUET:
        pd.testing.assert_frame_equal(pd.read_parquet(project / rel), pd.read_parquet(tiny_project / rel))
    assert np.isfinite(xr.open_dataset(project / OUTPUTS_NC[-1])["radar"].values).any()
