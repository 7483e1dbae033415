"""Every accumulator: accum over 3 chunks (along time) == one accum over everything."""

import numpy as np
import pytest

from precipdiff import verification as v


def assert_same(a, b):
    """Recursive equality of score dicts (floats to 1e-10, NaN == NaN)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    else:
        np.testing.assert_allclose(
            np.asarray(a, float), np.asarray(b, float), rtol=1e-10, atol=1e-12
        )


CHUNKS = [slice(0, 2), slice(2, 5), slice(5, 7)]

DETERMINISTIC = [
    lambda: v.ContinuousScores(),
    lambda: v.ContingencyScores(),
    lambda: v.FSS(scales=(1, 3, 5)),
    lambda: v.IntensityErrors(),
]
ENSEMBLE = [
    lambda: v.CRPSScores(),
    lambda: v.SpreadSkill(),
    lambda: v.RankHistogram(seed=3),
    lambda: v.BrierScores(),
    lambda: v.EnsembleFSS(scales=(1, 3)),
]
FIELDS = [lambda: v.MeanPSD(pixel_km=1.0), lambda: v.SeamStatistic(block=4)]


def _run(make, chunks, call):
    acc = make()
    for c in chunks:
        call(acc, c)
    return acc.compute()


@pytest.mark.parametrize("make", DETERMINISTIC)
def test_deterministic_streaming(make, ens_obs):
    ens, obs = ens_obs
    fcst = ens[:, 0]
    call = lambda acc, c: acc.accum(fcst[c], obs[c])  # noqa: E731
    assert_same(_run(make, [slice(None)], call), _run(make, CHUNKS, call))


@pytest.mark.parametrize("make", ENSEMBLE)
def test_ensemble_streaming(make, ens_obs):
    ens, obs = ens_obs
    call = lambda acc, c: acc.accum(ens[c], obs[c])  # noqa: E731
    assert_same(_run(make, [slice(None)], call), _run(make, CHUNKS, call))


@pytest.mark.parametrize("make", FIELDS)
def test_field_streaming(make, ens_obs):
    _, obs = ens_obs
    call = lambda acc, c: acc.accum(obs[c])  # noqa: E731
    assert_same(_run(make, [slice(None)], call), _run(make, CHUNKS, call))


@pytest.mark.parametrize("make", DETERMINISTIC + ENSEMBLE)
def test_records_are_tidy(make, ens_obs):
    ens, obs = ens_obs
    acc = make()
    acc.accum(ens if make in ENSEMBLE else ens[:, 0], obs)
    df = v.tidy(acc.records(), method="m", grid="test")
    assert list(df.columns) == list(v.COLUMNS) and len(df) > 0
