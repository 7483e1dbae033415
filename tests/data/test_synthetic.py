"""Properties of the synthetic generator and of the IMERG-like satellite error model."""

import numpy as np
import pytest

from precipdiff.data import contract, fields, synthetic
from tests.conftest import SEATTLE


def radial_slope(field_stack: np.ndarray, k_lo: float = 0.02, k_hi: float = 0.2) -> float:
    """Log-log slope of the radially averaged power spectrum between k_lo and k_hi (cycles/px)."""
    psd = np.mean(np.abs(np.fft.fft2(field_stack - field_stack.mean(axis=(-2, -1), keepdims=True))) ** 2, axis=0)
    ky, kx = np.meshgrid(np.fft.fftfreq(psd.shape[0]), np.fft.fftfreq(psd.shape[1]), indexing="ij")
    k = np.hypot(ky, kx).ravel()
    bins = np.geomspace(k_lo, k_hi, 12)
    idx = np.digitize(k, bins)
    kk = np.array([k[idx == i].mean() for i in range(1, len(bins))])
    pp = np.array([psd.ravel()[idx == i].mean() for i in range(1, len(bins))])
    return float(np.polyfit(np.log(kk), np.log(pp), 1)[0])


@pytest.fixture(scope="module")
def seattle_pair():
    """10 days on the default Seattle box with the default (calibrated) parameters."""
    return synthetic.generate(SEATTLE, "2022-10-01T01:00", 240, seed=7, radar=None, satellite=None)


@pytest.mark.parametrize("beta", [2.5, 3.5])
def test_powerlaw_field_has_the_configured_spectral_slope(beta):
    f = fields.powerlaw_field((128, 128), beta, np.random.default_rng(0), n=16)
    assert radial_slope(f) == pytest.approx(-beta, abs=0.2)


def _lag1(z):
    return np.mean([np.corrcoef(z[t].ravel(), z[t + 1].ravel())[0, 1] for t in range(len(z) - 1)])


def test_latent_sequence_keeps_slope_memory_and_advection():
    still = synthetic.RadarParams(advection_km_h=(0.0, 0.0), advection_variability_km_h=0.0)
    z = synthetic.latent_sequence(24, (96, 96), still, np.random.default_rng(1))
    assert radial_slope(z) == pytest.approx(-3.0, abs=0.35)
    assert 0.6 < _lag1(z) < 0.99  # scale-dependent memory: related, not frozen
    east = synthetic.RadarParams(advection_km_h=(0.0, 10.0), advection_variability_km_h=0.0)
    m = synthetic.latent_sequence(24, (96, 96), east, np.random.default_rng(1))
    assert _lag1(m) < _lag1(z) - 0.1  # the pattern moves: Eulerian correlation drops
    shifted = np.mean([np.corrcoef(m[t, :, :-10].ravel(), m[t + 1, :, 10:].ravel())[0, 1] for t in range(23)])
    assert shifted > _lag1(m) + 0.1  # ... and is found again 10 px downstream (eastward)


@pytest.mark.parametrize("wet_fraction", [0.1, 0.3])
def test_wet_fraction_follows_the_parameter(wet_fraction):
    p = {"wet_fraction": wet_fraction, "wet_fraction_variability": 0.0}
    _, radar = synthetic.generate(SEATTLE, "2022-10-01", 48, seed=5, radar=p, satellite=None)
    assert (radar.precipitation.values > 0).mean() == pytest.approx(wet_fraction, rel=0.25)


def test_heavy_tail_and_intermittency(seattle_pair):
    _, radar = seattle_pair
    r = radar.precipitation.values
    wet_rates = r[r > 0.1]
    assert np.percentile(wet_rates, 99.9) > 8 * np.median(wet_rates)  # heavy upper tail
    assert r.max() <= 150.0
    hourly_wet = (r > 0).mean(axis=(1, 2))
    assert hourly_wet.min() < 0.05 and hourly_wet.max() > 0.3  # dry and stormy hours alternate


def test_determinism_and_nesting():
    box = {"lat_min": 47.0, "lat_max": 47.3, "lon_min": -122.3, "lon_max": -122.0}
    a = synthetic.generate(box, "2022-10-01", 6, seed=3, radar=None, satellite=None)
    b = synthetic.generate(box, "2022-10-01", 6, seed=3, radar=None, satellite=None)
    c = synthetic.generate(box, "2022-10-01", 6, seed=4, radar=None, satellite=None)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.precipitation.values, y.precipitation.values)
    assert not np.array_equal(a[1].precipitation.values, c[1].precipitation.values)
    contract.validate_pair(*a)


def test_satellite_errors_match_imerg_vs_mrms_behaviour(seattle_pair):
    """Calibration target (issue 3): hourly-pixel correlation 0.35–0.55 at 1 km, light rain
    overestimated, rain over 10 mm/h underestimated."""
    satellite, radar = seattle_pair
    r = radar.precipitation.values
    up = np.repeat(np.repeat(satellite.precipitation.values, 10, 1), 10, 2)
    corr = np.corrcoef(up.ravel(), r.ravel())[0, 1]
    assert 0.35 <= corr <= 0.55, corr
    light = (r > 0.1) & (r < 1.0)
    heavy = r > 10.0
    assert up[light].mean() > 1.2 * r[light].mean()
    assert up[heavy].mean() < 0.6 * r[heavy].mean()


def test_unknown_generator_parameter_is_named():
    with pytest.raises(ValueError, match="unknown parameters \\['wet_fracton'\\]"):
        synthetic.RadarParams.from_mapping({"wet_fracton": 0.2})
