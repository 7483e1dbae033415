"""The shared training template: pairs, patch weights, metric histories, pipeline wiring."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipdiff.data import transforms
from precipdiff.pipelines import correction_training, downscaling_training
from precipdiff.pipelines import residual_training as rt
from tests.stacks import model_input


def _ds(values: dict, res, split, **kw):
    h, w = next(iter(values.values())).shape[1:]
    return model_input(values, 47 + res * (np.arange(h) + 0.5), -122 + res * (np.arange(w) + 0.5), split, **kw)


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    split = ["train", "train", "validation"]
    sat, rad_c = rng.random((3, 2, 3), dtype=np.float32), rng.random((3, 2, 3), dtype=np.float32)
    coarse = _ds({"radar": rad_c, "satellite": sat}, 0.1, split)
    fine = _ds({"radar": rng.random((3, 20, 30), dtype=np.float32)}, 0.01, split)
    return coarse, fine


def test_correction_pairs_residual_and_static_channels(inputs):
    coarse, _ = inputs
    pairs = rt.correction_pairs(coarse, {"static_channels": ["lat", "lon"]})
    assert pairs.cond.shape == (3, 3, 2, 3) and pairs.channels == ["base", "lat", "lon"]
    np.testing.assert_allclose(pairs.base[:, 0] + pairs.residual[:, 0], coarse.radar.values, rtol=1e-6)
    np.testing.assert_allclose(pairs.cond[1, 1, :, 0], coarse.lat.values[1])  # latitude channel, degrees


def test_the_card_records_the_ingestion_source_and_region(inputs):
    coarse, _ = inputs
    coarse = coarse.assign_coords(region=("sample", ["montana"] * 3))  # the one box of region montana
    pairs = rt.correction_pairs(coarse, {"static_channels": []}, {"source": "files", "region": "montana"})
    card = rt.model_card(pairs, {"stage": "correction", "sampler": {}, "residual_base": "input"}, "edm")
    assert card.provenance.source == "files" and card.provenance.regions == ("montana",)
    assert card.provenance.period == ("2022-10-01T01:00Z", "2022-10-01T02:00Z") and not card.provenance.synthetic
    unnamed = rt.model_card(rt.correction_pairs(inputs[0], {"static_channels": []}), {"stage": "correction",
                            "sampler": {}, "residual_base": "input"}, "edm")
    assert unnamed.provenance.regions == () and "box" in unnamed.provenance.describe()  # no region: its box
    assert "real files" in card.provenance.describe() and "montana" in card.provenance.describe()


def test_downscaling_pairs_use_the_preprocessing_upsampling(inputs):
    coarse, fine = inputs
    pairs = rt.downscaling_pairs(coarse, fine, {"static_channels": []})
    expected = transforms.upsample(coarse.radar.values, 10, "bilinear")
    np.testing.assert_allclose(pairs.base[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(pairs.residual[:, 0], fine.radar.values - expected, rtol=1e-5, atol=1e-6)


def test_fingerprint_changes_with_the_data(inputs):
    coarse, _ = inputs
    a = rt.correction_pairs(coarse, {"static_channels": []})
    b = rt.correction_pairs(coarse.assign(radar=coarse.radar + 0.01), {"static_channels": []})
    assert rt.data_fingerprint(a) == rt.data_fingerprint(rt.correction_pairs(coarse, {"static_channels": []}))
    assert rt.data_fingerprint(a) != rt.data_fingerprint(b)


def test_patch_table_weights_and_filters(inputs):
    coarse, _ = inputs
    pairs = rt.correction_pairs(coarse, {"static_channels": []})
    patches = pd.DataFrame({"split": ["train", "validation", "test", "train"], "wet_fraction": [0.5, 0.2, 0.9, 0.4],
                            "valid_fraction": [1.0, 1.0, 1.0, 0.5], "sample_index": [0, 2, 1, 1], "row": 0,
                            "col": [0, 1, 0, 0], "size": 2, "region": ["box", "box", "box", "north"]})
    params = {"min_valid_fraction": 0.9, "wet_weight_floor": 0.05, "stage": "correction"}
    table = rt._patch_table(patches, {**params, "wet_weight_on": "target"}, pairs)
    assert list(table.split) == ["train", "validation"]  # test split and mostly-missing patches dropped
    np.testing.assert_allclose(table.weight, [0.55, 0.25])
    # default: the condition's (satellite's) wet fraction, by hand over the 2 × 2 patches
    wet = np.expm1(coarse.satellite.values) >= 0.1
    by_hand = [wet[0, 0:2, 0:2].mean(), wet[2, 0:2, 1:3].mean()]
    np.testing.assert_allclose(rt._patch_table(patches, params, pairs).weight, 0.05 + np.array(by_hand))
    with pytest.raises(ValueError, match="wet_weight_on"):
        rt._patch_table(patches, {**params, "wet_weight_on": "radar"}, pairs)
    held_out = rt._patch_table(patches, {**params, "min_valid_fraction": 0.0, "exclude_regions": ["north"]}, pairs)
    assert "north" not in set(held_out["region"]) and len(held_out) == 2


def test_condition_weighting_leaves_what_the_model_expects_given_the_condition_unbiased():
    """Why the weights depend on the condition only (#23): drawing by the target's wet fraction makes
    'rain given a dry satellite' far more frequent in the draws than in the data; by the condition, not."""
    rng = np.random.default_rng(1)
    n = 200_000
    sat_wet = rng.random(n) < 0.3
    radar_wet = np.where(sat_wet, rng.random(n) < 0.8, rng.random(n) < 0.05)  # P(rain | dry satellite) = 5 %
    for weights, expected in ((0.05 + sat_wet, 0.05), (0.05 + radar_wet, None)):
        draw = rng.choice(n, size=n, p=weights / weights.sum())
        seen = radar_wet[draw][~sat_wet[draw]].mean()
        if expected is not None:
            assert seen == pytest.approx(expected, abs=0.005)
        else:
            assert seen > 0.4  # 1.05·0.05 / (1.05·0.05 + 0.05·0.95) ≈ 0.53: the bias behind 'rain from nothing'


def test_a_held_out_region_is_neither_trained_nor_validated_on():
    rng = np.random.default_rng(3)
    split = ["train", "train", "validation", "validation", "test", "test"]
    regions = ["north", "south"] * 3
    times = pd.to_datetime(["2022-01-01T01"] * 2 + ["2022-01-01T02"] * 2 + ["2022-01-01T03"] * 2).values
    kw = {"times": times, "box_numbers": [1, 2] * 3, "regions": regions}
    coarse = _ds({"radar": rng.random((6, 2, 3)), "satellite": rng.random((6, 2, 3))}, 0.1, split, **kw)
    params = {"stage": "correction", "static_channels": ["lat", "lon"], "exclude_regions": ["south"]}
    pairs = rt.correction_pairs(coarse, params)
    assert pairs.split.tolist() == ["train", "held_out", "validation", "held_out", "test", "held_out"]
    tiles = rt.validation_tiles(pairs, {"tile": 2, "n_tiles": 10})
    assert len(tiles[0]) == 1  # the north box-hour of the validation hour only
    card = rt.model_card(pairs, {**params, "residual_base": "input", "regression": {"enabled": True}}, "edm")
    assert card.provenance.regions == ("north",) and card.provenance.held_out_regions == ("south",)
    with pytest.raises(ValueError, match="not in the data's regions"):
        rt.correction_pairs(coarse, {**params, "exclude_regions": ["west"]})


def test_history_metrics_format():
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [np.nan, 0.4]})
    out = rt.history_metrics(hist, "diffusion")
    assert out["diffusion_train_loss"] == [{"value": 1.0, "step": 1}, {"value": 0.5, "step": 2}]
    assert out["diffusion_val_loss"] == [{"value": 0.4, "step": 2}]


def test_the_two_pipelines_are_one_template_in_two_namespaces():
    c, d = correction_training.create_pipeline(), downscaling_training.create_pipeline()
    strip = lambda p: sorted(n.name.split(".", 1)[1] for n in p.nodes)  # noqa: E731
    assert strip(c) == strip(d)
    assert "coarse_patches" in c.inputs() and "fine_patches" in d.inputs()
    assert {"correction_diffusion_model", "correction_regression_model"} <= c.all_outputs()


def test_absolute_residual_pairs_rebuild_the_target(inputs):
    coarse, _ = inputs
    pairs = rt.correction_pairs(coarse, {"residual": "absolute"})
    assert pairs.residual_kind == "absolute"
    mm_h = transforms.inverse_transform(coarse.radar.values) - transforms.inverse_transform(coarse.satellite.values)
    np.testing.assert_allclose(pairs.residual[:, 0], mm_h, rtol=1e-5, atol=1e-6)  # residual in mm/h
    np.testing.assert_allclose(pairs.target(slice(None))[:, 0], coarse.radar.values, rtol=1e-5, atol=1e-6)


def test_residual_base_is_checked_and_needs_the_regression():
    params = {"stage": "correction", "regression": {"enabled": True}}
    assert rt.residual_base(params) == "input"
    assert rt.residual_base({**params, "residual_base": "regression"}) == "regression"
    with pytest.raises(ValueError, match="correction_training.residual_base: expected one of"):
        rt.residual_base({**params, "residual_base": "mean"})
    with pytest.raises(ValueError, match="regression.enabled is false"):
        rt.residual_base({**params, "residual_base": "regression", "regression": {"enabled": False}})


def test_diffusion_only_template_trains_the_regression_only_as_a_base(inputs):
    p = rt.residual_training_pipeline("correction", diffusion_only=True)
    assert "correction.regression_model" in p.all_outputs() and "correction.validation_skill" not in p.all_outputs()
    coarse, _ = inputs
    pairs = rt.correction_pairs(coarse, {"static_channels": []})
    stand_in, history = rt.train_base_regression(pairs, pd.DataFrame(), {"stage": "correction",
                                                                        "regression": {"enabled": True}})
    assert not stand_in.enabled and history == {}  # residual_base input: nothing trained


def test_the_regression_base_is_predicted_only_where_training_reads_it():
    """The residual left by the regression is computed for the train and validation box-hours only
    (the test ones are never read by training): NaN there, the same values as a full prediction elsewhere."""
    from tests.inference.chain_models import unet_model

    regression = unet_model("downscaling", seed=1, objective="regression")
    cond = np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)
    where = np.array([True, False, True, True, False])
    full = rt.predict_residual(regression, cond, batch=2)
    some = rt.predict_residual(regression, cond, batch=2, where=where)
    assert np.isfinite(full).all() and np.isnan(some[~where]).all()
    np.testing.assert_allclose(some[where], full[where], atol=1e-2)  # bf16: batches of other hours
    assert np.abs(full).max() > 0
