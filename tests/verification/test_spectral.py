"""RAPSD: pysteps agreement, power-law slope recovery, wavelengths in km, NaN policies, ratios."""

import numpy as np
import pytest
from pysteps.utils.spectral import rapsd as pysteps_rapsd

from precipdiff.verification import MeanPSD, psd_ratio, psd_ratio_at, psd_slope, rapsd


def power_law_fields(beta, n=3, size=256, seed=0):
    """Gaussian fields whose 2-D power spectrum is |k|^-beta (white noise filtered in Fourier)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    k[0, 0] = np.inf  # no mean
    spec = np.fft.fft2(rng.normal(size=(n, size, size))) * k ** (-beta / 2)
    return np.fft.ifft2(spec).real


@pytest.mark.parametrize("size", [64, 65])
def test_rapsd_matches_pysteps_on_square_fields(size):
    field = np.random.default_rng(1).gamma(0.5, 2.0, (size, size))
    ours = rapsd(field[None]).psd[0]
    np.testing.assert_allclose(ours, pysteps_rapsd(field, np.fft)[1:], rtol=1e-10)


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_rapsd_recovers_power_law_slope(beta):
    res = rapsd(power_law_fields(beta), pixel_km=1.0)
    psd = np.nanmean(res.psd, axis=0)
    assert psd_slope(psd, res.wavelength_km, min_km=4.0, max_km=64.0) == pytest.approx(
        -beta, abs=0.2
    )


def test_wavelengths_in_km_and_non_square():
    res = rapsd(np.zeros((2, 40, 50)), pixel_km=2.0)
    # L = 50 px: rings r = 1..24 hold wavelengths 50/r px = 100/r km
    np.testing.assert_allclose(res.wavelength_km, 100.0 / np.arange(1, 25))
    assert res.psd.shape == (2, 24)
    # a pure x-wave of wavelength 10 px lands in ring 5 (wavelength 10 px = 20 km)
    x = np.cos(2 * np.pi * np.arange(50) / 10.0)[None, None, :] * np.ones((1, 40, 1))
    assert res.wavelength_km[np.argmax(rapsd(x, pixel_km=2.0).psd[0])] == pytest.approx(20.0)


def test_nan_policies():
    fields = power_law_fields(2.0, n=2, size=32)
    fields[1, 3, 4] = np.nan
    skip = rapsd(fields)
    assert np.isfinite(skip.psd[0]).all() and np.isnan(skip.psd[1]).all()
    np.testing.assert_allclose(skip.nan_fraction, [0.0, 1 / 32**2])
    assert np.isfinite(rapsd(fields, nan_policy="zero").psd).all()
    with pytest.raises(ValueError, match="contain NaN"):
        rapsd(fields, nan_policy="raise")
    acc = MeanPSD()
    acc.accum(fields)
    out = acc.compute()
    assert (out["n_used"], out["n_skipped"]) == (1, 1)
    np.testing.assert_allclose(out["psd"], skip.psd[0])


def test_ratio_helpers():
    lam = np.array([64.0, 32.0, 16.0, 8.0, 4.0, 2.0])
    ratio = psd_ratio(np.array([1, 1, 1, 1, 0.5, 2.0]), np.ones(6))
    assert psd_ratio_at(ratio, lam, max_km=4.0) == pytest.approx(1.0)  # geometric mean of 0.5, 2
    assert psd_ratio_at(ratio, lam, max_km=5.0) == pytest.approx(1.0)
    assert psd_ratio_at([1, 1, 1, 1, 0.5, 0.5], lam, max_km=4.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no usable wavelength"):
        psd_ratio_at(ratio, lam, max_km=1.0)
