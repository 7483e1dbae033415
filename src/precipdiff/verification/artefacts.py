"""Artefact diagnostics: seams along block or tile borders, and an over-smoothing flag.

Seams: a 10 km -> 1 km downscaler that treats each coarse cell (or each inference tile)
separately leaves jumps along the cell borders. The seam ratio compares the mean absolute
difference between neighbouring pixels *across* a border (every ``block`` pixels, starting at
``offset``) with the same quantity *inside* blocks, over both axes:

    seam_ratio = mean |x[j] - x[j-1]| (j on a border) / mean |x[j] - x[j-1]| (j inside)

A field without seams has ratio ~ 1; a nearest-neighbour upsampled field has zero gradients
inside blocks and a large (possibly infinite) ratio. Pairs with a NaN are excluded.
"""

from __future__ import annotations

import numpy as np

from precipdiff.verification.spectral import psd_ratio_at

__all__ = ["SeamStatistic", "seam_ratio", "oversmoothing_flag"]


def _border_mask(n: int, block: int, offset: int) -> np.ndarray:
    """For the n - 1 differences x[j] - x[j-1], j = 1..n-1: True where j is a block border."""
    j = np.arange(1, n)
    return (j - offset) % block == 0


class SeamStatistic:
    """Streaming seam ratio of fields (..., H, W).

    Parameters
    ----------
    block : int
        Border spacing in pixels (10 for the 0.1 -> 0.01 degree nest; the tile size for tiles).
    offset : int
        Index of the first pixel of a block (0 when the domain starts on a coarse-cell edge).
    """

    def __init__(self, block: int = 10, offset: int = 0):
        if block < 2:
            raise ValueError(f"SeamStatistic: block must be >= 2 pixels; got {block}")
        self.block, self.offset = int(block), int(offset)
        self.sums = np.zeros(2)  # border, inside: sum of |difference|
        self.counts = np.zeros(2, dtype=np.int64)

    def accum(self, fields) -> None:
        """Add a batch of fields (..., H, W) in mm/h."""
        x = np.asarray(fields, dtype=np.float64)
        for axis in (-1, -2):
            d = np.abs(np.diff(x, axis=axis))
            d = np.moveaxis(d, axis, -1).reshape(-1, d.shape[axis])  # (pairs, n - 1)
            ok = np.isfinite(d)
            per_j = np.where(ok, d, 0.0).sum(axis=0)  # summed along the other axes
            n_j = ok.sum(axis=0)
            border = _border_mask(x.shape[axis], self.block, self.offset)
            self.sums += per_j[border].sum(), per_j[~border].sum()
            self.counts += n_j[border].sum(), n_j[~border].sum()

    def compute(self) -> dict[str, float]:
        """``seam_ratio``, ``grad_border`` and ``grad_inside`` (mean |difference|, mm/h)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            border, inside = self.sums / self.counts
            return {"seam_ratio": float(border / inside), "grad_border": float(border),
                    "grad_inside": float(inside)}  # fmt: skip

    def records(self) -> list[dict]:
        """Rows with ``scale`` = block (px) for :func:`precipdiff.verification.tables.tidy`."""
        return [
            {"metric": k, "scale": float(self.block), "value": v} for k, v in self.compute().items()
        ]


def seam_ratio(fields, block: int = 10, offset: int = 0) -> float:
    """Seam ratio of a batch of fields (..., H, W); see :class:`SeamStatistic`."""
    acc = SeamStatistic(block, offset)
    acc.accum(fields)
    return acc.compute()["seam_ratio"]


def oversmoothing_flag(ratio, wavelength_km, max_km: float = 10.0, tolerance: float = 0.5) -> bool:
    """True when a method keeps less than ``tolerance`` of the reference power at small scales.

    Parameters
    ----------
    ratio : array_like
        PSD ratio method / reference per wavelength (:func:`spectral.psd_ratio`).
    wavelength_km : array_like
        Wavelengths of ``ratio`` in km.
    max_km : float
        Scales at or below this wavelength (km) are checked (10 km = below the satellite grid).
    tolerance : float
        Flag when the geometric-mean ratio (:func:`spectral.psd_ratio_at`) is below this.
    """
    return psd_ratio_at(ratio, wavelength_km, max_km) < tolerance
