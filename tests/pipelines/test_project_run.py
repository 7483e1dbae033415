"""The tiny configuration through a real KedroSession: ingestion + preprocessing, MLflow, bad config."""

import mlflow
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.conftest import make_project_copy, run_kedro


def test_outputs_follow_the_contract(tiny_project):
    from precipdiff.data import boxes, contract

    contract.validate_pair(xr.open_dataset(tiny_project / "data/02_intermediate/satellite.nc"),
                           xr.open_dataset(tiny_project / "data/02_intermediate/radar.nc"))
    sat = xr.open_dataset(tiny_project / "data/03_primary/satellite.nc").load()
    radar = xr.open_dataset(tiny_project / "data/03_primary/radar.nc").load()
    boxes.validate_stack_pair(sat, radar)  # from preprocessing on: the stack of the one box, its hours in order
    assert sat.sizes == {"sample": 96, "y": 4, "x": 4} and set(sat.box_number.values) == {0}
    coarse = xr.open_dataset(tiny_project / "data/05_model_input/coarse.nc")
    assert coarse.satellite.attrs["transform"] == "log1p" and coarse.satellite.attrs["units"] == "1"
    assert set(np.unique(coarse.split.values)) == {"train", "validation", "test"}
    pooled = xr.open_dataset(tiny_project / "data/04_feature/radar_coarse.nc")
    np.testing.assert_allclose(  # max pooling on disk == block maxima of the radar on disk
        pooled.precipitation.values,
        radar.precipitation.values.reshape(96, 4, 10, 4, 10).max(axis=(2, 4)), rtol=1e-6)


def test_patch_index_and_statistics(tiny_project):
    fine = pd.read_parquet(tiny_project / "data/05_model_input/fine_patches.parquet")
    assert {"time", "sample_index", "row", "col", "wet_fraction", "split"} <= set(fine.columns)
    assert fine.wet_fraction.between(0, 1).all() and set(fine["size"]) == {32}
    stats = pd.read_parquet(tiny_project / "data/05_model_input/statistics.parquet")
    assert {"residual_correction", "residual_downscaling"} <= set(stats.variable)
    splits = pd.read_parquet(tiny_project / "data/04_feature/splits.parquet")
    assert (splits.split == "gap").sum() == 8


def test_mlflow_run_logged_parameters(tiny_project):
    mlflow.set_tracking_uri(f"sqlite:///{tiny_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["precipdiff"])
    assert len(runs) == 1
    assert runs.loc[0, "params.ingestion.box.lat_min"] == "47.0"
    assert runs.loc[0, "params.preprocessing.pooling"] == "max"


def test_figure_is_a_plotly_json(tiny_project):
    import plotly.io as pio

    fig = pio.read_json(tiny_project / "data/08_reporting/sample_hours.json")
    assert len(fig.data) == 6 and fig.layout.xaxis.title.text.startswith("longitude")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ingestion": {"source": "nope"}}, "ingestion.source"),
        ({"ingestion": {"box": {"lat_min": 47.01, "lat_max": 47.05}}}, "ingestion.box"),
        ({"preprocessing": {"split": {"fractions": {"train": 0.5, "validation": 0.1, "test": 0.1}}}},
         "preprocessing.split.fractions"),
    ],
)
def test_bad_configuration_names_the_parameter(tmp_path, params, message):
    project = make_project_copy(tmp_path)
    with pytest.raises(Exception, match=message):
        run_kedro(project, ["ingestion", "preprocessing"], params=params)
