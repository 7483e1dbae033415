"""The PrecipDiff chain at inference: satellite → correction ensemble → upsample → downscaling per member.

Plain torch + numpy (no Kedro). Shared by the ``evaluation`` and ``inference`` pipelines; every
network call goes through the project's one sampling path, :mod:`precipdiff.nn.sampling`.

Noise and reproducibility: the latents of member ``m`` of hour ``t`` depend only on
``(member_seeds[m], hour_key(t), grid)`` and the position in the domain
(:class:`~precipdiff.nn.sampling.LatentField` draws them in fixed 64 × 64 blocks, each from its own generator), so any member of any hour can be
regenerated alone, whatever the batching or tiling. This is exact for the deterministic sampler
(``S_churn = 0``); with churn the extra noise comes from one generator per batch of tiles, seeded
from ``(seed, hours, grid, batch index)``: reproducible for the same settings, not member by member.

Large domains: each sample is integrated as ONE latent field over the whole domain, and at every
sampling step the denoiser runs on overlapping windows of the current field whose outputs are
blended (MultiDiffusion, :class:`~precipdiff.nn.tiling.TiledDenoiser`, inside the one sampling
path), so overlaps keep the ensemble's statistics (no average of two independent samples). Windows
(of every sample in a group of ``batch_size // windows`` samples) are denoised ``batch_size`` at a
time; memory is the group's whole-domain fields plus one batch of windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from precipdiff.data import transforms
from precipdiff.data.contract import NEST
from precipdiff.model_card import TrainedModel
from precipdiff.inference.settings import ChainSettingError, ChainSettings  # noqa: F401  (the chain's settings)
from precipdiff.nn.sampling import COARSE, FINE, LatentField, latent_field, pick_device, residual_sampler
from precipdiff.nn.tiling import blend_window, tile_layout  # noqa: F401  (the windows of large domains)
from precipdiff.seeds import hour_keys  # noqa: F401  (re-exported: the key of an hour, seeds.sample_keys of a box-hour)


# ---------------------------------------------------------------------------------------- models


def model_sampler(trained: TrainedModel, settings: "ChainSettings", churn_seed: int = 0):
    """The one sampling path (:func:`precipdiff.nn.sampling.residual_sampler`) for a model under ``settings``:
    the model card's sampler with the chain's overrides, on the chain's device and precision, the
    networks run on windows of at most ``settings.tile`` cells blended at every step."""
    return residual_sampler(trained.model, trained.card.sampler_setting(settings.sampler),
                            pick_device(settings.device), settings.precision, settings.compile, churn_seed,
                            tiling=(settings.tile, settings.overlap, settings.batch_size))


def apply_model(trained: TrainedModel, base: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                latents: np.ndarray | LatentField | None, settings: ChainSettings, churn_seed: int = 0) -> np.ndarray:
    """``base + residual`` for ``base`` ``(B, H, W)`` (transformed units; the residual as the model
    was trained, :func:`~precipdiff.data.transforms.apply_residual`).

    ``latents``: ``(B, 1, H, W)`` array, a :class:`LatentField` or ``None`` (zeros; regression
    models ignore them). Samples go through :func:`model_sampler` in groups of
    ``batch_size // windows`` (at least 1), each as one whole-domain field tiled inside
    (``settings.tile``, ``overlap``): a domain within one tile is one window, sampled whole.
    """
    n, h, w = base.shape
    names = trained.card.conditioning.static_channels
    windows = len(tile_layout(h, settings.tile, settings.overlap)[1]) * len(tile_layout(w, settings.tile,
                                                                                         settings.overlap)[1])
    group = max(1, settings.batch_size // windows)
    fn = model_sampler(trained, settings, churn_seed)
    res = np.empty((n, h, w), np.float32)
    for start in range(0, n, group):
        idx = np.arange(start, min(n, start + group))
        cond = transforms.condition(base[idx], names, lat, lon)
        if latents is None:
            z = np.zeros((idx.size, 1, h, w))
        elif isinstance(latents, LatentField):
            z = np.stack([latents.window(b, slice(0, h), slice(0, w))[None] for b in idx])
        else:
            z = latents[idx]
        res[idx] = fn(torch.from_numpy(cond), torch.from_numpy(np.ascontiguousarray(z)))[:, 0].detach().cpu().numpy()
    return transforms.apply_residual(base, res, trained.card.residual, trained.card.transform)


def run_chain(sat_t: np.ndarray, coarse_grid: tuple[np.ndarray, np.ndarray], fine_grid: tuple[np.ndarray, np.ndarray],
              hour_keys: Sequence[int], correction: TrainedModel | None, downscaling: TrainedModel | None,
              settings: ChainSettings) -> tuple[np.ndarray, np.ndarray]:
    """Satellite ``(T, h, w)`` (transformed) → ``(corrected (T, M, h, w), fine (T, M, H, W))``.

    ``correction=None`` skips the correction (downscaling-only ablation); ``downscaling=None``
    returns the upsampled corrected field (correction-only ablation). Regression models give
    one deterministic "member" (M = 1). ``hour_keys`` (see :func:`hour_keys`) seed the latents.
    """
    deterministic = all(m is None or m.model.objective == "regression" for m in (correction, downscaling))
    seeds = settings.seeds()[:1] if deterministic else settings.seeds()
    n = len(seeds)
    t, h, w = sat_t.shape
    upsampling = (downscaling or correction).card.upsampling
    lat_c, lon_c = coarse_grid
    lat_f, lon_f = fine_grid
    churn = [settings.seed, *hour_keys]
    base_c = np.repeat(sat_t[:, None], n, axis=1).reshape(t * n, h, w).astype(np.float32)
    corrected = base_c if correction is None else apply_model(
        correction, base_c, lat_c, lon_c, latent_field(seeds, hour_keys, (h, w), COARSE), settings,
        _seed([*churn, COARSE]))
    up = transforms.upsample(corrected.astype(np.float32), NEST, upsampling)
    fine = up if downscaling is None else apply_model(
        downscaling, up, lat_f, lon_f, latent_field(seeds, hour_keys, (NEST * h, NEST * w), FINE), settings,
        _seed([*churn, FINE]))
    return corrected.reshape(t, n, h, w), fine.reshape(t, n, NEST * h, NEST * w)


def _seed(entropy: Sequence[int]) -> int:
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0])
