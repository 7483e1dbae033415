"""A tiny trained project (``kedro run --pipelines=training --env test``) with a champion, and IMERG
files over its domain: the README path of ``precipdiff downscale``, once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml
from mlflow import MlflowClient

from tests.conftest import make_project_copy, run_kedro

try:  # the evaluation tests' project (training + evaluation), built once per session
    from tests.pipelines.evaluation.evaluated_project import build_evaluated_project
except ImportError:
    build_evaluated_project = None
from tests.inference.imerg_files import write_hours

MODELS = ("precipdiff-correction", "precipdiff-downscaling")
BOX = "47.0,47.4,-122.4,-122.0"  # the tiny project's box (conf/test/parameters_ingestion.yml)


def downscale_args(project, imerg_dir, output, *extra) -> list[str]:
    """``precipdiff downscale`` options: ``imerg_dir`` over the tiny box, ``output``, the test env, no bars;
    the tiny models are synthetic-trained and the input is IMERG files, so ``--allow-synthetic-models``."""
    return ["downscale", "--input", str(imerg_dir), "--box", BOX, "--output", str(output), "--env", "test",
            "--project", str(project), "--no-progress", "--allow-synthetic-models", *map(str, extra)]


def downscale(project, imerg_dir, output, *extra) -> int:
    """``precipdiff downscale`` in this process (``precipdiff.cli.main``, as the console script runs it)."""
    from precipdiff.cli import main

    return main(downscale_args(project, imerg_dir, output, *extra))


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory):
    """A tiny trained project whose registry has a ``champion`` for both diffusion models.

    A copy of the evaluation tests' project (``training`` + ``evaluation``, which sets the champion:
    the README path, and one training per test session), else a project trained here.
    ``PRECIPDIFF_TEST_TRAINED_PROJECT=<dir>`` reuses a project trained earlier (iterating on the
    inference code without re-training; its conf/ is refreshed from the repository).
    """
    reuse = os.environ.get("PRECIPDIFF_TEST_TRAINED_PROJECT")
    project = tmp_path_factory.mktemp("inference_project")
    if reuse:
        project = Path(reuse)
        shutil.rmtree(project / "conf")
        shutil.copytree(Path(__file__).parents[3] / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
        (project / "conf" / "local").mkdir()
    elif build_evaluated_project is not None:
        shutil.copytree(build_evaluated_project(tmp_path_factory), project, dirs_exist_ok=True)
    else:
        make_project_copy(project)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny models: one thread is as fast, and immune to a busy machine
        try:
            run_kedro(project, ["training"], env="test")
        finally:
            torch.set_num_threads(threads)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    for name in MODELS:
        if "champion" not in client.get_registered_model(name).aliases:
            client.set_registered_model_alias(name, "champion", "1")
    return project


@pytest.fixture
def registry(trained_project):
    """MLflow pointed at the trained project's store (restored afterwards)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{trained_project / 'mlflow.db'}")
    cwd = os.getcwd()
    os.chdir(trained_project)  # artifact locations are relative to the project
    yield MlflowClient()
    os.chdir(cwd)
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def satellite_truth(trained_project) -> xr.Dataset:
    """The project's canonical satellite data, ``satellite_raw`` (what the IMERG files are written from)."""
    catalog = yaml.safe_load((trained_project / "conf/base/catalog.yml").read_text())
    with xr.open_dataset(trained_project / catalog["satellite_raw"]["filepath"]) as ds:
        return ds.load()


@pytest.fixture(scope="session")
def imerg_hours(satellite_truth) -> pd.DatetimeIndex:
    """Four consecutive hours around the wettest hour of the last day (test split)."""
    mean = satellite_truth["precipitation"].isel(time=slice(-24, -3)).mean(("lat", "lon"))
    wettest = int(np.argmax(mean.values)) + satellite_truth.sizes["time"] - 24
    return pd.DatetimeIndex(satellite_truth["time"].values[max(wettest - 1, 0):][:4])


@pytest.fixture(scope="session")
def imerg_dir(satellite_truth, imerg_hours, tmp_path_factory):
    """IMERG V07 half-hour files (GES DISC names and layout) for ``imerg_hours``, on a 0.1° grid one
    cell wider than the project's box on every side (hour H = mean of its two half hours)."""
    sat = satellite_truth["precipitation"]
    lat = np.round(np.r_[sat.lat[0] - 0.1, sat.lat.values, sat.lat[-1] + 0.1], 2)
    lon = np.round(np.r_[sat.lon[0] - 0.1, sat.lon.values, sat.lon[-1] + 0.1], 2)
    padded = np.pad(sat.sel(time=imerg_hours).values, ((0, 0), (1, 1), (1, 1)), constant_values=0.0)
    folder = tmp_path_factory.mktemp("imerg")
    write_hours(folder, imerg_hours, lat, lon, padded)
    return folder


@pytest.fixture(scope="session")
def first_run(trained_project, imerg_dir, imerg_hours, tmp_path_factory):
    """3 hours × 3 members with the champion models, uninterrupted; returns the output path."""
    out = tmp_path_factory.mktemp("out") / "ensemble.nc"
    assert downscale(trained_project, imerg_dir, out, "--start", imerg_hours[0], "--end", imerg_hours[2],
                     "--members", 3) == 0
    return out
