"""Radially averaged power spectral density (RAPSD) of batches of fields, and PSD ratios.

The RAPSD follows pysteps ``utils.spectral.rapsd`` (Ruzanski & Chandrasekar 2011): power
|FFT|^2 / (H W) averaged over rings of integer radius r in a frequency grid scaled by
L = max(H, W), so the ring r holds wavelength L / r pixels. For square fields the numbers equal
pysteps'; for non-square ones the rings are true circles in cycles/km. No window is applied (as in
pysteps): compare methods on the same domain so leakage from the borders is common to all.
The r = 0 ring (domain mean) is dropped: wavelengths run from L pixels down to about 2 pixels.

NaN handling (``nan_policy``): ``"skip"`` (default) leaves a NaN row for every field holding a
NaN, so means over fields ignore it; ``"zero"`` fills NaN with 0 mm/h (dry), which keeps every
field but adds the spurious power of the hole's edges; ``"raise"`` refuses. The NaN fraction of
each field is always returned so the choice is visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft

__all__ = ["RAPSD", "rapsd", "MeanPSD", "psd_ratio", "psd_ratio_at", "psd_slope"]


class RAPSD(NamedTuple):
    """Result of :func:`rapsd`."""

    psd: np.ndarray  # (N, K) mean power per ring, (mm/h)^2; NaN rows for skipped fields
    wavelength_km: np.ndarray  # (K,) decreasing, L / r * pixel_km
    nan_fraction: np.ndarray  # (N,) fraction of NaN pixels in each input field


def _rings(h: int, w: int) -> tuple[np.ndarray, int, int]:
    """Integer ring index of every FFT coefficient, the number of rings K + 1 (incl. r = 0), L."""
    size = max(h, w)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    ring = np.rint(np.hypot(fy * size, fx * size)).astype(np.int64)
    n_rings = size // 2 + 1 if size % 2 else size // 2  # pysteps r_range
    return ring, n_rings, size


def rapsd(fields, pixel_km: float = 1.0, nan_policy: str = "skip") -> RAPSD:
    """RAPSD of every field in a batch.

    Parameters
    ----------
    fields : array_like
        Shape (..., H, W), e.g. (T, H, W) or (T, M, H, W); leading axes are flattened to N.
    pixel_km : float
        Grid spacing in km (the same along both axes).
    nan_policy : {"skip", "zero", "raise"}
        See the module docstring.

    Returns
    -------
    RAPSD
        ``psd`` (N, K) in (mm/h)^2, ``wavelength_km`` (K,), ``nan_fraction`` (N,).
    """
    x = np.asarray(fields, dtype=np.float64)
    h, w = x.shape[-2:]
    x = x.reshape(-1, h, w)
    nan = ~np.isfinite(x)
    nan_fraction = nan.mean(axis=(1, 2))
    if nan_policy not in ("skip", "zero", "raise"):
        raise ValueError(f"nan_policy must be 'skip', 'zero' or 'raise'; got {nan_policy!r}")
    if nan_policy == "raise" and nan_fraction.any():
        raise ValueError(f"rapsd: {int((nan_fraction > 0).sum())} field(s) contain NaN")
    x = np.where(nan, 0.0, x)
    power = np.abs(scipy.fft.fft2(x, workers=-1)) ** 2 / (h * w)
    ring, n_rings, size = _rings(h, w)
    keep = ring < n_rings
    idx = (np.arange(x.shape[0])[:, None] * n_rings + ring[keep][None, :]).ravel()
    sums = np.bincount(idx, weights=power[:, keep].ravel(), minlength=x.shape[0] * n_rings)
    psd = sums.reshape(-1, n_rings) / np.bincount(ring[keep], minlength=n_rings)
    if nan_policy == "skip":
        psd[nan_fraction > 0] = np.nan
    r = np.arange(1, n_rings)
    return RAPSD(psd[:, 1:], size / r * pixel_km, nan_fraction)


class MeanPSD:
    """Streaming mean RAPSD over every field seen (fields with NaN skipped, see module doc).

    Parameters
    ----------
    pixel_km : float
        Grid spacing in km.
    nan_policy : {"skip", "zero"}
        As in :func:`rapsd`.
    """

    def __init__(self, pixel_km: float = 1.0, nan_policy: str = "skip"):
        self.pixel_km, self.nan_policy = pixel_km, nan_policy
        self.sum = self.wavelength_km = None
        self.n_used = self.n_skipped = 0

    def accum(self, fields) -> None:
        """Add a batch (..., H, W)."""
        res = rapsd(fields, self.pixel_km, self.nan_policy)
        used = np.isfinite(res.psd).all(axis=1)
        if self.sum is None:
            self.sum, self.wavelength_km = np.zeros(res.psd.shape[1]), res.wavelength_km
        elif res.psd.shape[1] != self.sum.size:
            raise ValueError("MeanPSD: field size changed between chunks")
        self.sum += res.psd[used].sum(axis=0)
        self.n_used += int(used.sum())
        self.n_skipped += int((~used).sum())

    def compute(self) -> dict:
        """``psd`` (K,) mean over used fields, ``wavelength_km`` (K,), ``n_used``, ``n_skipped``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            psd = self.sum / self.n_used
        return {"psd": psd, "wavelength_km": self.wavelength_km,
                "n_used": self.n_used, "n_skipped": self.n_skipped}  # fmt: skip

    def records(self) -> list[dict]:
        """Rows ``psd`` with ``scale`` = wavelength (km) for :func:`tables.tidy`."""
        out = self.compute()
        return [
            {"metric": "psd", "scale": float(k), "value": float(v)}
            for k, v in zip(out["wavelength_km"], out["psd"])
        ]


def psd_ratio(psd, psd_ref) -> np.ndarray:
    """PSD / reference PSD per wavelength (same grid); 1 = same variance at that scale."""
    psd, psd_ref = np.asarray(psd, dtype=np.float64), np.asarray(psd_ref, dtype=np.float64)
    if psd.shape[-1] != psd_ref.shape[-1]:
        raise ValueError(f"psd_ratio: {psd.shape[-1]} vs {psd_ref.shape[-1]} wavelengths")
    with np.errstate(invalid="ignore", divide="ignore"):
        return psd / psd_ref


def psd_ratio_at(ratio, wavelength_km, max_km: float) -> float:
    """Geometric mean of a PSD ratio over the wavelengths <= ``max_km`` (km).

    Summarises how much small-scale variance a method has relative to the reference:
    1 = right amount, < 1 over-smoothed (e.g. 0.5 = half the power), > 1 too noisy. The geometric
    mean treats 0.5 and 2 symmetrically.
    """
    ratio, lam = np.asarray(ratio, dtype=np.float64), np.asarray(wavelength_km)
    sel = (lam <= max_km) & np.isfinite(ratio) & (ratio > 0)
    if not sel.any():
        raise ValueError(
            f"psd_ratio_at: no usable wavelength <= max_km={max_km} km "
            f"(shortest is {lam.min():.3g} km)"
        )
    return float(np.exp(np.log(ratio[sel]).mean()))


def psd_slope(psd, wavelength_km, min_km: float = 0.0, max_km: float = np.inf) -> float:
    """Log-log slope beta of PSD ~ k^beta (k = 1 / wavelength) between min_km and max_km."""
    psd, lam = np.asarray(psd, dtype=np.float64), np.asarray(wavelength_km)
    sel = (lam >= min_km) & (lam <= max_km) & np.isfinite(psd) & (psd > 0)
    if sel.sum() < 2:
        raise ValueError(f"psd_slope: fewer than 2 wavelengths in [{min_km}, {max_km}] km")
    return float(np.polyfit(np.log(1.0 / lam[sel]), np.log(psd[sel]), 1)[0])
