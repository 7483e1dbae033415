"""The inference chain: tiling is exact where it must be, seamless where tiles disagree, and members
are reproducible one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tests.inference.chain_models import grids, pixel_model, satellite, unet_model

from precipdiff.inference import chain
from precipdiff.nn.sampler import edm_sampler
from precipdiff.seeds import member_seeds


def test_pixel_local_model_tiled_equals_untiled():
    """A denoiser whose output at a pixel depends on that pixel only: every window gives the same value
    there, so blending them changes nothing (to float64 rounding of the weighted mean)."""
    corr, down = pixel_model("correction"), pixel_model("downscaling")
    sat = satellite(2, 6, 5)
    coarse, fine = grids(6, 5)
    whole = chain.run_chain(sat, coarse, fine, [7, 8], corr, down, chain.ChainSettings(n_members=2, tile=64))
    tiled = chain.run_chain(sat, coarse, fine, [7, 8], corr, down,
                            chain.ChainSettings(n_members=2, tile=4, overlap=2, batch_size=5))
    assert len(chain.tile_layout(6, 4, 2)[1]) == 2 and len(chain.tile_layout(60, 4, 2)[1]) == 29  # really tiled
    for a, b in zip(whole, tiled):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.std(whole[1]) > 0.1  # not a trivial field


def test_tiled_and_untiled_sampling_of_a_field_agree_in_spread_and_spectrum():
    """Issue #23: a real U-Net (the tiny configuration's architecture) sampled over a 120 × 120 field
    whole and in windows of at most 48 cells (overlap 16: 4 × 4 windows) blended at every step: the member spread
    (in the overlap bands and inside) and the members' mean power spectrum up to half a window's
    wavelength agree within 10 %."""
    from precipdiff.verification import rapsd

    model = unet_model("downscaling", seed=4)
    _, fine = grids(12, 12)
    base = chain.transforms.upsample(satellite(1, 12, 12, seed=2), 10, "bilinear").repeat(8, axis=0)
    latents = chain.latent_field(range(8), [3], base.shape[-2:], chain.FINE)
    run = lambda tile: chain.apply_model(model, base, *fine, latents,  # noqa: E731
                                         chain.ChainSettings(tile=tile, overlap=16, batch_size=9))
    whole, tiled = run(128), run(48)
    size, starts = chain.tile_layout(120, 48, 16)
    assert len(starts) == 4 and not np.array_equal(whole, tiled)  # really tiled (42-cell windows), not a copy
    band = np.zeros(120, bool)
    for s in starts[1:]:
        band[s:s + 16] = True  # the overlap bands: where two windows share the field
    overlap = band[:, None] | band[None, :]
    for mask in (overlap, ~overlap):
        assert whole.std(axis=0)[mask].mean() == pytest.approx(tiled.std(axis=0)[mask].mean(), rel=0.1)
    spectra = [rapsd(f, 1.0) for f in (whole, tiled)]
    ratio, lam = spectra[1].psd.mean(axis=0) / spectra[0].psd.mean(axis=0), spectra[0].wavelength_km
    for lo, hi in ((2, 5), (5, 10), (10, 21)):  # wavelengths up to half a window (km = cells here)
        band = (lam >= lo) & (lam < hi)
        assert np.exp(np.log(ratio[band]).mean()) == pytest.approx(1.0, abs=0.1), (lo, hi)
    # (at wavelengths near the 42-cell window, 20–40 km, the tiled field has ~20 % more power: windows
    # cannot agree on structures their own size; the default windows are 256 cells)


def test_unet_domain_within_one_tile_equals_a_direct_untiled_sampler_call():
    model = unet_model("downscaling", seed=3)
    coarse, fine = grids(3, 4)
    base = chain.transforms.upsample(satellite(3, 3, 4), 10, "bilinear")
    latents = chain.latent_field([11, 12, 13], [5], base.shape[-2:], chain.FINE)
    settings = chain.ChainSettings(tile=64, batch_size=3, precision="fp32")
    out = chain.apply_model(model, base, *fine, latents, settings)

    cond = torch.from_numpy(chain.transforms.condition(base, model.card.conditioning.static_channels, *fine))
    with torch.inference_mode():
        direct = edm_sampler(model.model.precond, model.model.normalise_cond(cond),
                             torch.from_numpy(latents.full()), num_steps=3)
    expected = base + (direct.float() * model.model.residual_scale)[:, 0].numpy()
    np.testing.assert_array_equal(out, expected)


def test_latent_windows_do_not_depend_on_tiling():
    field = chain.LatentField(((1, 2, 3), (4, 5, 6)), (150, 130), block=64)
    full = field.full()
    assert full.shape == (2, 1, 150, 130)
    np.testing.assert_array_equal(field.window(1, slice(37, 101), slice(60, 130)), full[1, 0, 37:101, 60:130])
    assert abs(full.mean()) < 0.02 and abs(full.std() - 1) < 0.02
    assert np.corrcoef(full[0, 0].ravel(), full[1, 0].ravel())[0, 1] < 0.02


def test_one_member_regenerated_alone_equals_that_member():
    corr, down = unet_model("correction", 1), unet_model("downscaling", 2)
    sat = satellite(2, 4, 4, seed=5)
    coarse, fine = grids(4, 4)
    keys = chain.hour_keys(pd.to_datetime(["2023-07-01T01:00", "2023-07-01T02:00"]))
    settings = chain.ChainSettings(n_members=3, seed=9, tile=24, overlap=8, batch_size=4)
    corrected, members = chain.run_chain(sat, coarse, fine, keys, corr, down, settings)
    seed = settings.seeds()[2]
    alone = chain.ChainSettings(member_seeds=(seed,), tile=24, overlap=8, batch_size=4)
    c1, m1 = chain.run_chain(sat[1:], coarse, fine, keys[1:], corr, down, alone)
    np.testing.assert_array_equal(c1[0, 0], corrected[1, 2])
    np.testing.assert_array_equal(m1[0, 0], members[1, 2])
    assert not np.allclose(members[1, 0], members[1, 2])  # members differ


def test_regression_models_give_one_deterministic_member():
    corr, down = unet_model("correction", 1, "regression"), unet_model("downscaling", 2, "regression")
    coarse, fine = grids(3, 3)
    c, f = chain.run_chain(satellite(1, 3, 3), coarse, fine, [1], corr, down, chain.ChainSettings(n_members=5))
    assert c.shape == (1, 1, 3, 3) and f.shape == (1, 1, 30, 30)


def test_hour_keys_and_member_seeds():
    assert chain.hour_keys(np.array(["1970-01-01T05:00", "2000-01-01T00:00"], dtype="datetime64[ns]")) == [5, 262968]
    seeds = member_seeds(0, 4)
    assert len(set(seeds)) == 4 and chain.ChainSettings(n_members=4).seeds() == seeds
    assert chain.ChainSettings(member_seeds=(7, 8)).seeds() == [7, 8]


@pytest.mark.parametrize("kwargs", [{"precision": "fp16"}, {"tile": 16, "overlap": 16}, {"batch_size": 0}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError, match="ChainSettings"):
        chain.ChainSettings(**kwargs)


def test_settings_from_parameters_one_vocabulary():
    params = {"n_members": "4", "seed": 3, "member_seeds": [5, 6], "sampler": {"num_steps": 6, "solver": None},
              "tile": 64, "overlap": 8, "batch_size": 2, "device": "cpu", "precision": "fp32", "compile": False}
    settings = chain.ChainSettings.from_params(params, "inference.chain")
    assert settings == chain.ChainSettings(n_members=4, seed=3, member_seeds=(5, 6), sampler={"num_steps": 6},
                                           tile=64, overlap=8, batch_size=2, device="cpu", precision="fp32")
    assert settings.seeds() == [5, 6]  # explicit seeds override seed and n_members
    assert chain.ChainSettings.from_params(None) == chain.ChainSettings(sampler={})  # every key optional


@pytest.mark.parametrize(
    ("params", "message"),
    [({"members": 8}, "evaluation.chain: unknown key(s) ['members']; expected some of ['n_members', "),
     ({"tiling": {"tile": 64}}, "evaluation.chain: unknown key(s) ['tiling']"),
     ({"sampler": {"steps": 4}}, "evaluation.chain.sampler: expected keys among ['num_steps'"),
     ({"sampler": {"solver": "rk4"}}, "evaluation.chain.sampler.solver: expected 'heun' or 'euler'; got 'rk4'"),
     ({"n_members": 0}, "evaluation.chain.n_members: expected a number of members >= 1"),
     ({"tile": 16, "overlap": 16}, "evaluation.chain.overlap: expected 0 <= overlap < tile (tile = 16 cells); got 16")],
)
def test_settings_from_parameters_name_the_bad_key(params, message):
    with pytest.raises(ValueError) as info:
        chain.ChainSettings.from_params(params, "evaluation.chain")
    assert message in str(info.value)
