"""Shared fixtures for the verification tests: small random precipitation-like data."""

import numpy as np
import pytest


def rain(rng, shape, wet=0.4, scale=3.0):
    """Gamma rates (mm/h) with a fraction ``1 - wet`` of exact zeros, like hourly rain."""
    x = rng.gamma(0.7, scale, shape)
    return np.where(rng.random(shape) < wet, x, 0.0)


@pytest.fixture
def ens_obs():
    """An ensemble (T=7, M=5, 12, 13) and observations (7, 12, 13) with zeros, ties and NaNs."""
    rng = np.random.default_rng(42)
    ens = rain(rng, (7, 5, 12, 13))
    obs = rain(rng, (7, 12, 13))
    obs[1, 2:4, 3:6] = np.nan
    ens[3, 2, 5, 5] = np.nan
    return ens, obs
