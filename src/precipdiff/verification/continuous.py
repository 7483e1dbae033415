"""Continuous scores of a deterministic forecast: RMSE, MAE, bias, ratio of totals, correlation.

All scores pool every valid pixel of every field (a pixel is valid where both forecast and
observation are finite). They are computed from running sums, so a test set of any length can be
streamed through :class:`ContinuousScores` chunk by chunk (pysteps ``det_cont_fct_init / accum /
compute`` pattern) and gives the same numbers as one call on the whole set.

Array conventions: ``obs`` has shape (T, H, W) in mm/h; ``fcst`` has the same shape, or
(T, M, H, W) for an ensemble whose members are then pooled as independent forecasts.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ContinuousScores",
    "rmse",
    "mae",
    "bias",
    "ratio_of_totals",
    "correlation",
    "valid_pairs",
]

_SUMS = ("n", "f", "o", "ff", "oo", "fo", "ae", "se")


def valid_pairs(fcst, obs) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast ``obs`` to ``fcst`` and return the finite pairs as two flat float64 arrays.

    Parameters
    ----------
    fcst : array_like
        Forecast, shape (T, H, W) or ensemble (T, M, H, W).
    obs : array_like
        Observation, shape (T, H, W); NaN marks missing data.

    Returns
    -------
    f, o : ndarray
        1-D arrays of equal length holding the pairs where both are finite.
    """
    f, o = _broadcast(fcst, obs)
    ok = np.isfinite(f) & np.isfinite(o)
    return f[ok].astype(np.float64), o[ok].astype(np.float64)


def _broadcast(fcst, obs) -> tuple[np.ndarray, np.ndarray]:
    """``obs`` (T, H, W) against ``fcst`` (T, H, W) or (T, M, H, W); raise naming the shapes."""
    f, o = np.asarray(fcst), np.asarray(obs)
    if f.ndim == o.ndim + 1:
        o = o[:, None]
    try:
        return np.broadcast_arrays(f, o)
    except ValueError:
        raise ValueError(
            f"fcst shape {f.shape} does not match obs shape {np.shape(obs)}: expected fcst "
            "(T, H, W) or (T, M, H, W) with obs (T, H, W)"
        ) from None


class ContinuousScores:
    """Streaming RMSE, MAE, mean error, ratio of totals and Pearson correlation.

    Examples
    --------
    >>> acc = ContinuousScores()
    >>> for f, o in chunks:            # doctest: +SKIP
    ...     acc.accum(f, o)
    >>> acc.compute()["rmse"]          # doctest: +SKIP
    """

    def __init__(self):
        self.sums = dict.fromkeys(_SUMS, np.float64(0.0))

    def accum(self, fcst, obs) -> None:
        """Add the valid pairs of one chunk (shapes as in :func:`valid_pairs`) to the sums."""
        f, o = valid_pairs(fcst, obs)
        d = f - o
        s = self.sums
        s["n"] += f.size
        s["f"] += f.sum()
        s["o"] += o.sum()
        s["ff"] += f @ f
        s["oo"] += o @ o
        s["fo"] += f @ o
        s["ae"] += np.abs(d).sum()
        s["se"] += d @ d

    def merge(self, other: "ContinuousScores") -> "ContinuousScores":
        """Add the sums of ``other`` (e.g. from another worker) into this accumulator."""
        for k in _SUMS:
            self.sums[k] += other.sums[k]
        return self

    def compute(self) -> dict[str, float]:
        """Scores in mm/h (``corr`` and ``ratio_of_totals`` dimensionless); NaN when undefined.

        Returns
        -------
        dict
            ``rmse``, ``mae``, ``bias`` (mean of fcst - obs), ``ratio_of_totals``
            (sum fcst / sum obs), ``corr`` (Pearson over all valid pixels), ``n`` (pixels).
        """
        s = self.sums
        n = np.float64(s["n"])
        with np.errstate(invalid="ignore", divide="ignore"):
            mf, mo = np.float64(s["f"]) / n, np.float64(s["o"]) / n
            # Pearson r from raw moments: cov / (sd_f sd_o), population normalisation cancels
            cov = s["fo"] / n - mf * mo
            var_f = max(s["ff"] / n - mf * mf, 0.0)
            var_o = max(s["oo"] / n - mo * mo, 0.0)
            return {
                "rmse": float(np.sqrt(s["se"] / n)),
                "mae": float(s["ae"] / n),
                "bias": float(mf - mo),
                "ratio_of_totals": float(np.float64(s["f"]) / s["o"]),
                "corr": float(cov / np.sqrt(var_f * var_o)),
                "n": int(n),
            }

    def records(self) -> list[dict]:
        """Rows for :func:`precipdiff.verification.tables.tidy` (no threshold, no scale)."""
        return [{"metric": k, "value": v} for k, v in self.compute().items()]


def _one_shot(fcst, obs) -> dict[str, float]:
    acc = ContinuousScores()
    acc.accum(fcst, obs)
    return acc.compute()


def rmse(fcst, obs) -> float:
    """Root-mean-square error (mm/h) over all valid pixels."""
    return _one_shot(fcst, obs)["rmse"]


def mae(fcst, obs) -> float:
    """Mean absolute error (mm/h) over all valid pixels."""
    return _one_shot(fcst, obs)["mae"]


def bias(fcst, obs) -> float:
    """Mean error, mean(fcst - obs) (mm/h), over all valid pixels."""
    return _one_shot(fcst, obs)["bias"]


def ratio_of_totals(fcst, obs) -> float:
    """Ratio of totals sum(fcst) / sum(obs) over all valid pixels (1 = unbiased volume)."""
    return _one_shot(fcst, obs)["ratio_of_totals"]


def correlation(fcst, obs) -> float:
    """Pearson correlation over all valid pixels pooled (not a mean of per-field correlations)."""
    return _one_shot(fcst, obs)["corr"]
