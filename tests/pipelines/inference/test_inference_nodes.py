"""Inference nodes: every check on the request runs before any compute."""

from __future__ import annotations

import re
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.data.contract import grid_for_box, make_dataset
from precipdiff.inference.datasets import SatelliteFiles
from precipdiff.inference.inputs import InputError
from precipdiff.pipelines.inference import nodes
from tests.inference.chain_models import pixel_model, unet_model
from tests.inference.imerg_files import write_hours

CHAIN = {"n_members": 2, "seed": 0, "sampler": {"num_steps": 2, "solver": "euler", "S_churn": None},
         "tile": 16, "overlap": 4, "batch_size": 4}
PARAMS = {"box": {"lat_min": 47.0, "lat_max": 47.3, "lon_min": -122.4, "lon_max": -122.1}, "start": None,
          "end": None, "thresholds_mm_h": [0.1, 1.0], "max_rate_mm_h": 300.0, "max_output_rate_mm_h": 300.0,
          "progress": False, "chain": CHAIN}
HOURS = pd.date_range("2023-07-01T01:00", periods=3, freq="h")


def satellite(box=PARAMS["box"], synthetic: bool = True) -> xr.Dataset:
    lat, lon = grid_for_box(box, "satellite")
    values = np.random.default_rng(0).gamma(0.5, 2.0, (len(HOURS), lat.size, lon.size))
    source = "IMERG-like satellite simulated from radar by precipdiff (test)" if synthetic else "test"
    return make_dataset(values, HOURS.values, lat, lon, kind="satellite", source=source)


def test_all_missing_hours_are_named_before_any_compute(tmp_path):
    lat, lon = grid_for_box({"lat_min": 46.9, "lat_max": 47.5, "lon_min": -122.5, "lon_max": -122.0}, "satellite")
    fields = [np.ones((lat.size, lon.size)), np.full((lat.size, lon.size), np.nan), np.ones((lat.size, lon.size))]
    write_hours(tmp_path, HOURS, lat, lon, fields)
    files = SatelliteFiles(tuple(sorted(tmp_path.iterdir())))
    with pytest.raises(InputError, match="have no valid satellite value") as info:
        nodes.read_satellite(files, PARAMS)
    assert str(HOURS[1]) in str(info.value)


def test_box_outside_the_training_domain_is_a_note_and_an_attribute_and_computes_nothing(monkeypatch):
    monkeypatch.setattr(nodes, "run_chain", lambda *a, **k: pytest.fail("nothing is sampled while planning"))
    box = {"lat_min": 47.0, "lat_max": 47.8, "lon_min": -122.4, "lon_max": -122.1}  # north of the domain
    job = nodes.plan_ensemble(satellite(box, synthetic=True), pixel_model("correction"), pixel_model("downscaling"),
                              {**PARAMS, "box": box})
    notes = job.attrs[nodes.NOTES_ATTR].splitlines()
    assert len(notes) == 2 and "leaves the training domain of correction model (not registered)" in notes[0]
    assert "lat 47.05..47.75" in notes[1] and "(lat 47.05..47.35" in notes[1]
    assert job.attrs["outside_training_domain"] == "yes"
    assert list(job.hours) == list(HOURS) and len(job.signature["member_seeds"]) == 2


def test_the_note_says_what_leaving_the_domain_implies_for_what_the_model_conditions_on():
    """#21: a model that reads lat/lon extrapolates in location outside its box; one that does not is
    applying its training regions' weather, and the note says which."""
    import dataclasses

    from precipdiff.model_card import Conditioning

    located = pixel_model("correction")
    assert located.card.conditioning.static_channels == ("lat", "lon")
    assert "takes lat and lon as inputs" in nodes.conditioning_implication(located)
    free = dataclasses.replace(located, card=dataclasses.replace(located.card, conditioning=Conditioning(())))
    line = nodes.conditioning_implication(free)
    assert "no location inputs" in line and "lat" not in line


def _imerg_input(tmp_path) -> xr.Dataset:
    lat, lon = grid_for_box({"lat_min": 46.9, "lat_max": 47.5, "lon_min": -122.5, "lon_max": -122.0}, "satellite")
    write_hours(tmp_path, HOURS, lat, lon, [np.ones((lat.size, lon.size))] * len(HOURS))
    return nodes.read_satellite(SatelliteFiles(tuple(sorted(tmp_path.iterdir()))), PARAMS)


def test_synthetic_trained_models_are_refused_on_real_files_unless_allowed(tmp_path):
    """Issue #23: one line says why; with the flag the run goes on and the file says so."""
    real = _imerg_input(tmp_path)
    with pytest.raises(ValueError) as refused:
        nodes.plan_ensemble(real, pixel_model("correction"), pixel_model("downscaling"), PARAMS)
    message = str(refused.value)
    assert "\n" not in message and "was trained on synthetic data" in message and "real (IMERG)" in message
    assert "--allow-synthetic-models" in message and "correction model (not registered)" in message
    job = nodes.plan_ensemble(real, pixel_model("correction"), pixel_model("downscaling"),
                              {**PARAMS, "allow_synthetic_models": True})
    assert "allowed by --allow-synthetic-models" in job.attrs[nodes.NOTES_ATTR]
    assert job.attrs["correction_training_source"] == "synthetic"
    assert job.attrs["correction_training_period"] == "2022-10-01T01:00Z/2022-10-21T12:00Z"
    assert "synthetic data" in job.attrs["downscaling_training_data"]
    ds = job.compute(HOURS[:1])
    assert ds["precipitation"].shape[1] == 2  # it runs


def test_models_trained_on_real_files_or_synthetic_input_need_no_flag(tmp_path):
    real = _imerg_input(tmp_path)
    job = nodes.plan_ensemble(real, pixel_model("correction", "files"), pixel_model("downscaling", "files"), PARAMS)
    assert job.attrs[nodes.NOTES_ATTR] == "none" and job.attrs["correction_training_source"] == "files"
    synthetic = nodes.plan_ensemble(satellite(synthetic=True), pixel_model("correction"), pixel_model("downscaling"),
                                    PARAMS)
    assert synthetic.attrs[nodes.NOTES_ATTR] == "none"
    unknown = pixel_model("correction", source=None)  # no source recorded: not trusted on real input
    with pytest.raises(ValueError, match="no source recorded"):
        nodes.plan_ensemble(real, unknown, pixel_model("downscaling", "files"), PARAMS)


def test_planned_job_computes_the_product():
    job = nodes.plan_ensemble(satellite(), pixel_model("correction"), pixel_model("downscaling"), PARAMS)
    assert job.attrs["outside_training_domain"] == "no"
    ds = job.compute(HOURS[1:2])
    assert ds["precipitation"].shape == (1, 2, 30, 30) and ds["satellite_precipitation"].shape == (1, 3, 3)
    assert job.signature["correction_sampler"]["solver"] == "euler"  # parameters override the model's
    assert job.signature["correction_sampler"]["num_steps"] == 2
    assert job.attrs["sampler_solver"] == "euler" and job.attrs["n_members"] == 2


def test_runaway_samples_are_clipped_and_counted(monkeypatch):
    """A diverging member (1e6 mm/h, +inf) is clipped to the bound; the clipped cells are counted per
    hour in the product and NaN (missing) is left alone."""
    real = nodes.run_chain

    def runaway(*args, **kwargs):
        corrected, fine = real(*args, **kwargs)
        fine[0, 1, :2, :3] = np.log1p(1e6)  # 6 cells of member 1 in hour 0
        fine[0, 0, 5, 5] = np.inf
        fine[0, 0, 6, 6] = np.nan
        corrected[0, 0, 0, 0] = np.log1p(5e3)
        return corrected, fine

    monkeypatch.setattr(nodes, "run_chain", runaway)
    job = nodes.plan_ensemble(satellite(), pixel_model("correction"), pixel_model("downscaling"), PARAMS)
    ds = job.compute(HOURS[:2])
    assert ds["clipped_cells"].values.tolist() == [7, 0]
    assert ds["clipped_corrected_cells"].values.tolist() == [1, 0]
    members = ds["precipitation"].values
    assert np.nanmax(members) == np.float32(300.0) and np.isnan(members[0, 0, 6, 6])
    assert ds["corrected_precipitation_max"].values.max() == np.float32(300.0)
    metrics = {k: v[0]["value"] for k, v in nodes.ensemble_metrics(ds).items()}  # the MLflow run metrics
    assert metrics["clipped_cells"] == 7 and metrics["clipped_corrected_cells"] == 1 and metrics["hours"] == 2
    assert metrics["clipped_fraction"] == pytest.approx(7 / members.size)


def test_regression_models_give_one_member():
    corr, down = unet_model("correction", 1, "regression"), unet_model("downscaling", 2, "regression")
    job = nodes.plan_ensemble(satellite(), corr, down, PARAMS)
    ds = job.compute(HOURS[:1])
    assert ds.sizes["member"] == 1 and list(ds["member_seed"].values) == job.signature["member_seeds"]


def test_models_swapped_are_refused():
    with pytest.raises(ValueError, match="expected a correction model"):
        nodes.plan_ensemble(satellite(), pixel_model("downscaling"), pixel_model("downscaling"), PARAMS)


@pytest.mark.parametrize(
    ("override", "key"),
    [({"chain": {**CHAIN, "n_members": 0}}, "inference.chain.n_members"),
     ({"thresholds_mm_h": []}, "inference.thresholds_mm_h"),
     ({"chain": {**CHAIN, "sampler": {"solver": "rk4"}}}, "inference.chain.sampler.solver"),
     ({"chain": {**CHAIN, "sampler": {"steps": 4}}}, "inference.chain.sampler"),
     ({"chain": {**CHAIN, "members": 4}}, "inference.chain: unknown key(s) ['members']"),
     ({"start": "yesterday"}, "inference.start"),
     ({"box": {"lat_min": 47.0, "lat_max": 47.01, "lon_min": 0, "lon_max": 1}}, "inference.box"),
     ({"chain": {**CHAIN, "tile": 8, "overlap": 8}}, "inference.chain.overlap"),
     ({"max_output_rate_mm_h": 0}, "inference.max_output_rate_mm_h")],
)
def test_bad_parameters_are_named(override, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        nodes.check_parameters({**PARAMS, **override})
