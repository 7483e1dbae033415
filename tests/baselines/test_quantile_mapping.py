"""Quantile mapping: training quantiles land on the radar ones, monotone, dry/drizzle/tail rules."""

import numpy as np
import pytest

from precipdiff.baselines import QuantileMapping


def training_pair(seed=0, n=200_000):
    """Radar: 30 % wet, gamma rates >= 0.1 mm/h. Satellite: 50 % wet (drizzle), too flat."""
    rng = np.random.default_rng(seed)
    radar = np.where(rng.random(n) < 0.3, 0.1 + rng.gamma(0.6, 3.0, n), 0.0)
    sat = np.where(rng.random(n) < 0.5, 0.1 + 0.5 * rng.gamma(0.6, 3.0, n) ** 0.8, 0.0)
    return sat, radar


def test_training_satellite_quantiles_match_radar():
    sat, radar = training_pair()
    qm = QuantileMapping.fit(sat, radar, n_quantiles=200, wet_threshold=0.1)
    mapped = qm.apply(sat)
    levels = np.linspace(0.75, 0.995, 30)  # the wet part of the radar distribution
    np.testing.assert_allclose(
        np.quantile(mapped, levels), np.quantile(radar, levels), rtol=0.03, atol=0.02
    )
    assert np.mean(mapped > 0) == pytest.approx(np.mean(radar > 0), abs=0.01)  # drizzle removed


def test_mapping_is_monotone_dry_and_nan_safe():
    sat, radar = training_pair(1)
    qm = QuantileMapping.fit(sat, radar, n_quantiles=50)
    x = np.linspace(0.0, 3 * sat.max(), 5000)
    y = qm.apply(x)
    assert np.all(np.diff(y) >= 0)
    assert np.all(y[x < 0.1] == 0.0)
    assert np.isnan(qm.apply(np.array([np.nan, 1.0]))[0])
    # above the training maximum: constant ratio, continuous at the last knot
    top = qm.sat_knots[-1]
    assert qm.apply(2 * top) == pytest.approx(2 * qm.radar_knots[-1])
    assert qm.apply(top * (1 + 1e-9)) == pytest.approx(qm.radar_knots[-1], rel=1e-6)


def test_identity_when_distributions_match_and_roundtrip():
    rng = np.random.default_rng(2)
    x = np.where(rng.random(50_000) < 0.4, 0.1 + rng.gamma(0.6, 3.0, 50_000), 0.0)
    qm = QuantileMapping.fit(x, x, n_quantiles=100)
    probe = np.quantile(x[x > 0], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(qm.apply(probe), probe, rtol=0.01)
    again = QuantileMapping.from_dict(qm.to_dict())
    np.testing.assert_array_equal(again.apply(x), qm.apply(x))


def test_fit_errors_name_the_input():
    with pytest.raises(ValueError, match="radar has no finite value"):
        QuantileMapping.fit(np.ones(10), np.full(10, np.nan))
    with pytest.raises(ValueError, match="no satellite rate"):
        QuantileMapping.fit(np.zeros(10), np.ones(10))
