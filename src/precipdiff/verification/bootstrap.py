"""Hour-block bootstrap confidence intervals for scores built from per-hour sums (plain numpy).

Every headline score of the evaluation is a smooth function of sums over pixels and hours
(fair CRPS = Σcrps / Σn, RMSE = √(Σe² / Σn), the spread–skill ratio, a PSD ratio …). Keeping those
sums *per hour* (:class:`HourlyStats`: a few numbers per hour and method, so memory does not grow
with the field size) lets a bootstrap resample whole hours, the unit within which pixels are
strongly dependent, and recompute the score from the resampled sums.

Consecutive hours are dependent too, so hours are drawn in blocks of ``block_hours`` consecutive
(evaluated) hours: the circular block bootstrap (Politis & Romano 1992; blocks should span the
time over which the hourly errors stay correlated, or the intervals come out too narrow). Intervals are percentile intervals
(Efron & Tibshirani 1993, ch. 13). A *paired* difference of two methods resamples the same hours
for both (:func:`bootstrap`, one weight matrix), so the noise of the weather common to both
cancels — the interval of a difference is much narrower than the two intervals suggest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from precipdiff.verification.probabilistic import crps_ensemble
from precipdiff.verification.spectral import rapsd

__all__ = ["SCORES", "psd_ratio_score", "HOURLY_COLUMNS", "HourlyStats", "STAT_NAMES", "block_weights", "bootstrap", "hourly_sums",
           "hourly_table", "percentile_interval"]

#: Columns of :func:`hourly_table`: ``scale`` is the PSD wavelength (km) of ``stat == "psd"`` rows, NaN otherwise.
HOURLY_COLUMNS = ("method", "grid", "hour_key", "stat", "scale", "value")

#: Per-hour sums kept by :class:`HourlyStats` (over the valid pixels of that hour; ``f`` is the
#: forecast, the member mean of an ensemble, ``y`` the observation, mm/h).
STAT_NAMES = ("n", "sum_f", "sum_y", "sum_ff", "sum_yy", "sum_fy", "sum_abs_err", "sum_crps_fair",
              "sum_var_fortin")


class HourlyStats:
    """Per-hour sums of one method for :func:`bootstrap`, streamed chunk by chunk.

    For each hour: ``n`` valid pixels; ``sum_f``, ``sum_y``, ``sum_ff``, ``sum_yy``, ``sum_fy``
    (moments of the member mean ``f`` and the observation ``y``: bias, RMSE, correlation);
    ``sum_abs_err`` (Σ|f − y|); ``sum_crps_fair`` (Σ fair CRPS, Ferro 2014; Σ|f − y| for a
    deterministic forecast); ``sum_var_fortin`` (Σ (M+1)/M · s², s² the ddof-1 member variance,
    so √(Σvar_fortin / Σ(f − y)²) is the spread–skill ratio of Fortin et al. 2014; 0 for a
    deterministic forecast). With ``pixel_km``, also the per-hour RAPSD (member mean of the
    members' spectra, fields with a NaN skipped) for PSD ratios.
    """

    def __init__(self, pixel_km: float | None = None):
        self.pixel_km = pixel_km
        self.keys: list[int] = []
        self.rows: list[np.ndarray] = []
        self.psd: list[np.ndarray] = []
        self.wavelength_km: np.ndarray | None = None

    def accum(self, fcst: np.ndarray, obs: np.ndarray, keys) -> None:
        """Add hours: ``fcst`` (T, H, W) or (T, M, H, W), ``obs`` (T, H, W) in mm/h; ``keys`` (T,) hour ids."""
        ens = fcst if fcst.ndim == 4 else fcst[:, None]
        x, y = ens.astype(np.float64), obs.astype(np.float64)
        m = x.shape[1]
        valid = np.isfinite(y) & np.isfinite(x).all(axis=1)
        f = np.where(valid, x.mean(axis=1), 0.0)
        y0 = np.where(valid, y, 0.0)
        crps = np.abs(f - y0) if m == 1 else np.nan_to_num(crps_ensemble(x, y, fair=True))
        var = np.zeros_like(f) if m == 1 else np.where(valid, x.var(axis=1, ddof=1), 0.0) * (m + 1) / m
        sums = [valid, f, y0, f * f, y0 * y0, f * y0, np.abs(f - y0), crps, var]
        self.rows.append(np.stack([s.sum(axis=(1, 2), dtype=np.float64) for s in sums], axis=1))
        self.keys += [int(k) for k in keys]
        if self.pixel_km is not None:
            res = rapsd(ens, self.pixel_km)
            self.wavelength_km = res.wavelength_km
            psd = res.psd.reshape(len(ens), m, -1)
            ok = np.isfinite(psd).sum(axis=1)  # members with a spectrum (none for a field with a radar gap)
            self.psd.append(np.where(ok > 0, np.nansum(psd, axis=1) / np.maximum(ok, 1), np.nan))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``keys`` (N,), ``stats`` (N, len(STAT_NAMES)), ``psd`` (N, K) or None, in the order added."""
        stats = np.concatenate(self.rows) if self.rows else np.empty((0, len(STAT_NAMES)))
        psd = np.concatenate(self.psd) if self.psd else None
        return np.asarray(self.keys, dtype=np.int64), stats, psd


def hourly_table(stats: Mapping[tuple[str, str], HourlyStats]):
    """Long table (:data:`HOURLY_COLUMNS`) of the per-hour sums of several ``(method, grid)``."""
    import pandas as pd

    parts = []
    for (method, grid), acc in stats.items():
        keys, sums, psd = acc.arrays()
        if keys.size == 0:
            continue
        frame = pd.DataFrame(sums, columns=list(STAT_NAMES)).assign(hour_key=keys)
        long = frame.melt(id_vars="hour_key", var_name="stat", value_name="value").assign(scale=np.nan)
        if psd is not None:
            lam = np.broadcast_to(acc.wavelength_km, psd.shape)
            long = pd.concat([long, pd.DataFrame({"hour_key": np.repeat(keys, psd.shape[1]), "stat": "psd",
                                                  "scale": lam.ravel(), "value": psd.ravel()})], ignore_index=True)
        parts.append(long.assign(method=method, grid=grid))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("scale", "value") else object) for c in HOURLY_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(HOURLY_COLUMNS)]


def hourly_sums(table, method: str, grid: str, keys) -> dict[str, np.ndarray] | None:
    """Per-hour sums of one ``(method, grid)`` of :func:`hourly_table` for the hours ``keys`` (in
    that order): ``{stat: (N,)}`` and, where spectra were kept, ``psd`` (N, K) with NaN → 0,
    ``psd_n`` (N,) 1 where the hour's spectrum is valid, and ``wavelength_km`` (K,) (not a sum).
    None if the method lacks one of the hours."""
    rows = table[(table["method"] == method) & (table["grid"] == grid)]
    keys = np.asarray(keys, dtype=np.int64)
    wide = rows[rows["stat"].isin(STAT_NAMES)].pivot_table(index="hour_key", columns="stat", values="value")
    if rows.empty or not np.isin(keys, wide.index).all():
        return None
    out = {name: wide.loc[keys, name].to_numpy(np.float64) for name in STAT_NAMES if name in wide}
    spec = rows[rows["stat"] == "psd"]
    if len(spec):
        grid = spec.pivot_table(index="hour_key", columns="scale", values="value", dropna=False)
        grid = grid.loc[keys, sorted(grid.columns, reverse=True)]
        psd = grid.to_numpy(np.float64)
        ok = np.isfinite(psd).all(axis=1)
        out.update(psd=np.where(ok[:, None], psd, 0.0), psd_n=ok.astype(np.float64),
                   wavelength_km=np.asarray(grid.columns, dtype=np.float64))
    return out


def block_weights(n: int, n_boot: int, block_hours: int, seed: int) -> np.ndarray:
    """Circular block bootstrap (Politis & Romano 1992) resampling weights ``(n_boot, n)``: how
    often each of ``n`` ordered hours is drawn when ⌈n / L⌉ blocks of ``L = block_hours``
    consecutive hours (wrapping from the last hour to the first) start uniformly at any hour, the
    concatenation truncated to ``n`` hours. Every hour is drawn equally often on average (unlike the
    moving-block bootstrap's, Künsch 1989, whose end hours are under-drawn). Row sums are ``n``.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"block_weights: need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")
    length = max(1, min(int(block_hours), n))
    n_blocks = -(-n // length)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(length)) % n).reshape(n_boot, -1)[:, :n]
    weights = np.zeros((n_boot, n))
    np.add.at(weights, (np.arange(n_boot)[:, None], idx), 1.0)
    return weights


def bootstrap(score: Callable[[Mapping[str, np.ndarray]], np.ndarray], sums: Mapping[str, np.ndarray],
              weights: np.ndarray) -> tuple[float, np.ndarray]:
    """The score on all hours and on every resample.

    Parameters
    ----------
    score : callable
        ``score(totals) -> values``: ``totals`` maps each name of ``sums`` to its total over hours,
        with a leading resample axis (``(B, ...)``); vectorised over that axis.
    sums : mapping of str to ndarray
        Per-hour sums, each ``(N, ...)`` with the hours on axis 0 (the same hours, in the same
        order, as ``weights``' columns).
    weights : ndarray
        ``(B, N)`` resampling weights (:func:`block_weights`).

    Returns
    -------
    estimate : float
        The score of all hours (weights all 1).
    replicates : ndarray
        ``(B,)`` the score of each resample.
    """
    ones = np.ones((1, weights.shape[1]))
    total = lambda w: {k: np.tensordot(w, np.asarray(v, dtype=np.float64), axes=1) for k, v in sums.items()}  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.asarray(score(total(ones)))[0]), np.asarray(score(total(weights)), dtype=np.float64)


def _sq_err(t):
    return t["sum_ff"] - 2.0 * t["sum_fy"] + t["sum_yy"]


#: Scores as functions of summed :class:`HourlyStats` (``t[name]`` with a leading resample axis).
SCORES: dict[str, Callable] = {
    "crps_fair": lambda t: t["sum_crps_fair"] / t["n"],  # fair CRPS, Ferro (2014); MAE if deterministic
    "mae": lambda t: t["sum_abs_err"] / t["n"],
    "rmse": lambda t: np.sqrt(np.maximum(_sq_err(t), 0.0) / t["n"]),  # of the member mean
    "bias": lambda t: (t["sum_f"] - t["sum_y"]) / t["n"],
    "corr": lambda t: (t["n"] * t["sum_fy"] - t["sum_f"] * t["sum_y"])  # Pearson, pixels pooled
    / np.sqrt((t["n"] * t["sum_ff"] - t["sum_f"] ** 2) * (t["n"] * t["sum_yy"] - t["sum_y"] ** 2)),
    "spread_skill_ratio": lambda t: np.sqrt(t["sum_var_fortin"] / _sq_err(t)),  # Fortin et al. (2014)
}


def psd_ratio_score(wavelength_km: np.ndarray, lo_km: float, hi_km: float) -> Callable:
    """Score ``t -> ratio``: geometric mean over the wavelengths in ``[lo_km, hi_km]`` of the mean
    spectrum of a method (``t["psd"] / t["psd_n"]``) over the radar's (``t["radar_psd"] / t["radar_psd_n"]``)."""
    sel = (wavelength_km >= lo_km) & (wavelength_km <= hi_km)
    if not sel.any():
        raise ValueError(f"psd_ratio_score: no wavelength in [{lo_km}, {hi_km}] km "
                         f"(the spectra span {wavelength_km.min():.3g}–{wavelength_km.max():.3g} km)")

    def score(t):
        ratio = (t["psd"][:, sel] / t["psd_n"][:, None]) / (t["radar_psd"][:, sel] / t["radar_psd_n"][:, None])
        return np.exp(np.log(ratio).mean(axis=1))
    return score


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval (Efron & Tibshirani 1993, eq. 13.5) of the finite replicates; NaN if none."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
