"""The PrecipDiff chain at inference: satellite → correction ensemble → upsample → downscaling per member.

Plain torch + numpy (no Kedro). Shared by the ``evaluation`` and ``inference`` pipelines; every
network call goes through the project's one sampling path, :mod:`precipdiff.nn.sampling`.

Noise and reproducibility: the latents of member ``m`` of hour ``t`` depend only on
``(member_seeds[m], hour_key(t), grid)`` and the position in the domain
(:class:`~precipdiff.nn.sampling.LatentField` draws them in fixed 64 × 64 blocks, each from its own generator), so any member of any hour can be
regenerated alone, whatever the batching or tiling. This is exact for the deterministic sampler
(``S_churn = 0``); with churn the extra noise comes from one generator per batch of tiles, seeded
from ``(seed, hours, grid, batch index)``: reproducible for the same settings, not member by member.

Large domains are sampled in overlapping tiles (:func:`tiled_map`) cross-faded with raised-cosine
weights. Tiles of all samples (hours × members) are denoised together ``batch_size`` at a time;
conditions and latents are built per tile, so memory is the tile batch plus the output fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from precipdiff.data import transforms
from precipdiff.data.contract import NEST
from precipdiff.model_card import TrainedModel
from precipdiff.inference.settings import ChainSettingError, ChainSettings  # noqa: F401  (the chain's settings)
from precipdiff.nn.sampling import COARSE, FINE, LatentField, batched, latent_field, pad, pick_device, residual_sampler


def hour_keys(times) -> list[int]:
    """Integer key of each hour for the latents: whole hours since 1970-01-01T00 UTC."""
    hours = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).asi8 // 3_600_000_000_000
    return [int(h) for h in hours]


# ---------------------------------------------------------------------------------------- tiling


def blend_window(size_h: int, size_w: int, overlap: int) -> torch.Tensor:
    """Separable weights: 1 inside, a raised-cosine ramp over ``overlap`` cells at each edge (> 0).

    Two tiles overlapping by exactly ``overlap`` cells have ramps summing to 1 (sin² + cos²), a
    cross-fade; :func:`tiled_map` still divides by the summed weights, so any overlap is exact.
    """
    def ramp(n: int) -> torch.Tensor:
        w = torch.ones(n, dtype=torch.float64)
        k = min(overlap, n // 2)
        if k > 0:
            edge = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(k, dtype=torch.float64) + 0.5) / k)
            w[:k], w[n - k:] = edge, edge.flip(0)
        return w
    return ramp(size_h)[:, None] * ramp(size_w)[None, :]


def tile_origins(n: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` cells covering ``n`` with at least ``overlap`` overlap."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


TileInputs = Callable[[int, slice, slice], tuple[torch.Tensor, torch.Tensor]]


def tiled_map(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], tile_inputs: TileInputs, n: int,
              shape: tuple[int, int], tile: int, overlap: int, batch_size: int) -> np.ndarray:
    """Apply ``fn(cond (k, C, h, w), latents (k, 1, h, w)) -> (k, 1, h, w)`` over overlapping tiles.

    ``tile_inputs(b, rows, cols)`` returns sample ``b``'s condition ``(C, h, w)`` and latents
    ``(1, h, w)`` in a window. Jobs run sample-major (all windows of sample 0, then sample 1 …) in
    batches of ``batch_size`` (the last one zero-padded, see :func:`~precipdiff.nn.sampling.pad`); a sample is blended
    (float64 weighted mean of its tiles) as soon as its last tile is done, so at most
    ``⌈batch_size / n_tiles⌉ + 1`` float64 accumulators exist.
    A domain within one tile is processed whole (tiled == untiled there, bit for bit).

    Returns ``(n, H, W)`` float32.
    """
    h, w = shape
    windows = [(r, c) for r in tile_origins(h, tile, overlap) for c in tile_origins(w, tile, overlap)]
    th, tw = min(tile, h), min(tile, w)
    win = blend_window(th, tw, overlap).numpy()
    total = np.zeros((h, w))
    for r, c in windows:
        total[r:r + th, c:c + tw] += win
    out = np.empty((n, h, w), np.float32)
    acc: dict[int, np.ndarray] = {}
    for chunk in batched(((b, r, c) for b in range(n) for r, c in windows), batch_size):
        inputs = [tile_inputs(b, slice(r, r + th), slice(c, c + tw)) for b, r, c in chunk]
        cond, lat = torch.stack([x[0] for x in inputs]), torch.stack([x[1] for x in inputs])
        res = fn(pad(cond, batch_size), pad(lat, batch_size)).detach().float().cpu().numpy()[:len(chunk), 0]
        for k, (b, r, c) in enumerate(chunk):
            if len(windows) == 1:
                out[b] = res[k]
                continue
            a = acc.setdefault(b, np.zeros((h, w)))
            a[r:r + th, c:c + tw] += res[k] * win
            if (r, c) == windows[-1]:
                out[b] = a / total
                del acc[b]
    return out


def tiled_apply(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], cond: torch.Tensor,
                latents: torch.Tensor, tile: int, overlap: int, batch_size: int) -> torch.Tensor:
    """:func:`tiled_map` over whole in-memory tensors ``cond (B, C, H, W)``, ``latents (B, 1, H, W)``.

    Returns ``(B, 1, H, W)`` float32.
    """
    b, _, h, w = cond.shape
    out = tiled_map(fn, lambda i, rs, cs: (cond[i, :, rs, cs], latents[i, :, rs, cs]), b, (h, w), tile,
                    overlap, batch_size)
    return torch.from_numpy(out)[:, None]


# ---------------------------------------------------------------------------------------- models


def model_sampler(trained: TrainedModel, settings: "ChainSettings", churn_seed: int = 0):
    """The one sampling path (:func:`precipdiff.nn.sampling.residual_sampler`) for a model under ``settings``:
    the model card's sampler with the chain's overrides, on the chain's device and precision."""
    return residual_sampler(trained.model, trained.card.sampler_setting(settings.sampler),
                            pick_device(settings.device), settings.precision, settings.compile, churn_seed)


def apply_model(trained: TrainedModel, base: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                latents: np.ndarray | LatentField | None, settings: ChainSettings, churn_seed: int = 0) -> np.ndarray:
    """``base + residual`` for ``base`` ``(B, H, W)`` (transformed units; the residual as the model
    was trained, :func:`~precipdiff.data.transforms.apply_residual`).

    ``latents``: ``(B, 1, H, W)`` array, a :class:`LatentField` (drawn tile by tile) or ``None``
    (zeros; regression models ignore them). Conditions are built tile by tile.
    """
    n, h, w = base.shape
    names = trained.card.conditioning.static_channels

    def tile_inputs(b: int, rows: slice, cols: slice):
        part = base[b, rows, cols][None]
        cond = transforms.condition(part, names, lat[rows], lon[cols])[0]
        if latents is None:
            z = np.zeros((1, *part.shape[-2:]))
        elif isinstance(latents, LatentField):
            z = latents.window(b, rows, cols)[None]
        else:
            z = latents[b, :, rows, cols]
        return torch.from_numpy(cond), torch.from_numpy(np.ascontiguousarray(z))

    fn = model_sampler(trained, settings, churn_seed)
    res = tiled_map(fn, tile_inputs, n, (h, w), settings.tile, settings.overlap, settings.batch_size)
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
