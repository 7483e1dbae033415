"""Continuous scores on hand-computed 2x2 cases."""

import numpy as np
import pytest

from precipdiff.verification import ContinuousScores, bias, correlation, mae, ratio_of_totals, rmse


def test_scores_by_hand_skip_nan():
    fcst = np.array([[[1.0, 2.0], [4.0, 9.0]]])
    obs = np.array([[[0.0, 1.0], [2.0, np.nan]]])  # errors 1, 1, 2 on the 3 valid pixels
    assert rmse(fcst, obs) == pytest.approx(np.sqrt(6 / 3))
    assert mae(fcst, obs) == pytest.approx(4 / 3)
    assert bias(fcst, obs) == pytest.approx(4 / 3)
    assert ratio_of_totals(fcst, obs) == pytest.approx(7 / 3)
    # f = (1, 2, 4), o = (0, 1, 2): r = cov / (sd_f sd_o)
    assert correlation(fcst, obs) == pytest.approx(np.corrcoef([1, 2, 4], [0, 1, 2])[0, 1])
    acc = ContinuousScores()
    acc.accum(fcst, obs)
    assert acc.compute()["n"] == 3


def test_perfect_and_anticorrelated():
    obs = np.arange(8.0).reshape(2, 2, 2)
    assert rmse(obs, obs) == 0.0 and correlation(obs, obs) == pytest.approx(1.0)
    assert correlation(-obs, obs) == pytest.approx(-1.0)


def test_members_are_pooled():
    obs = np.array([[[1.0, 3.0]]])
    ens = np.stack([obs + 1, obs - 1], axis=1)  # (1, 2, 1, 2)
    assert bias(ens, obs) == pytest.approx(0.0) and rmse(ens, obs) == pytest.approx(1.0)


def test_empty_gives_nan_and_bad_shape_raises():
    out = ContinuousScores().compute()
    assert np.isnan(out["rmse"]) and out["n"] == 0
    with pytest.raises(ValueError, match="does not match obs shape"):
        rmse(np.zeros((2, 3, 3)), np.zeros((2, 4, 4)))
