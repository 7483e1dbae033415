"""Contingency scores and FSS: hand-computed cases, a brute-force FSS, pysteps, ensembles."""

import numpy as np
import pytest
from pysteps.verification.spatialscores import fss as pysteps_fss

from precipdiff.verification import FSS, ContingencyScores, EnsembleFSS, fss


def test_contingency_by_hand():
    fcst = np.array([[[2.0, 0.0], [6.0, 0.0]]])
    obs = np.array([[[2.0, 2.0], [0.0, 0.0]]])
    acc = ContingencyScores(thresholds=[1.0, 5.0])
    acc.accum(fcst, obs)
    out = acc.compute()
    assert (out["hits"][1.0], out["misses"][1.0], out["false_alarms"][1.0]) == (1, 1, 1)
    assert out["correct_negatives"][1.0] == 1
    assert out["pod"][1.0] == 0.5 and out["far"][1.0] == 0.5
    assert out["csi"][1.0] == pytest.approx(1 / 3) and out["fbias"][1.0] == 1.0
    assert np.isnan(out["pod"][5.0]) and out["far"][5.0] == 1.0  # no observed event at 5 mm/h


def _square(shift=0, size=24):
    x = np.zeros((size, size))
    x[8:12, 8 + shift : 12 + shift] = 3.0
    return x


def test_fss_identical_is_one_and_shift_by_hand():
    obs = _square()
    assert fss(obs, obs, 1.0, 1) == 1.0 and fss(obs, obs, 1.0, 5) == 1.0
    # 4x4 squares shifted by 2 px: 8 pixels overlap, 8 + 8 do not -> 1 - 16 / (16 + 16)
    assert fss(_square(2), obs, 1.0, 1) == pytest.approx(0.5)


def _fss_brute_force(f, o, n):
    """Loop over pixels; fractions over the valid, in-domain part of each n x n window."""
    h, w = o.shape
    r = n // 2
    valid = np.isfinite(f) & np.isfinite(o)
    fe, oe = (f >= 1.0) & valid, (o >= 1.0) & valid
    num = den = 0.0
    for i in range(h):
        for j in range(w):
            if not valid[i, j]:
                continue
            win = np.s_[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1]
            pf, po = fe[win].sum() / valid[win].sum(), oe[win].sum() / valid[win].sum()
            num, den = num + (pf - po) ** 2, den + pf**2 + po**2
    return 1 - num / den


@pytest.mark.parametrize("n", [3, 5, 9])
def test_fss_matches_brute_force_incl_edges_and_nan(n):
    rng = np.random.default_rng(0)
    f, o = (rng.random((15, 17)) > 0.7) * 2.0, (rng.random((15, 17)) > 0.6) * 2.0
    o[4:7, 5:9] = np.nan
    f[10, 2] = np.nan
    assert fss(f, o, 1.0, n) == pytest.approx(_fss_brute_force(f, o, n))
    # the ensemble path (members, probability) agrees for a 1-member ensemble
    acc = EnsembleFSS([1.0], [n])
    acc.accum(f[None, None], o[None])
    out = acc.compute()
    assert out["fss_members"][(1.0, n)] == pytest.approx(_fss_brute_force(f, o, n))
    assert out["fss_prob"][(1.0, n)] == pytest.approx(_fss_brute_force(f, o, n))


def test_fss_equals_pysteps_away_from_edges():
    # events far from the border: our edge convention and pysteps' zero padding agree
    assert fss(_square(3), _square(), 1.0, 5) == pytest.approx(
        pysteps_fss(_square(3), _square(), 1.0, 5)
    )


def test_fss_ignores_nan_pixels():
    obs, fcst = _square(), _square(2)
    obs_nan = obs.copy()
    obs_nan[0, :] = np.nan  # a dry row becomes missing: no event lost, but fewer pixels
    acc = FSS([1.0], [1])
    acc.accum(fcst, obs_nan)
    assert acc.compute()["fss"][(1.0, 1)] == pytest.approx(0.5)
    assert acc.compute()["fss_useful"][1.0] == pytest.approx(0.5 + 16 / (23 * 24) / 2)


def test_ensemble_fss_three_ways():
    obs = _square()[None]
    ens = np.stack([_square(0), _square(2)])[None]  # (1, 2, 24, 24)
    acc = EnsembleFSS([1.0], [1, 5])
    acc.accum(ens, obs)
    out = acc.compute()
    # members: FSS 1 and 0.5 -> mean 0.75
    assert out["fss_members"][(1.0, 1)] == pytest.approx(0.75)
    # ensemble mean: 3 on 8 px, 1.5 on 8 + 8 px -> 24 forecast events vs 16 observed, 8 misplaced
    assert out["fss_ens_mean"][(1.0, 1)] == pytest.approx(1 - 8 / (24 + 16))
    # probability: Pf = 0.5, 1, 0.5 on three 8-px strips, Po = 1 on the first two:
    # sum (Pf-Po)^2 = 0.25 * 16 = 4; sum Pf^2 = 2 + 8 + 2 = 12; sum Po^2 = 16
    assert out["fss_prob"][(1.0, 1)] == pytest.approx(1 - 4 / (12 + 16))
    same = EnsembleFSS([1.0], [5])
    same.accum(np.stack([obs, obs], axis=1), obs)
    assert all(v[(1.0, 5)] == 1.0 for v in same.compute().values())
