"""Seam ratio: hand case, smooth field ~ 1, blocky upsampled field >> 1; over-smoothing flag."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from precipdiff.verification import SeamStatistic, oversmoothing_flag, seam_ratio


def test_seam_ratio_by_hand():
    field = np.array([[0.0, 1.0, 3.0, 4.0]] * 2)  # block 2: border between columns 1 and 2
    acc = SeamStatistic(block=2)
    acc.accum(field)
    out = acc.compute()
    # border diffs: |3-1| twice -> 2; inside: |1-0|, |4-3| twice and 4 vertical zeros -> 4/8
    assert out["grad_border"] == pytest.approx(2.0) and out["grad_inside"] == pytest.approx(0.5)
    assert out["seam_ratio"] == pytest.approx(4.0)


def test_smooth_field_has_no_seams_and_blocky_field_has():
    rng = np.random.default_rng(0)
    smooth = gaussian_filter(rng.normal(size=(4, 200, 200)), sigma=(0, 3, 3))
    assert seam_ratio(smooth, block=10) == pytest.approx(1.0, abs=0.05)
    coarse = rng.gamma(0.5, 2.0, (4, 20, 20))
    blocky = np.kron(coarse, np.ones((10, 10))) + 0.05 * rng.normal(size=(4, 200, 200))
    assert seam_ratio(blocky, block=10) > 1.5
    # shifting the grid by the offset moves the borders off the seams
    assert seam_ratio(blocky, block=10, offset=5) < 1.0


def test_nan_pairs_are_skipped():
    field = np.array([[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, np.nan, 4.0]])
    out = SeamStatistic(block=2)
    out.accum(field)
    assert out.compute()["grad_border"] == pytest.approx(2.0)


def test_oversmoothing_flag():
    lam = np.array([40.0, 20.0, 10.0, 5.0, 2.5])
    assert oversmoothing_flag([1, 1, 0.3, 0.2, 0.1], lam, max_km=10.0)
    assert not oversmoothing_flag([1, 1, 0.9, 1.1, 0.8], lam, max_km=10.0)
