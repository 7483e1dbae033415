"""Errors per observed-intensity bin, by hand."""

import numpy as np
import pytest

from precipdiff.verification import IntensityErrors


def test_intensity_bins_by_hand():
    obs = np.array([[[0.05, 0.5], [0.7, 12.0]], [[np.nan, 30.0], [0.0, 0.0]]])
    fcst = np.array([[[1.05, 0.3], [0.9, 16.0]], [[5.0, 20.0], [0.0, 0.0]]])
    acc = IntensityErrors(bins=[0.0, 0.1, 1.0, 10.0, 20.0, np.inf])
    acc.accum(fcst, obs)
    out = acc.compute()
    np.testing.assert_array_equal(out["count"], [3, 2, 0, 1, 1])
    np.testing.assert_allclose(out["bias"][[0, 1, 3, 4]], [1 / 3, 0.0, 4.0, -10.0], atol=1e-12)
    np.testing.assert_allclose(out["rmse"][[0, 1, 3, 4]], [np.sqrt(1 / 3), 0.2, 4.0, 10.0])
    assert np.isnan(out["bias"][2])
    rows = acc.records()
    assert {"metric": "rmse_bin", "threshold": 20.0, "value": 10.0} in rows


def test_bins_validated():
    with pytest.raises(ValueError, match="increasing"):
        IntensityErrors(bins=[0.0, 1.0, 1.0])
