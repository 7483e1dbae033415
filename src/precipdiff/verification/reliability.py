"""Brier score of exceedance probabilities, its Murphy (1973) decomposition and reliability diagrams.

An M-member ensemble (a deterministic field: M = 1) says ``P(R ≥ t) = k / M``, ``k`` the members at
or above ``t`` mm/h: M + 1 possible probabilities, so binning by ``k`` loses nothing and the
decomposition is exact (Murphy 1973; Wilks 2011, eq. 8.43):

    BS = 1/N Σ_k n_k (p_k − ō_k)²  −  1/N Σ_k n_k (ō_k − ō)²  +  ō (1 − ō)
       =        reliability         −        resolution          +  uncertainty

with ``n_k`` the pixels forecast ``p_k = k / M``, ``ō_k`` the observed frequency of ``R ≥ t`` among
them and ``ō`` the overall frequency. The reliability diagram is ``ō_k`` against ``p_k``.

:class:`ReliabilityCounts` streams ``(T, M, H, W)`` chunks and keeps, per hour, per cell stratum
(e.g. where the satellite is dry / wet) and per threshold, only ``n_k`` and ``O_k = Σ 1[y ≥ t]``:
the per-hour sums an hour-block bootstrap resamples (:mod:`precipdiff.verification.bootstrap`).
Every score here is a function of those sums (:func:`brier_terms`), vectorised over leading axes.
Plain numpy, rates in mm/h, NaN = missing (a pixel counts where the observation and every member
are finite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["BrierScores", "ReliabilityCounts", "brier_terms", "cell_strata", "reliability_hourly", "reliability_sums",
           "RELIABILITY_COLUMNS", "RELIABILITY_STATS"]

#: Columns of :meth:`ReliabilityCounts.table`: counts of one (hour, cell stratum, threshold, probability).
RELIABILITY_COLUMNS = ("hour_key", "cells", "threshold", "prob", "n", "n_obs")
#: ``stat`` of the rows :func:`reliability_hourly` adds to the per-hour sums (``n`` and ``n_obs``).
RELIABILITY_STATS = {"n": "rel_n", "n_obs": "rel_obs"}


def cell_strata(satellite_mm_h: np.ndarray, shape: tuple[int, int], dry_mm_h: float) -> dict[str, np.ndarray]:
    """``{"all", "sat_dry", "sat_wet"}`` masks ``(T, H, W)`` of a ``(H, W)`` grid nested in the
    satellite's ``(h, w)``: a cell is satellite-dry where its satellite cell is below ``dry_mm_h``
    (NaN satellite cells are in neither ``sat_dry`` nor ``sat_wet``)."""
    sat = np.asarray(satellite_mm_h, dtype=np.float64)
    fy, fx = shape[0] // sat.shape[-2], shape[1] // sat.shape[-1]
    if (fy * sat.shape[-2], fx * sat.shape[-1]) != tuple(shape):
        raise ValueError(f"cell_strata: grid {shape} does not nest the satellite grid {sat.shape[-2:]}")
    up = sat.repeat(fy, axis=-2).repeat(fx, axis=-1)
    return {"all": np.ones(up.shape, bool), "sat_dry": up < dry_mm_h, "sat_wet": up >= dry_mm_h}


class ReliabilityCounts:
    """Per-hour counts ``n_k`` and ``O_k`` of the exceedance probabilities of an ensemble.

    Parameters
    ----------
    thresholds : sequence of float
        Rate thresholds ``t`` in mm/h (the events ``R ≥ t``).
    """

    def __init__(self, thresholds: Sequence[float]):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.n_members: int | None = None
        self.keys: list[int] = []
        self.strata: list[str] | None = None
        self.counts: list[np.ndarray] = []  # per chunk (T, S, J, M + 1, 2): [..., 0] = n_k, [..., 1] = O_k

    def accum(self, fcst: np.ndarray, obs: np.ndarray, keys=None, cells: Mapping[str, np.ndarray] | None = None) -> None:
        """Add hours ``keys`` (T,) (default: 0 for each): ``fcst`` (T, H, W) or (T, M, H, W), ``obs``
        (T, H, W) mm/h; ``cells`` maps stratum names to (T, H, W) masks (default: ``{"all": everything}``),
        the same every chunk."""
        x = np.asarray(fcst, dtype=np.float64)
        x = x[:, None] if x.ndim == 3 else x
        y = np.asarray(obs, dtype=np.float64)
        t, m = x.shape[:2]
        if self.n_members not in (None, m):
            raise ValueError(f"ReliabilityCounts: ensemble size changed between chunks: was {self.n_members}, now {m}")
        cells = {"all": np.ones(y.shape, bool)} if cells is None else dict(cells)
        if self.strata not in (None, list(cells)):
            raise ValueError(f"ReliabilityCounts: cell strata changed: were {self.strata}, now {list(cells)}")
        self.n_members, self.strata = m, list(cells)
        valid = np.isfinite(y) & np.isfinite(x).all(axis=1)
        hour = np.broadcast_to(np.arange(t)[:, None, None], y.shape)
        out = np.zeros((t, len(cells), self.thresholds.size, m + 1, 2), np.int64)
        for j, thr in enumerate(self.thresholds):  # loops over thresholds and strata, not pixels
            k = (x >= thr).sum(axis=1)
            seen = y >= thr
            for s, mask in enumerate(cells.values()):
                sel = valid & mask
                flat = hour[sel] * (m + 1) + k[sel]
                out[:, s, j, :, 0] = np.bincount(flat, minlength=t * (m + 1)).reshape(t, m + 1)
                out[:, s, j, :, 1] = np.bincount(flat, weights=seen[sel], minlength=t * (m + 1)).reshape(t, m + 1)
        self.counts.append(out)
        self.keys += [0] * t if keys is None else [int(key) for key in keys]

    def probabilities(self) -> np.ndarray:
        """The forecast probabilities ``k / M``, ``(M + 1,)``."""
        return np.arange(self.n_members + 1) / self.n_members

    def totals(self) -> np.ndarray:
        """Counts summed over hours ``(S, J, M + 1, 2)``."""
        return np.concatenate(self.counts).sum(axis=0)

    def terms(self) -> dict:
        """``{stratum: {threshold: brier_terms(...)}}`` over all hours."""
        tot, p = self.totals(), self.probabilities()
        return {s: {float(thr): brier_terms(tot[i, j, :, 0], tot[i, j, :, 1], p)
                    for j, thr in enumerate(self.thresholds)} for i, s in enumerate(self.strata)}

    def compute(self) -> dict:
        """:meth:`terms` (every stratum and threshold)."""
        return self.terms()

    def records(self, stratum: str = "all") -> list[dict]:
        """Rows ``brier``, ``brier_reliability``, ``brier_resolution``, ``brier_uncertainty``,
        ``forecast_frequency``, ``observed_frequency`` (with ``threshold``) of one stratum, for
        :func:`precipdiff.verification.tables.tidy`."""
        if not self.counts:
            return []
        return [{"metric": name if name.startswith(("brier", "forecast", "observed")) else f"brier_{name}",
                 "threshold": thr, "value": float(value)}
                for thr, terms in self.terms()[stratum].items() for name, value in terms.items() if name != "n"]

    def table(self):
        """Long table (:data:`RELIABILITY_COLUMNS`) of the per-hour counts, for the bootstrap."""
        import pandas as pd

        if not self.counts:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in RELIABILITY_COLUMNS})
        counts = np.concatenate(self.counts)  # (N, S, J, K, 2)
        n, s, j, k, _ = counts.shape
        index = np.indices((n, s, j, k)).reshape(4, -1)
        return pd.DataFrame({"hour_key": np.asarray(self.keys)[index[0]], "cells": np.asarray(self.strata)[index[1]],
                             "threshold": self.thresholds[index[2]], "prob": self.probabilities()[index[3]],
                             "n": counts[..., 0].ravel(), "n_obs": counts[..., 1].ravel()})


class BrierScores(ReliabilityCounts):
    """Streaming Brier score of ``P(X ≥ t)`` (Brier 1950) and its decomposition, all cells pooled:
    ``compute()`` gives ``{"brier" | "brier_reliability" | … : {threshold: value}, "n": pixels}``."""

    def __init__(self, thresholds: Sequence[float] = (1.0, 5.0, 10.0)):
        super().__init__(thresholds)

    def compute(self) -> dict:
        out: dict = {}
        for row in self.records():
            out.setdefault(row["metric"], {})[row["threshold"]] = row["value"]
        out["n"] = int(self.totals()[0, 0, :, 0].sum()) if self.counts else 0
        return out


def brier_terms(n: np.ndarray, n_obs: np.ndarray, prob: np.ndarray) -> dict[str, np.ndarray]:
    """Brier score and its Murphy (1973) decomposition from binned counts (last axis = bins).

    Parameters
    ----------
    n, n_obs : ndarray
        ``(..., K)`` pixels forecast ``prob[k]`` and, among them, those observed ``≥`` the threshold.
    prob : ndarray
        ``(K,)`` the forecast probability of each bin.

    Returns
    -------
    dict
        ``brier``, ``reliability``, ``resolution``, ``uncertainty`` (``brier = reliability −
        resolution + uncertainty`` exactly), ``forecast_frequency`` (mean probability),
        ``observed_frequency`` (ō) and ``n``; NaN where ``n = 0``.
    """
    n, o, p = np.asarray(n, np.float64), np.asarray(n_obs, np.float64), np.asarray(prob, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = n.sum(axis=-1)
        obar = o.sum(axis=-1) / total
        obar_k = np.where(n > 0, o / np.where(n > 0, n, 1.0), 0.0)
        return {
            "brier": (n * p**2 - 2.0 * p * o + o).sum(axis=-1) / total,  # Σ (p − 1[y ≥ t])², 1² = 1
            "reliability": (n * (p - obar_k) ** 2).sum(axis=-1) / total,
            "resolution": (n * (obar_k - obar[..., None]) ** 2).sum(axis=-1) / total,
            "uncertainty": obar * (1.0 - obar),
            "forecast_frequency": (n * p).sum(axis=-1) / total,
            "observed_frequency": obar,
            "n": total,
        }


def reliability_hourly(counts: Mapping[tuple[str, str], ReliabilityCounts]):
    """Long table of several ``(method, grid)``'s counts in the layout of the per-hour sums
    (:func:`precipdiff.verification.bootstrap.hourly_table`: ``method, grid, hour_key, stat, value``)
    plus ``cells``, ``threshold``, ``prob``; ``stat`` is ``rel_n`` or ``rel_obs``."""
    import pandas as pd

    parts = []
    for (method, grid), acc in counts.items():
        wide = acc.table()
        if len(wide):
            long = wide.melt(id_vars=["hour_key", "cells", "threshold", "prob"], value_vars=list(RELIABILITY_STATS),
                             var_name="stat", value_name="value")
            parts.append(long.assign(stat=long["stat"].map(RELIABILITY_STATS), method=method, grid=grid))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def reliability_sums(table, method: str, grid: str, cells: str, threshold: float, keys) -> dict | None:
    """``{"n", "n_obs": (N, K)}`` per-hour counts of one ``(method, grid, cells, threshold)`` for the
    hours ``keys`` (in that order) and ``prob`` (K,), from :func:`reliability_hourly` rows; None if
    the method lacks one of the hours."""
    rows = table[(table["method"] == method) & (table["grid"] == grid) & (table["cells"] == cells)
                 & np.isclose(table["threshold"].astype(float), threshold)]
    keys = np.asarray(keys, dtype=np.int64)
    out = {}
    for name, stat in RELIABILITY_STATS.items():
        wide = rows[rows["stat"] == stat].pivot_table(index="hour_key", columns="prob", values="value", aggfunc="sum")
        if wide.empty or not np.isin(keys, wide.index).all():
            return None
        out[name] = wide.loc[keys].to_numpy(np.float64)
        out["prob"] = np.asarray(wide.columns, dtype=np.float64)
    return out
