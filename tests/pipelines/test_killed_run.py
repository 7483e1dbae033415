"""Runs killed outright (SIGKILL, by PID) during preprocessing and training, then re-run: the re-run
loads no half-written file, checkpoint or model, and ends with the same outputs as the uninterrupted
run (issue #13, item 4). Inference: ``tests/pipelines/inference/test_killed_inference.py``; SIGINT:
``tests/test_interrupts.py``, ``tests/training/test_resume.py`` and the inference test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from precipdiff.registry import load_version
from precipdiff.model_card import TrainedModel
from precipdiff.training.checkpoint import load_checkpoint
from tests import paused_run
from tests.conftest import make_project_copy, run_kedro
from tests.pipelines.evaluation.evaluated_project import build_evaluated_project

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


# ---------------------------------------------------------------------------------------------
# Training: the correction stage of the tiny project (regression, then diffusion: 6 steps each,
# checkpoints at steps 4 and 6), killed twice, then re-run.

TRAINING = ["kedro", "run", "--env", "test", "--pipelines", "correction_training"]
CHECKPOINTS = Path("data/06_models/checkpoints/correction")
MODELS = ("precipdiff-correction", "precipdiff-correction-regression")
PROVENANCE_TAGS = {"stage", "objective", "transform", "residual", "data_fingerprint", "sampler"}


def registered_versions(project: Path) -> dict[str, list[tuple[ModelVersion, TrainedModel]]]:
    """Every registered version of the correction models in ``project``'s store, loaded as inference
    loads them (:func:`~precipdiff.registry.load_version`), oldest first.

    Only the tracking URI is set (the registry follows it): ``mlflow.set_registry_uri`` would also
    set ``MLFLOW_REGISTRY_URI`` in the environment, which later runs of any project — and their
    child processes — would then register into, whatever their ``mlflow.yml`` says.
    """
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        client = MlflowClient()
        return {name: [(mv, load_version(mv)) for mv in sorted(client.search_model_versions(f"name='{name}'"),
                                                               key=lambda mv: int(mv.version))]
                for name in MODELS}
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def uninterrupted_models(tmp_path_factory) -> dict[str, TrainedModel]:
    """The correction models of the uninterrupted tiny run (the evaluation tests' project, trained once)."""
    project = build_evaluated_project(tmp_path_factory)
    return {name: versions[0][1] for name, versions in registered_versions(project).items()}


def assert_same_model(model: TrainedModel, reference: TrainedModel, what: str) -> None:
    assert model.card.provenance.data_fingerprint == reference.card.provenance.data_fingerprint, \
        f"{what}: trained on other data"
    assert model.config == reference.config, what
    ours, theirs = model.model.state_dict(), reference.model.state_dict()
    assert list(ours) == list(theirs), what
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), f"{what}: {key} differs from the uninterrupted run's"


def test_training_killed_mid_checkpoint_and_mid_registration_then_rerun_matches_the_uninterrupted_run(
        tmp_path, tiny_project, uninterrupted_models):
    """Issue #13 item 4, training: ``kedro run`` killed by PID (SIGKILL) twice, then re-run.

    1. killed inside the write of the diffusion model's step-6 checkpoint, half of it on disk: the
       published ``latest.pt`` is still the complete step-4 one, the truncated temporary file does
       not load (the regression model finished and was registered before);
    2. killed just after the registry committed the diffusion model's version: that run resumed
       from the step-4 checkpoint (the truncated file, removed as stale at its start, was never
       read), and the version it left is complete — its artifacts load and equal the uninterrupted
       run's model, its provenance tags are there (written with the version, in one transaction);
    3. the re-run finishes; every version in the registry, the killed runs' included, loads and
       equals the uninterrupted run's model (same data fingerprint, config and state_dict, bit for
       bit), and no temporary file is left under ``data/``.

    SIGINT inside a checkpoint write: ``tests/training/test_resume.py``.
    """
    project = make_project_copy(tmp_path / "project")
    shutil.copytree(tiny_project / "data", project / "data", dirs_exist_ok=True)  # preprocessed; fresh MLflow store
    checkpoints = project / CHECKPOINTS

    child = paused_run.start("checkpoint:diffusion:6", tmp_path / "kill_checkpoint", TRAINING, project)
    half_written = paused_run.signal_at_pause(child, tmp_path / "kill_checkpoint")
    assert child.returncode == -signal.SIGKILL
    assert half_written.parent == checkpoints / "diffusion" and half_written.exists()
    with pytest.raises(Exception):  # noqa: B017 - truncated: torch's zip reader refuses it
        torch.load(half_written, weights_only=True)
    assert load_checkpoint(checkpoints / "diffusion" / "latest.pt")["step"] == 4

    child = paused_run.start("registered:precipdiff-correction", tmp_path / "kill_registration", TRAINING, project)
    paused_run.signal_at_pause(child, tmp_path / "kill_registration")
    assert child.returncode == -signal.SIGKILL
    log = paused_run.log_text(tmp_path / "kill_registration")
    assert f"removed stale temporary file {half_written}" in log and not half_written.exists()
    assert "resumed from" in log and "at step 4 of 6" in log
    [(version, killed)] = registered_versions(project)["precipdiff-correction"]
    assert PROVENANCE_TAGS <= set(version.tags), version.tags
    assert_same_model(killed, uninterrupted_models["precipdiff-correction"], "the killed run's registered version")

    run_kedro(project, ["correction_training"])
    assert not list((project / "data").rglob("*.tmp-*"))
    versions = registered_versions(project)
    assert [len(versions[name]) for name in MODELS] == [2, 3]  # one per run that reached the registration
    for name in MODELS:
        for mv, model in versions[name]:
            assert PROVENANCE_TAGS <= set(mv.tags), (name, mv.version, mv.tags)
            assert_same_model(model, uninterrupted_models[name], f"{name} v{mv.version}")
