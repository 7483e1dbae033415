"""Choose the EDM sampler of a trained diffusion model on validation data (plain torch + numpy).

The sampler (steps, σ_max, ρ, solver, churn) decides how much small-scale variance and spread an
ensemble carries as much as the network does (``docs/evaluation.md``, diagnosis). Each candidate
setting of a small grid draws ``members`` samples of the same validation tiles with the same
latents; the scores are in mm/h:

* ``crps_fair`` — fair CRPS (Ferro 2014), the headline;
* ``spread_skill_ratio`` — Fortin et al. (2014), 1 = calibrated;
* one column per band of ``psd_bands_km`` — the members' mean RAPSD over the targets', geometric
  mean over the band's wavelengths (1 = the radar's power there), and ``psd_ratio``, the band
  farthest from 1 (in log);
* ``network_calls`` — per sample (Heun: 2 × steps − 1, Euler: steps), the cost.

:func:`choose` keeps the settings whose spread–skill and every band's PSD ratio lie within the
bounds and takes the lowest CRPS among them; when none does, the one closest to the bounds (smallest
summed |log| excess). Nothing here looks at the test split: the caller passes validation tiles.

Bands, not one broad band: a geometric mean over 2–10 km averaged a 1.2× excess at 3 km with a
0.8× deficit at 10 km, and the evaluation's targets are per band (3, 5, 10 km; docs/evaluation.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from precipdiff.data import transforms
from precipdiff.nn.sampler import SAMPLER_KEYS, network_calls
from precipdiff.verification import CRPSScores, MeanPSD, SpreadSkill, psd_ratio_at

log = logging.getLogger(__name__)

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
                   transform: str, residual: str, *, members: int, seed: int, pixel_km: float,
                   psd_bands_km: Mapping[str, Sequence[float]], max_rate_mm_h: float = 300.0) -> pd.DataFrame:
    """Score every sampler ``setting`` on the same tiles and latents.

    Parameters
    ----------
    sample : callable
        ``sample(setting, cond (B, C, h, w), latents (B, 1, h, w)) -> residual (B, 1, h, w)`` in
        the model's residual units (:func:`precipdiff.nn.sampling.residual_sampler`, the one sampling path).
    cond : Tensor
        ``(N, C, h, w)`` conditions of ``N`` validation tiles.
    base, target : ndarray
        ``(N, h, w)`` base field and truth in transformed units (``transform``, the model card's); the
        sample is ``apply_residual(base, residual)`` in the model's ``residual`` space (its card's).
    members, seed
        Samples per tile; latents from ``numpy.random.default_rng(seed)`` (the same for every setting).
    pixel_km, psd_bands_km
        Grid spacing, and ``{column: [lo, hi]}`` wavelength bands (km) of the PSD ratios.
    max_rate_mm_h
        Samples are clipped here before scoring (a diverging setting scores badly, not infinitely).

    Returns
    -------
    DataFrame
        One row per setting: its keys, ``crps_fair``, ``spread_skill_ratio``, one column per band,
        ``psd_ratio`` (the worst band), ``network_calls``, ``seconds``.
    """
    n, _, h, w = cond.shape
    latents = torch.from_numpy(np.random.default_rng(seed).standard_normal((n * members, 1, h, w)))
    cond_m = cond.repeat_interleave(members, dim=0)
    base_m = np.repeat(base, members, axis=0)
    obs = transforms.inverse_transform(target, transform)
    ref = MeanPSD(pixel_km)
    ref.accum(obs)
    rows = []
    for setting in settings:
        t0 = time.perf_counter()
        res = sample(dict(setting), cond_m, latents).float().numpy()[:, 0]
        seconds = time.perf_counter() - t0
        ens = transforms.inverse_transform(transforms.apply_residual(base_m, res, residual, transform), transform)
        ens = transforms.clip_runaway(ens, max_rate_mm_h)[0].reshape(n, members, h, w)  # as the evaluation
        crps, spread, psd = CRPSScores(), SpreadSkill(), MeanPSD(pixel_km)
        for acc, args in ((crps, (ens, obs)), (spread, (ens, obs)), (psd, (ens,))):
            acc.accum(*args)
        bands = band_ratios(psd.compute()["psd"], ref.compute()["psd"], ref.wavelength_km, psd_bands_km)
        rows.append({**{k: setting.get(k) for k in SAMPLER_KEYS if k in setting},
                     "crps_fair": crps.compute()["crps_fair"], "spread_skill_ratio": spread.compute()["spread_skill_ratio"],
                     **bands, "psd_ratio": worst_band(bands), "network_calls": network_calls(setting),
                     "seconds": seconds})
        log.info("sampler %s: CRPS fair %.4f, spread/skill %.2f, PSD ratio %s (%.1f s)", dict(setting),
                 rows[-1]["crps_fair"], rows[-1]["spread_skill_ratio"],
                 ", ".join(f"{k} {v:.2f}" for k, v in bands.items()), seconds)
    return pd.DataFrame(rows)


def band_ratios(psd: np.ndarray, psd_ref: np.ndarray, wavelength_km: np.ndarray,
                bands_km: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """``{name: ratio}``: geometric mean of ``psd / psd_ref`` over the wavelengths in each ``[lo, hi]`` km."""
    out = {}
    for name, (lo, hi) in bands_km.items():
        keep = wavelength_km >= float(lo)
        if not (keep & (wavelength_km <= float(hi))).any():
            raise ValueError(f"sampler_selection.psd_bands_km.{name}: no wavelength of the tiles in [{lo}, {hi}] km "
                             f"(they resolve {wavelength_km.min():.3g}–{wavelength_km.max():.3g} km)")
        out[name] = psd_ratio_at(psd[keep] / psd_ref[keep], wavelength_km[keep], float(hi))
    return out


def worst_band(ratios: Mapping[str, float]) -> float:
    """The ratio farthest from 1 in log (an excess of 2 and a deficit of 0.5 are equally far)."""
    return max(ratios.values(), key=lambda r: abs(np.log(max(r, 1e-12))) if np.isfinite(r) else np.inf)


def choose(table: pd.DataFrame, spread_skill: Sequence[float], psd_ratio: Sequence[float],
           psd_columns: Sequence[str] = ("psd_ratio",)) -> int:
    """Row label of the chosen setting: lowest ``crps_fair`` among rows whose spread–skill and every
    ``psd_columns`` lie within their ``[lo, hi]`` bounds, else the smallest summed log-distance to
    the bounds (then the lowest CRPS)."""
    def excess(values: pd.Series, bounds: Sequence[float]) -> pd.Series:
        lo, hi = np.log(float(bounds[0])), np.log(float(bounds[1]))
        x = np.log(values.clip(lower=1e-12)).fillna(np.inf)
        return np.maximum(lo - x, 0) + np.maximum(x - hi, 0)

    miss = excess(table["spread_skill_ratio"], spread_skill)
    for column in psd_columns:
        miss = miss + excess(table[column], psd_ratio)
    ranked = table.assign(_miss=miss.round(12), _crps=table["crps_fair"].fillna(np.inf))
    return ranked.sort_values(["_miss", "_crps"], kind="stable").index[0]
