"""Synthetic radar truth at 0.01° — the embedded default data source.

A radar-like hourly sequence is a thresholded, exponentiated latent Gaussian field:

* **spatial structure**: the latent field has a power-law spectrum ``PSD ∝ |k|^-beta``
  (built in Fourier space as pysteps' noise generators do, :mod:`precipdiff.data.fields`);
* **time**: each hour the latent spectrum is advected (phase shift) and updated by a
  scale-dependent AR(1), ``Z_t = φ(k) shift(Z_{t-1}) + sqrt(1-φ(k)²) F(k) W_t`` with a lifetime
  ``τ(λ) = τ_ref (λ/λ_ref)^a`` that grows with wavelength λ (small cells die fast, as in STEPS,
  Seed 2003);
* **intermittency**: a slowly varying "storminess" AR(1) series sets the wet fraction of each
  hour (the latent threshold is its Gaussian quantile), so dry and stormy hours alternate;
* **heavy tail**: wet rates ``R = s_t (exp(c (z - z_thr)) - 1)`` are log-normal-like;
* **terrain**: a fixed smooth "terrain" map raises both the chance and the intensity of rain,
  so errors depend on location as over mountains.

Everything is deterministic from ``seed``. Units: mm/h; pixel ≈ 1 km.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit, ndtri

from precipdiff.data import contract, fields
from precipdiff.data.satellite_errors import simulate_satellite


@dataclass(frozen=True)
class RadarParams:
    """Knobs of the synthetic radar truth (see ``conf/base/parameters_ingestion.yml``)."""

    spectral_slope: float = 3.0  # beta of the latent PSD ∝ |k|^-beta
    wet_fraction: float = 0.2  # typical share of wet pixels in an hour
    wet_fraction_variability: float = 1.5  # std of the hourly storminess in logit space
    storminess_lag1: float = 0.95  # hour-to-hour autocorrelation of storminess
    intensity_mm_h: float = 1.0  # scale s of wet rates (mm/h)
    intensity_tail: float = 0.75  # c: larger = heavier upper tail
    max_rate_mm_h: float = 150.0  # physical cap
    lifetime_h: float = 3.0  # tau_ref: decorrelation time at the reference wavelength (h)
    lifetime_ref_km: float = 50.0  # lambda_ref (km)
    lifetime_exponent: float = 0.8  # a in tau(λ) = tau_ref (λ/λ_ref)^a
    advection_km_h: tuple[float, float] = (8.0, 15.0)  # mean (northward, eastward) motion (km/h)
    advection_variability_km_h: float = 5.0  # std of hourly wind fluctuations (km/h)
    terrain_slope: float = 4.0  # beta of the smooth terrain field
    orographic_wet_boost: float = 0.8  # latent shift over the highest terrain (std units)
    orographic_intensity_gain: float = 1.0  # rates multiplied by 1 + gain * terrain

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> "RadarParams":
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"ingestion.synthetic.radar: unknown parameters {sorted(unknown)}")
        if "advection_km_h" in values:
            values["advection_km_h"] = tuple(values["advection_km_h"])
        return cls(**values)


def hourly_times(start: str, hours: int) -> np.ndarray:
    """``hours`` hourly time stamps from ``start`` (UTC, end-of-hour labels)."""
    if int(hours) < 1:
        raise ValueError(f"ingestion.period.hours must be >= 1, got {hours}")
    return pd.date_range(pd.Timestamp(start), periods=int(hours), freq="h").values


def terrain_map(shape: tuple[int, int], slope: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth terrain-like field scaled to [0, 1] (1 = highest ground)."""
    return fields.unit_field(shape, slope, rng).astype(np.float32)


def _ar1(n: int, lag1: float, rng: np.random.Generator, size: int = 1) -> np.ndarray:
    """Standard-normal AR(1) series of length ``n`` (stationary from the first value)."""
    out = np.empty((n, size))
    out[0] = rng.standard_normal(size)
    for t in range(1, n):  # loop over hours, not pixels
        out[t] = lag1 * out[t - 1] + np.sqrt(1 - lag1**2) * rng.standard_normal(size)
    return out.squeeze(-1) if size == 1 else out


def _ar_coefficients(shape: tuple[int, int], p: RadarParams) -> np.ndarray:
    """Scale-dependent lag-1 correlation φ(k) = exp(-1 h / τ(λ)), λ = 1/|k| pixels ≈ km."""
    k = np.maximum(fields.wavenumber_grid(shape), 1.0 / max(shape))
    tau = p.lifetime_h * ((1.0 / k) / p.lifetime_ref_km) ** p.lifetime_exponent
    return np.exp(-1.0 / tau)


def latent_sequence(
    n_hours: int, shape: tuple[int, int], p: RadarParams, rng: np.random.Generator
) -> np.ndarray:
    """Standardised latent fields (T, H, W) with advection and scale-dependent memory."""
    pad = (int(np.ceil(shape[0] * 1.5 / 16)) * 16, int(np.ceil(shape[1] * 1.5 / 16)) * 16)
    amp = fields.powerlaw_filter(pad, p.spectral_slope)
    phi = _ar_coefficients(pad, p)
    innov = np.sqrt(1.0 - phi**2) * amp
    wind = np.asarray(p.advection_km_h) + p.advection_variability_km_h * _ar1(n_hours, 0.9, rng, 2)
    spec = amp * np.fft.rfft2(rng.standard_normal(pad))
    out = np.empty((n_hours, *shape), dtype=np.float32)
    for t in range(n_hours):
        if t:
            spec = phi * fields.shift_spectrum(spec, pad, *wind[t]) + innov * np.fft.rfft2(
                rng.standard_normal(pad)
            )
        out[t] = fields.normalise(np.fft.irfft2(spec, s=pad))[: shape[0], : shape[1]]
    return out


def radar_truth(
    times: np.ndarray, shape: tuple[int, int], p: RadarParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Radar-like rates (T, H, W) in mm/h and the terrain map (H, W) used to make them."""
    terrain = terrain_map(shape, p.terrain_slope, rng)
    storm = _ar1(len(times), p.storminess_lag1, rng)
    wet = expit(logit(p.wet_fraction) + p.wet_fraction_variability * storm)
    z = latent_sequence(len(times), shape, p, rng) + p.orographic_wet_boost * terrain
    z_thr = ndtri(1.0 - wet)[:, None, None] + p.orographic_wet_boost * terrain.mean()
    scale = p.intensity_mm_h * np.exp(0.3 * storm)[:, None, None]
    rate = scale * np.expm1(p.intensity_tail * np.maximum(z - z_thr, 0.0))
    rate *= 1.0 + p.orographic_intensity_gain * terrain
    return np.minimum(rate, p.max_rate_mm_h).astype(np.float32), terrain


def generate(box: Mapping, start: str, hours: int, seed: int, radar: Mapping | None, satellite: Mapping | None):
    """Paired canonical ``(satellite, radar)`` datasets over ``box`` for ``hours`` hours from ``start``.

    The radar truth comes from :func:`radar_truth`; the satellite from it through the
    IMERG-like error model :func:`precipdiff.data.satellite_errors.simulate_satellite`,
    using the terrain as the location map of orographic errors.
    """
    lat, lon = contract.grid_for_box(box, "radar")
    times = hourly_times(start, hours)
    rng = np.random.default_rng(seed)
    rates, terrain = radar_truth(times, (lat.size, lon.size), RadarParams.from_mapping(radar), rng)
    radar_ds = contract.make_dataset(
        rates, times, lat, lon, kind="radar", source=f"precipdiff synthetic radar truth (seed {seed})"
    )
    satellite_ds = simulate_satellite(radar_ds, satellite, seed=seed + 1, location_map=terrain)
    return satellite_ds, radar_ds
