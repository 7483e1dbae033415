"""Choose the EDM sampler of a trained diffusion model on validation data (plain torch + numpy).

The sampler (steps, σ_max, ρ, solver, churn) decides how much small-scale variance and spread an
ensemble carries as much as the network does (``docs/evaluation.md``, diagnosis). Each candidate
setting of a small grid draws ``members`` samples of the same validation tiles with the same
latents; the scores are in mm/h:

* ``crps_fair`` — fair CRPS (Ferro 2014), the headline;
* ``spread_skill_ratio`` — Fortin et al. (2014), 1 = calibrated;
* ``psd_ratio`` — the members' mean RAPSD over the targets', geometric mean over the wavelengths in
  ``psd_band_km`` (1 = the radar's small-scale power);
* ``network_calls`` — per sample (Heun: 2 × steps − 1, Euler: steps), the cost.

:func:`choose` keeps the settings whose spread–skill and PSD ratio lie within the bounds and takes
the lowest CRPS among them; when none does, the one closest to the bounds (smallest summed
|log| excess). Nothing here looks at the test split: the caller passes validation tiles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from precipdiff.data import transforms
from precipdiff.verification import CRPSScores, MeanPSD, SpreadSkill, psd_ratio_at

log = logging.getLogger(__name__)

SAMPLER_KEYS = ("num_steps", "sigma_min", "sigma_max", "rho", "S_churn", "solver")


def network_calls(setting: Mapping) -> int:
    """Network evaluations per sample of an EDM sampler setting (Alg. 2: Heun skips the last correction)."""
    steps = int(setting.get("num_steps", 18))
    return 2 * steps - 1 if setting.get("solver", "heun") == "heun" else steps


def wettest_tiles(target: np.ndarray, tile: int, n_tiles: int) -> list[tuple[int, int, int]]:
    """``(hour, row, col)`` origins of the ``n_tiles`` non-overlapping ``tile`` × ``tile`` windows
    of ``target`` (T, H, W) with the largest mean (NaN-free windows only), in (hour, row, col) order."""
    t, h, w = target.shape
    size_r, size_c = min(tile, h), min(tile, w)
    cands = []
    for r in range(0, h - size_r + 1, size_r):
        for c in range(0, w - size_c + 1, size_c):
            win = target[:, r:r + size_r, c:c + size_c]
            ok = np.isfinite(win).all(axis=(1, 2))
            mean = np.where(ok, np.nan_to_num(win).mean(axis=(1, 2)), -np.inf)
            cands += [(float(m), k, r, c) for k, m in enumerate(mean) if np.isfinite(m)]
    if not cands:
        raise ValueError("sampler selection: no validation tile without missing values")
    best = sorted(cands, key=lambda x: -x[0])[:n_tiles]
    return sorted((k, r, c) for _, k, r, c in best)


def score_settings(sample, settings: Sequence[Mapping], cond: torch.Tensor, base: np.ndarray, target: np.ndarray,
                   info: Mapping, *, members: int, seed: int, pixel_km: float,
                   psd_band_km: Sequence[float], max_rate_mm_h: float = 300.0) -> pd.DataFrame:
    """Score every sampler ``setting`` on the same tiles and latents.

    Parameters
    ----------
    sample : callable
        ``sample(setting, cond (B, C, h, w), latents (B, 1, h, w)) -> residual (B, 1, h, w)`` in
        the model's residual units (e.g. :func:`precipdiff.inference.chain.residual_sampler`).
    cond : Tensor
        ``(N, C, h, w)`` conditions of ``N`` validation tiles.
    base, target : ndarray
        ``(N, h, w)`` base field and truth in transformed units (``info["transform"]``); the sample
        is ``apply_residual(base, residual)`` as the model was trained (``info["residual"]``).
    members, seed
        Samples per tile; latents from ``numpy.random.default_rng(seed)`` (the same for every setting).
    pixel_km, psd_band_km
        Grid spacing and the ``[lo, hi]`` wavelengths (km) of the PSD ratio.
    max_rate_mm_h
        Samples are clipped here before scoring (a diverging setting scores badly, not infinitely).

    Returns
    -------
    DataFrame
        One row per setting: its keys, ``crps_fair``, ``spread_skill_ratio``, ``psd_ratio``,
        ``network_calls``, ``seconds``.
    """
    n, _, h, w = cond.shape
    name, kind = info.get("transform", "log1p"), info.get("residual", "transformed")
    latents = torch.from_numpy(np.random.default_rng(seed).standard_normal((n * members, 1, h, w)))
    cond_m = cond.repeat_interleave(members, dim=0)
    base_m = np.repeat(base, members, axis=0)
    obs = transforms.inverse_transform(target, name)
    ref = MeanPSD(pixel_km)
    ref.accum(obs)
    rows = []
    for setting in settings:
        t0 = time.perf_counter()
        res = sample(dict(setting), cond_m, latents).float().numpy()[:, 0]
        seconds = time.perf_counter() - t0
        ens = transforms.inverse_transform(transforms.apply_residual(base_m, res, kind, name), name)
        ens = transforms.clip_runaway(ens, max_rate_mm_h)[0].reshape(n, members, h, w)  # as the evaluation
        crps, spread, psd = CRPSScores(), SpreadSkill(), MeanPSD(pixel_km)
        for acc, args in ((crps, (ens, obs)), (spread, (ens, obs)), (psd, (ens,))):
            acc.accum(*args)
        lo, hi = (float(x) for x in psd_band_km)
        band = ref.wavelength_km >= lo
        ratio = psd_ratio_at(psd.compute()["psd"][band] / ref.compute()["psd"][band], ref.wavelength_km[band], hi)
        rows.append({**{k: setting.get(k) for k in SAMPLER_KEYS if k in setting},
                     "crps_fair": crps.compute()["crps_fair"], "spread_skill_ratio": spread.compute()["spread_skill_ratio"],
                     "psd_ratio": ratio, "network_calls": network_calls(setting), "seconds": seconds})
        log.info("sampler %s: CRPS fair %.4f, spread/skill %.2f, PSD ratio %.2f (%.1f s)", dict(setting),
                 rows[-1]["crps_fair"], rows[-1]["spread_skill_ratio"], ratio, seconds)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, spread_skill: Sequence[float], psd_ratio: Sequence[float]) -> int:
    """Row label of the chosen setting: lowest ``crps_fair`` among rows within both ``[lo, hi]``
    bounds, else the smallest summed log-distance to the bounds (then the lowest CRPS)."""
    def excess(values: pd.Series, bounds: Sequence[float]) -> pd.Series:
        lo, hi = np.log(float(bounds[0])), np.log(float(bounds[1]))
        x = np.log(values.clip(lower=1e-12)).fillna(np.inf)
        return np.maximum(lo - x, 0) + np.maximum(x - hi, 0)

    miss = excess(table["spread_skill_ratio"], spread_skill) + excess(table["psd_ratio"], psd_ratio)
    ranked = table.assign(_miss=miss.round(12), _crps=table["crps_fair"].fillna(np.inf))
    return ranked.sort_values(["_miss", "_crps"], kind="stable").index[0]
