import numpy as np
import pytest
import torch

from precipdiff.data import transforms


def test_log1p_round_trip_numpy_and_torch():
    r = np.array([0.0, 0.05, 1.0, 12.5, 250.0, np.nan], np.float32)
    x = transforms.forward_transform(r, "log1p")
    np.testing.assert_allclose(transforms.inverse_transform(x, "log1p"), r, rtol=1e-6)
    xt = transforms.forward_transform(torch.from_numpy(r), "log1p")
    np.testing.assert_allclose(transforms.inverse_transform(xt, "log1p").numpy(), r, rtol=1e-6)
    with pytest.raises(ValueError, match="preprocessing.transform"):
        transforms.forward_transform(r, "sqrt")


def test_max_pool_keeps_every_block_maximum():
    rng = np.random.default_rng(0)
    fine = rng.gamma(0.5, 2.0, size=(3, 40, 30)).astype(np.float32)
    pooled = transforms.pool(fine, "max")
    blocks = fine.reshape(3, 4, 10, 3, 10)
    np.testing.assert_array_equal(pooled, blocks.max(axis=(2, 4)))
    # every fine cell is <= its block's pooled value, and the maximum is attained in each block
    up = transforms.upsample(pooled, 10, "nearest")
    assert np.all(fine <= up)
    assert np.all((fine == up).reshape(3, 4, 10, 3, 10).any(axis=(2, 4)))


def test_pool_mean_and_missing_rule():
    fine = np.ones((1, 10, 20), np.float32)
    fine[0, :6, :10] = np.nan  # 60 % missing in block 0 → NaN; block 1 complete
    fine[0, 0, 10] = 3.0
    pooled = transforms.pool(fine, "mean", max_missing=0.5)
    assert np.isnan(pooled[0, 0, 0]) and pooled[0, 0, 1] == pytest.approx(1.02)


def test_bilinear_upsampling_preserves_linear_fields_in_the_interior():
    lat = np.arange(6, dtype=np.float32)
    coarse = np.broadcast_to(lat[:, None] * 2.0 + 1.0, (6, 6)).copy()[None]
    fine = transforms.upsample(coarse, 10, "bilinear")
    centres = (np.arange(60) + 0.5) / 10 - 0.5  # fine cell centres in coarse-index units
    inner = (centres > 0) & (centres < 5)
    np.testing.assert_allclose(fine[0, inner, 30], centres[inner] * 2 + 1, rtol=1e-5)


@pytest.mark.parametrize("kind", transforms.RESIDUALS)
def test_residual_variants_round_trip(kind):
    rng = np.random.default_rng(3)
    base, target = (transforms.forward_transform(rng.gamma(0.5, 3.0, (4, 5)).astype(np.float32)) for _ in range(2))
    res = transforms.make_residual(base, target, kind)
    np.testing.assert_allclose(transforms.apply_residual(base, res, kind), target, rtol=1e-5, atol=1e-6)


def test_absolute_residual_is_in_mm_h_and_clipped_at_zero():
    base, target = np.log1p(np.array([1.0, 4.0])), np.log1p(np.array([3.0, 0.0]))
    np.testing.assert_allclose(transforms.make_residual(base, target, "absolute"), [2.0, -4.0], rtol=1e-6)
    np.testing.assert_allclose(transforms.make_residual(base, target, "transformed"), [np.log(2.0), -np.log(5.0)])
    # a residual taking the rate below zero gives 0 mm/h, not a negative rate
    np.testing.assert_allclose(transforms.apply_residual(base, np.array([-3.0, -9.0]), "absolute"), [0.0, 0.0])
    with pytest.raises(ValueError, match="training.residual"):
        transforms.make_residual(base, target, "ratio")


def test_condition_is_the_base_then_the_static_channels_in_degrees():
    base = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    lat, lon = np.array([47.05, 47.15, 47.25]), np.array([-122.35, -122.25, -122.15, -122.05])
    cond = transforms.condition(base, ["lon", "lat"], lat, lon)  # the order asked for
    assert cond.shape == (2, 3, 3, 4) and cond.dtype == np.float32 and cond.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(cond[:, 0], base.astype(np.float32))
    np.testing.assert_array_equal(cond[1, 1, 2], lon.astype(np.float32))  # longitude varies along a row
    np.testing.assert_array_equal(cond[0, 2, :, 3], lat.astype(np.float32))  # latitude along a column
    assert transforms.condition(base, [], lat, lon).shape == (2, 1, 3, 4)
    with pytest.raises(ValueError, match=r"static_channels: unknown \['elevation'\]; expected any of \['lat', 'lon'\]"):
        transforms.condition(base, ["lat", "elevation"], lat, lon)
