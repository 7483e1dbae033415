"""train(): learning on both objectives, statistics, errors, non-finite loss."""

import math

import numpy as np
import pytest
import torch
from tests.training.conftest import TINY, make_problem

from precipdiff.nn import build_model
from precipdiff.training import NonFiniteLossError, resolve_config, train
from precipdiff.training.data import draw_batch, normalisation_stats, prepare_data


@pytest.mark.parametrize(("objective", "drop"), [("regression", 0.6), ("edm", 0.85)])
def test_loss_falls_on_both_objectives(problem, objective, drop):
    cfg = dict(TINY, epochs=4, steps_per_epoch=15, lr=2e-3, model={"base_channels": 16, "channel_mult": [1, 2],
                                                                    "attn_levels": [1]})
    out = train(*problem, cfg, objective=objective, seed=0, progress=False)
    h = out.history
    assert {"epoch", "step", "train_loss", "val_loss", "lr", "samples_per_s", "seconds"} <= set(h.columns)
    assert h["step"].tolist() == [15, 30, 45, 60]
    assert h["val_loss"].iloc[-1] < drop * h["val_loss"].iloc[0]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    rebuilt = build_model(out.model_config)
    rebuilt.load_state_dict(out.state_dict)
    for a, b in zip(rebuilt.state_dict().values(), out.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_statistics_are_rms_of_training_patches(problem):
    cond, residual, patches = problem
    cfg = resolve_config(dict(TINY, wet_weighting=False))
    stats = normalisation_stats(prepare_data(cond, residual, patches, cfg), cfg)
    train = patches[patches.split == "train"]
    crops = np.stack([residual[t, 0, r:r + 16, c:c + 16] for t, r, c in
                      zip(train.sample_index, train.row, train.col)])
    rms = math.sqrt(np.nanmean(crops.astype(np.float64) ** 2))
    assert stats["residual_scale"] == pytest.approx(rms, rel=1e-6)
    assert stats["sigma_data"] == pytest.approx(1.0, rel=1e-6)  # uniform draw: unit RMS after scaling
    weighted = normalisation_stats(prepare_data(cond, residual, patches, resolve_config(TINY)), resolve_config(TINY))
    assert weighted["sigma_data"] > 1.0  # wet-weighted patches have larger residuals
    times = np.unique(train.sample_index)
    assert stats["cond_mean"][0] == pytest.approx(cond[times, 0].astype(np.float64).mean(), abs=1e-6)


def test_augmentation_is_identical_for_cond_and_residual(problem):
    cond, _, patches = problem
    cfg = resolve_config(TINY)
    data = prepare_data(cond, np.ascontiguousarray(cond[:, :1]), patches, cfg)
    batch = draw_batch(data, torch.Generator().manual_seed(0), 32, wet_weighting=True, augment=True, edm_loss=None)
    assert torch.equal(batch.cond[:, :1], batch.residual)


def test_config_and_patch_errors_name_the_problem(problem):
    with pytest.raises(KeyError, match="lr_typo"):
        train(*problem, {"lr_typo": 1}, objective="edm", progress=False)
    with pytest.raises(KeyError, match="base_chanels"):
        resolve_config({"model": {"base_chanels": 8}})
    with pytest.raises(ValueError, match="outside the fields"):
        train(*problem, dict(TINY, patch_size=20), objective="edm", progress=False)


def test_non_finite_loss_raises_before_saving(tmp_path):
    cond, residual, patches = make_problem()
    cond[:, 1, 5, 5] = np.inf  # every time step: the first batch meets it
    with pytest.raises(NonFiniteLossError, match="step 1"):
        train(cond, residual, patches, dict(TINY, checkpoint_every=1), objective="regression",
              checkpoint_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
