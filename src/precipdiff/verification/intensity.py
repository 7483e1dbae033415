"""Errors conditioned on the observed intensity: count, mean bias and RMSE per bin of ``obs``.

Binning on the *observation* shows how a method treats drizzle, moderate and heavy rain (a
regression toward the mean shows as positive bias in low bins and negative bias in high bins).
Bins are half-open, [lo, hi) in mm/h; observations outside all bins and non-finite pairs are
excluded. Sums only, so chunks can be streamed.
"""

from __future__ import annotations

import numpy as np

from precipdiff.verification.continuous import valid_pairs

__all__ = ["IntensityErrors", "DEFAULT_BINS"]

DEFAULT_BINS = (0.0, 0.1, 1.0, 5.0, 10.0, 20.0, np.inf)  # mm/h edges


class IntensityErrors:
    """Streaming count, mean error (fcst - obs) and RMSE per observed-intensity bin.

    Parameters
    ----------
    bins : sequence of float
        Increasing bin edges in mm/h; the last may be ``inf``.
    """

    def __init__(self, bins=DEFAULT_BINS):
        self.bins = np.asarray(bins, dtype=np.float64)
        if self.bins.ndim != 1 or self.bins.size < 2 or np.any(np.diff(self.bins) <= 0):
            raise ValueError(f"IntensityErrors: bins must be >= 2 increasing edges; got {bins}")
        n = self.bins.size - 1
        self.count = np.zeros(n, dtype=np.int64)
        self.sum_err, self.sum_sq_err = np.zeros(n), np.zeros(n)

    def accum(self, fcst, obs) -> None:
        """Add one chunk: ``fcst`` (T, H, W) or members (T, M, H, W, pooled), ``obs`` (T, H, W)."""
        f, o = valid_pairs(fcst, obs)
        k = np.searchsorted(self.bins, o, side="right") - 1  # bins[k] <= o < bins[k + 1]
        inside = (k >= 0) & (k < self.count.size)
        k, err = k[inside], (f - o)[inside]
        n = self.count.size
        self.count += np.bincount(k, minlength=n)
        self.sum_err += np.bincount(k, weights=err, minlength=n)
        self.sum_sq_err += np.bincount(k, weights=err * err, minlength=n)

    def compute(self) -> dict:
        """``lower``, ``upper`` (bin edges, mm/h), ``count``, ``bias`` and ``rmse`` (mm/h), each
        an array with one entry per bin; NaN for empty bins."""
        with np.errstate(invalid="ignore", divide="ignore"):
            bias = self.sum_err / self.count
            rmse = np.sqrt(self.sum_sq_err / self.count)
        return {"lower": self.bins[:-1], "upper": self.bins[1:], "count": self.count.copy(),
                "bias": bias, "rmse": rmse}  # fmt: skip

    def records(self) -> list[dict]:
        """Rows ``count_bin``, ``bias_bin``, ``rmse_bin`` with ``threshold`` = the bin's lower
        edge (mm/h) for :func:`precipdiff.verification.tables.tidy`."""
        out = self.compute()
        return [
            {"metric": f"{name}_bin", "threshold": float(lo), "value": float(v)}
            for name in ("count", "bias", "rmse")
            for lo, v in zip(out["lower"], out[name])
        ]
