"""IMERG-like satellite simulated from a 0.01° radar field (one implementation, two callers).

Used by the ``synthetic`` source (on synthetic radar) and by ``radar_simulated_satellite``
(on real MRMS fields). The error chain, applied hour by hour to rates in mm/h:

1. random displacement of the whole field (parallax / advection-correction errors of
   morphed microwave + IR estimates);
2. Gaussian smoothing (the effective resolution of passive-microwave footprints is coarser than
   the 0.1° grid);
3. block-mean coarsening to 0.1° (10 × 10 radar cells);
4. intensity-dependent multiplicative bias ``R_s = p (R/p)^γ`` with γ < 1: rates below the pivot
   ``p`` are overestimated, heavy rain underestimated (a well-known IMERG behaviour, e.g.
   Tan et al. 2016), times ``1 - o · location`` so heavy orographic rain is underestimated more;
5. multiplicative log-normal noise per 0.1° cell;
6. missed light rain (cells under a threshold set dry with some probability) and drizzle false
   alarms next to rain (dry cells given a light rate with some probability).

Deterministic from ``seed``. The defaults are calibrated (``docs/synthetic.md``) so the raw
satellite upsampled to 1 km correlates with radar at about 0.35–0.55 hourly, as IMERG vs MRMS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage

from precipdiff.data import contract, fields


@dataclass(frozen=True)
class SatelliteErrorParams:
    """Knobs of the IMERG-like error model (see ``conf/base/parameters_ingestion.yml``)."""

    displacement_km: float = 12.0  # std of the hourly random shift (radar pixels ≈ km)
    smoothing_km: float = 6.0  # std of the Gaussian footprint smoothing (km)
    bias_exponent: float = 0.65  # γ < 1 compresses intensities
    bias_pivot_mm_h: float = 2.5  # rate left unbiased by the intensity term (mm/h)
    orographic_underestimation: float = 0.4  # fraction removed over the highest "terrain"
    noise_sigma: float = 0.9  # std of ln of the multiplicative noise per 0.1° cell
    miss_threshold_mm_h: float = 0.4  # cells lighter than this may be missed (mm/h)
    miss_probability: float = 0.5  # chance a light cell is missed
    false_alarm_probability: float = 0.08  # chance a dry cell next to rain gets drizzle
    false_alarm_mm_h: float = 0.3  # mean drizzle rate of a false alarm (mm/h)
    location_slope: float = 4.0  # spectral slope of the random location map (real-radar caller)

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> "SatelliteErrorParams":
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"ingestion satellite error model: unknown parameters {sorted(unknown)}")
        return cls(**values)


def _displace_and_smooth(rates: np.ndarray, p: SatelliteErrorParams, rng: np.random.Generator) -> np.ndarray:
    """Steps 1–2: per-hour random shift (bilinear, edge-replicated) then Gaussian smoothing."""
    filled = np.nan_to_num(rates, nan=0.0)
    shifts = rng.normal(0.0, p.displacement_km, size=(rates.shape[0], 2))
    out = np.empty_like(filled)
    for t in range(filled.shape[0]):  # loop over hours; each shift is a vectorised resample
        out[t] = ndimage.shift(filled[t], shifts[t], order=1, mode="nearest")
    if p.smoothing_km > 0:
        out = ndimage.gaussian_filter(out, sigma=(0, p.smoothing_km, p.smoothing_km), mode="nearest")
    return out


def block_mean(values: np.ndarray, factor: int = contract.NEST) -> np.ndarray:
    """Mean over non-overlapping ``factor × factor`` blocks of the last two axes."""
    t, h, w = values.shape
    return values.reshape(t, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def _bias_and_noise(coarse: np.ndarray, location: np.ndarray, p: SatelliteErrorParams, rng) -> np.ndarray:
    """Steps 4–5: intensity- and location-dependent multiplicative bias, log-normal noise."""
    biased = p.bias_pivot_mm_h * (coarse / p.bias_pivot_mm_h) ** p.bias_exponent
    biased *= 1.0 - p.orographic_underestimation * location
    noise = np.exp(p.noise_sigma * rng.standard_normal(coarse.shape) - 0.5 * p.noise_sigma**2)
    return np.where(coarse > 0.01, biased * noise, 0.0)


def _misses_and_false_alarms(sat: np.ndarray, p: SatelliteErrorParams, rng) -> np.ndarray:
    """Step 6: light rain missed; drizzle false alarms in dry cells bordering rain."""
    missed = (sat < p.miss_threshold_mm_h) & (rng.random(sat.shape) < p.miss_probability)
    sat = np.where(missed, 0.0, sat)
    near_rain = ndimage.maximum_filter(sat > 0, size=(1, 3, 3)) & (sat == 0)
    alarm = near_rain & (rng.random(sat.shape) < p.false_alarm_probability)
    drizzle = rng.exponential(p.false_alarm_mm_h, size=sat.shape)
    return np.where(alarm, drizzle, sat)


def simulate_satellite(
    radar: xr.Dataset,
    params: Mapping | None,
    seed: int,
    location_map: np.ndarray | None = None,
) -> xr.Dataset:
    """IMERG-like canonical ``satellite`` dataset simulated from a canonical ``radar`` dataset.

    Parameters
    ----------
    radar : canonical radar dataset (0.01°, mm/h); its extent must nest whole 0.1° cells.
    params : error-model knobs (:class:`SatelliteErrorParams` field names).
    seed : seed of every random draw of the error model.
    location_map : (lat, lon) map in [0, 1] of where heavy rain is underestimated most
        (the synthetic terrain); a smooth random map from ``seed`` when None (real radar).
    """
    p = SatelliteErrorParams.from_mapping(params)
    rng = np.random.default_rng(seed)
    rates = radar[contract.VARIABLE].values
    if location_map is None:
        location_map = fields.unit_field(rates.shape[1:], p.location_slope, rng)
    coarse = block_mean(_displace_and_smooth(rates, p, rng))
    location = block_mean(location_map[None].astype(np.float64))[0]
    sat = _misses_and_false_alarms(_bias_and_noise(coarse, location, p, rng), p, rng)
    missing = np.isnan(block_mean(rates))  # a 0.1° cell with any missing radar cell stays missing
    sat = np.where(missing, np.nan, sat)
    lat = radar["lat"].values.reshape(-1, contract.NEST).mean(axis=1)
    lon = radar["lon"].values.reshape(-1, contract.NEST).mean(axis=1)
    return contract.make_dataset(
        sat, radar["time"].values, lat, lon, kind="satellite",
        source=f"IMERG-like satellite simulated from radar by precipdiff (seed {seed})",
    )
