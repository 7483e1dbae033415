"""Ensemble scores: CRPS (standard and fair), spread-skill ratio, rank histogram, exceedance
probability (the Brier score and reliability: :mod:`precipdiff.verification.reliability`).

Array conventions: ``ens`` has shape (T, M, H, W) (members on axis 1) and ``obs`` (T, H, W), both
in mm/h. A pixel is *valid* where the observation and every member are finite; invalid pixels are
excluded from every score. Each accumulator keeps sums only (never arrays of pixels), so chunks of
a test set can be streamed through ``accum`` and ``compute`` gives the same numbers as one call on
the whole set.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "crps_ensemble",
    "exceedance_probability",
    "CRPSScores",
    "SpreadSkill",
    "RankHistogram",
]


def _ensemble(ens, obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes; return float64 ``ens`` (T, M, H, W), ``obs`` (T, H, W) and the valid mask."""
    x, y = np.asarray(ens, dtype=np.float64), np.asarray(obs, dtype=np.float64)
    if x.ndim != y.ndim + 1 or x.shape[:1] + x.shape[2:] != y.shape:
        raise ValueError(
            f"ens shape {x.shape} does not match obs shape {y.shape}: expected ens (T, M, H, W) "
            "with obs (T, H, W)"
        )
    valid = np.isfinite(y) & np.isfinite(x).all(axis=1)
    return x, y, valid


def _crps_terms(x, y) -> tuple[np.ndarray, np.ndarray]:
    """E|X - y| and the pair sum S = sum_ij |x_i - x_j|, members on axis 1.

    S uses the sorted-ensemble identity sum_ij |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i),
    i = 1..M (O(M log M) instead of O(M^2)).
    """
    m = x.shape[1]
    abs_err = np.abs(x - y[:, None]).mean(axis=1)
    w = 2.0 * (2.0 * np.arange(1, m + 1) - m - 1)
    pair_sum = np.tensordot(w, np.sort(x, axis=1), axes=([0], [1]))
    return abs_err, pair_sum


def crps_ensemble(ens, obs, fair: bool = False) -> np.ndarray:
    """CRPS of an ensemble at every pixel (mm/h).

    Parameters
    ----------
    ens : array_like
        Ensemble, shape (T, M, H, W), mm/h.
    obs : array_like
        Observation, shape (T, H, W), mm/h.
    fair : bool
        False: energy form of the empirical-CDF CRPS, E|X - y| - 1/(2M^2) sum_ij |x_i - x_j|
        (Gneiting & Raftery 2007). True: fair CRPS, E|X - y| - 1/(2M(M-1)) sum_ij
        |x_i - x_j| (Ferro 2014), the unbiased estimate of the CRPS of the distribution the
        members are drawn from; needs M >= 2.

    Returns
    -------
    ndarray
        Shape (T, H, W); NaN at invalid pixels.
    """
    x, y, valid = _ensemble(ens, obs)
    m = x.shape[1]
    if fair and m < 2:
        raise ValueError(f"fair CRPS needs at least 2 members; ens has M={m}")
    abs_err, pair_sum = _crps_terms(x, y)
    # fair CRPS, Ferro (2014): 1/(2M(M-1)); energy form, Gneiting & Raftery (2007): 1/(2M^2)
    norm = 2.0 * m * (m - 1) if fair else 2.0 * m * m
    return np.where(valid, abs_err - pair_sum / norm, np.nan)


def exceedance_probability(ens, threshold: float) -> np.ndarray:
    """Fraction of members with rate >= ``threshold`` (mm/h), shape (T, H, W); NaN where any
    member is NaN."""
    x = np.asarray(ens)
    p = (x >= threshold).mean(axis=1)
    return np.where(np.isfinite(x).all(axis=1), p, np.nan)


class CRPSScores:
    """Streaming mean CRPS, standard (energy form) and fair (Ferro 2014), in mm/h."""

    def __init__(self):
        self.n = 0
        self.sum_abs_err = 0.0  # sum over valid pixels of E|X - y|
        self.sum_pair = 0.0  # sum over valid pixels of sum_ij |x_i - x_j|
        self.n_members = None

    def accum(self, ens, obs) -> None:
        """Add one chunk: ``ens`` (T, M, H, W), ``obs`` (T, H, W)."""
        x, y, valid = _ensemble(ens, obs)
        self.n_members = _same_m(self.n_members, x.shape[1])
        abs_err, pair_sum = _crps_terms(x, y)
        self.n += int(valid.sum())
        self.sum_abs_err += abs_err[valid].sum()
        self.sum_pair += pair_sum[valid].sum()

    def compute(self) -> dict[str, float]:
        """``crps`` and ``crps_fair`` (mm/h; NaN if M < 2 for the fair one), ``n`` pixels."""
        m, n = self.n_members or 0, self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_abs, mean_pair = np.float64(self.sum_abs_err) / n, np.float64(self.sum_pair) / n
            crps = mean_abs - mean_pair / (2.0 * m * m)  # energy form, Gneiting & Raftery (2007)
            # fair CRPS, Ferro (2014)
            fair = mean_abs - mean_pair / (2.0 * m * (m - 1)) if m > 1 else np.nan
        return {"crps": float(crps), "crps_fair": float(fair), "n": n}

    def records(self) -> list[dict]:
        """Rows for :func:`precipdiff.verification.tables.tidy`."""
        return [{"metric": k, "value": v} for k, v in self.compute().items()]


def _same_m(previous, m):
    if previous is not None and previous != m:
        raise ValueError(f"ensemble size changed between chunks: was M={previous}, now M={m}")
    return m


class SpreadSkill:
    """Streaming spread-skill ratio with the finite-ensemble factor of Fortin et al. (2014).

    ratio = sqrt((M + 1) / M) * sqrt(mean(s^2)) / sqrt(mean((xbar - y)^2)),

    where s^2 is the unbiased (ddof=1) member variance at a pixel, xbar the ensemble mean, and both
    means run over all valid pixels. For a calibrated ensemble (y exchangeable with the members)
    E[(xbar - y)^2] = (M + 1)/M * E[s^2] (Fortin et al. 2014), so the ratio is 1;
    < 1 means under-dispersive, > 1 over-dispersive.
    """

    def __init__(self):
        self.n = 0
        self.sum_var = 0.0  # sum of s^2 (ddof=1)
        self.sum_sq_err = 0.0  # sum of (xbar - y)^2
        self.n_members = None

    def accum(self, ens, obs) -> None:
        """Add one chunk: ``ens`` (T, M, H, W), ``obs`` (T, H, W)."""
        x, y, valid = _ensemble(ens, obs)
        m = self.n_members = _same_m(self.n_members, x.shape[1])
        if m < 2:
            raise ValueError(f"spread-skill needs at least 2 members; ens has M={m}")
        xv = np.moveaxis(x, 1, -1)[valid]  # (n_valid, M)
        mean = xv.mean(axis=1)
        self.n += mean.size
        self.sum_var += ((xv - mean[:, None]) ** 2).sum() / (m - 1)
        self.sum_sq_err += ((mean - y[valid]) ** 2).sum()

    def compute(self) -> dict[str, float]:
        """``spread`` (sqrt mean s^2, mm/h), ``rmse_ens_mean`` (mm/h), ``spread_skill_ratio``."""
        m = self.n_members or 0
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.sqrt(np.float64(self.sum_var) / self.n)
            skill = np.sqrt(np.float64(self.sum_sq_err) / self.n)
            ratio = np.sqrt((m + 1) / m) * spread / skill if m else np.nan  # Fortin et al. (2014)
        return {
            "spread": float(spread),
            "rmse_ens_mean": float(skill),
            "spread_skill_ratio": float(ratio),
            "n": self.n,
        }

    def records(self) -> list[dict]:
        """Rows for :func:`precipdiff.verification.tables.tidy`."""
        return [{"metric": k, "value": v} for k, v in self.compute().items()]


class RankHistogram:
    """Streaming rank (Talagrand) histogram with random tie-breaking.

    The rank of y among the M members is ``#{x_i < y} + U``, U uniform on {0, ..., #{x_i == y}}
    (Hamill 2001), so an observed 0 mm/h among members that are all 0 is spread evenly over
    the ranks instead of piling into rank 0. Draws come from ``numpy.random.default_rng(seed)``,
    one per valid pixel in C order, so streaming in chunks along time reproduces one call.

    Parameters
    ----------
    seed : int
        Seed of the tie-breaking generator.
    """

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.counts = None  # (M + 1,) int64

    def accum(self, ens, obs) -> None:
        """Add one chunk: ``ens`` (T, M, H, W), ``obs`` (T, H, W)."""
        x, y, valid = _ensemble(ens, obs)
        m = x.shape[1]
        if self.counts is None:
            self.counts = np.zeros(m + 1, dtype=np.int64)
        _same_m(self.counts.size - 1, m)
        below = (x < y[:, None]).sum(axis=1)[valid]
        ties = (x == y[:, None]).sum(axis=1)[valid]
        u = self.rng.random(below.size)
        rank = below + np.floor(u * (ties + 1)).astype(np.int64)
        self.counts += np.bincount(rank, minlength=m + 1)

    def compute(self) -> dict:
        """``counts`` (M + 1,), ``frequency`` (counts / n), ``n``, and ``chi2``, the
        Pearson chi-square statistic against a flat histogram (M degrees of freedom)."""
        counts = self.counts if self.counts is not None else np.zeros(1, dtype=np.int64)
        n = int(counts.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = n / counts.size
            chi2 = float(((counts - expected) ** 2).sum() / expected)
            return {"counts": counts.copy(), "frequency": counts / n, "n": n, "chi2": chi2}

    def records(self) -> list[dict]:
        """Rows ``rank_<r>`` (relative frequency) and ``rank_chi2`` for :func:`tables.tidy`."""
        out = self.compute()
        rows = [{"metric": f"rank_{r}", "value": f} for r, f in enumerate(out["frequency"])]
        return rows + [{"metric": "rank_chi2", "value": out["chi2"]}]
