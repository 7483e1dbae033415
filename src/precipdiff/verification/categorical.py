"""Categorical scores at rate thresholds: contingency table (POD, FAR, CSI, frequency bias) and the
fractions skill score (FSS) at neighbourhood sizes, for deterministic forecasts and ensembles.

An event is ``rate >= threshold`` (mm/h), as in pysteps. Pixels where the observation or the
forecast is NaN are excluded. Everything accumulates sums, so chunks of a test set can be streamed
through ``accum`` and ``compute`` equals one call on the whole set.

Array conventions: ``obs`` (T, H, W), ``fcst`` (T, H, W), ``ens`` (T, M, H, W), all mm/h.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from precipdiff.verification.continuous import valid_pairs

__all__ = ["ContingencyScores", "FSS", "EnsembleFSS", "fss"]

DEFAULT_THRESHOLDS = (1.0, 5.0, 10.0)  # mm/h
DEFAULT_SCALES = (1, 3, 5, 9, 17, 33)  # neighbourhood width, pixels


class ContingencyScores:
    """Streaming 2x2 contingency table at each threshold and the scores derived from it.

    POD = H/(H+M), FAR = F/(H+F), CSI = H/(H+M+F), frequency bias = (H+F)/(H+M), with H hits,
    M misses, F false alarms (Jolliffe & Stephenson 2012, ch. 3); 0/0 gives NaN (e.g. POD with no
    observed event) and x/0 gives inf (frequency bias with false alarms but no observed event).
    ``fcst`` may be (T, M, H, W): members then count as independent forecasts (pooled table).

    Parameters
    ----------
    thresholds : sequence of float
        Rate thresholds in mm/h.
    """

    def __init__(self, thresholds=DEFAULT_THRESHOLDS):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        # rows: hits, misses, false alarms, correct negatives; columns: thresholds
        self.table = np.zeros((4, self.thresholds.size), dtype=np.int64)

    def accum(self, fcst, obs) -> None:
        """Add the valid pairs of one chunk to the table."""
        f, o = valid_pairs(fcst, obs)
        fe = f[None, :] >= self.thresholds[:, None]  # (n_thr, n)
        oe = o[None, :] >= self.thresholds[:, None]
        self.table[0] += (fe & oe).sum(axis=1)
        self.table[1] += (~fe & oe).sum(axis=1)
        self.table[2] += (fe & ~oe).sum(axis=1)
        self.table[3] += (~fe & ~oe).sum(axis=1)

    def compute(self) -> dict[str, dict[float, float]]:
        """Each of ``hits misses false_alarms correct_negatives pod far csi fbias`` as
        {threshold (mm/h): value}."""
        h, m, f, c = self.table.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = {
                "hits": h, "misses": m, "false_alarms": f, "correct_negatives": c,
                "pod": h / (h + m), "far": f / (h + f),
                "csi": h / (h + m + f), "fbias": (h + f) / (h + m),
            }  # fmt: skip
        thr = self.thresholds.tolist()
        return {k: dict(zip(thr, v.tolist())) for k, v in scores.items()}

    def records(self) -> list[dict]:
        """Rows with ``threshold`` for :func:`precipdiff.verification.tables.tidy`."""
        return [
            {"metric": k, "threshold": t, "value": v}
            for k, by_thr in self.compute().items()
            for t, v in by_thr.items()
        ]


def _fractions(
    events: np.ndarray, valid: np.ndarray, window_valid: np.ndarray, n: int
) -> np.ndarray:
    """Fraction of valid pixels with an event in the n x n window centred on each valid pixel.

    ``events`` (T, ..., H, W) is 1 for events at valid pixels, else 0; ``window_valid`` is the
    same filter applied to the valid mask. Dividing by it counts only in-domain, valid pixels
    (the MET convention), so edges and NaN holes do not dilute the fractions. Invalid pixels get
    0, so they drop out of the FSS sums. float32 is enough: scipy filters in double internally.
    """
    if n == 1:
        return events
    size = (1,) * (events.ndim - 2) + (n, n)
    num = uniform_filter(events, size=size, mode="constant", cval=0.0)
    np.divide(num, window_valid, out=num, where=valid)
    num *= valid
    return num


def _fss_sums(pf, po) -> tuple[np.ndarray, np.ndarray]:
    """sum (Pf - Po)^2 and sum Pf^2 + Po^2 (Roberts & Lean 2008) over all but the member axis.

    ``pf`` is (T, H, W) or (T, M, H, W) with ``po`` (T, H, W); invalid pixels are 0 in both.
    """
    t, h, w = po.shape
    pf = pf.reshape(t, -1, h * w)  # (T, M or 1, HW)
    po = po.reshape(t, 1, h * w)
    d = pf - po
    kw = {"dtype": np.float64, "casting": "safe"}  # float32 fractions, float64 sums
    num = np.einsum("tmk,tmk->m", d, d, **kw)
    den = np.einsum("tmk,tmk->m", pf, pf, **kw) + np.einsum("tmk,tmk->", po, po, **kw)
    return num, den


class FSS:
    """Streaming fractions skill score (Roberts & Lean 2008) of a deterministic forecast.

    FSS = 1 - sum (Pf - Po)^2 / (sum Pf^2 + sum Po^2), sums over all valid pixels of all fields,
    with P the fraction of events in the n x n neighbourhood of a pixel. Also returns the
    "useful" skill level 0.5 + f_o / 2 (f_o the observed base rate, Roberts & Lean 2008).

    Parameters
    ----------
    thresholds : sequence of float
        Rate thresholds in mm/h.
    scales : sequence of int
        Neighbourhood widths in pixels (odd widths are centred; 1 = pixel scale).
    """

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, scales=DEFAULT_SCALES):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.scales = [int(s) for s in scales]
        if min(self.scales) < 1:
            raise ValueError(f"FSS scales must be >= 1 pixel; got {self.scales}")
        shape = (self.thresholds.size, len(self.scales))
        self.num, self.den = np.zeros(shape), np.zeros(shape)
        self.n_valid, self.n_obs_events = 0, np.zeros(self.thresholds.size)

    def accum(self, fcst, obs) -> None:
        """Add one chunk: ``fcst`` and ``obs`` of shape (T, H, W) (a single field (H, W) is ok)."""
        f, o = _fields(fcst), _fields(obs)
        if f.shape != o.shape:
            raise ValueError(f"FSS: fcst shape {f.shape} != obs shape {o.shape}")
        valid = np.isfinite(f) & np.isfinite(o)
        self.n_valid += int(valid.sum())
        for j, n in enumerate(self.scales):
            window = uniform_filter(valid.astype(np.float32), (1, n, n), mode="constant")
            for i, thr in enumerate(self.thresholds):
                pf = _fractions(((f >= thr) & valid).astype(np.float32), valid, window, n)
                po = _fractions(((o >= thr) & valid).astype(np.float32), valid, window, n)
                num, den = _fss_sums(pf, po)
                self.num[i, j] += num[0]
                self.den[i, j] += den[0]
        self.n_obs_events += [((o >= thr) & valid).sum() for thr in self.thresholds]

    def compute(self) -> dict:
        """``fss`` {(threshold mm/h, scale px): value} (NaN if no event in either field) and
        ``fss_useful`` {threshold: 0.5 + f_o/2}."""
        with np.errstate(invalid="ignore", divide="ignore"):
            fss = 1.0 - self.num / self.den
            useful = 0.5 + self.n_obs_events / self.n_valid / 2.0
        return {"fss": _by_thr_scale(fss, self.thresholds, self.scales),
                "fss_useful": dict(zip(self.thresholds.tolist(), useful.tolist()))}  # fmt: skip

    def records(self) -> list[dict]:
        """Rows ``fss`` (threshold, scale) and ``fss_useful`` (threshold) for :func:`tidy`."""
        out = self.compute()
        return _records(out["fss"], "fss") + [
            {"metric": "fss_useful", "threshold": t, "value": v}
            for t, v in out["fss_useful"].items()
        ]


def _fields(a) -> np.ndarray:
    """(H, W) -> (1, H, W); (T, H, W) unchanged."""
    a = np.asarray(a)
    return a[None] if a.ndim == 2 else a


def _by_thr_scale(values: np.ndarray, thresholds, scales) -> dict:
    return {
        (float(t), int(s)): float(values[i, j])
        for i, t in enumerate(thresholds)
        for j, s in enumerate(scales)
    }


def _records(by_key: dict, metric: str) -> list[dict]:
    return [
        {"metric": metric, "threshold": t, "scale": s, "value": v} for (t, s), v in by_key.items()
    ]


class EnsembleFSS:
    """Streaming FSS of an ensemble, three ways at once.

    ``fss_ens_mean``: FSS of the ensemble-mean field (which smooths out intensity, so it favours
    low thresholds); ``fss_members``: FSS of each member (its own sums over the test set), averaged
    over members; ``fss_prob``: the ensemble FSS of Duc et al. (2013) where Pf is the neighbourhood
    fraction averaged over members (neighbourhood ensemble probability).

    Parameters
    ----------
    thresholds, scales
        As in :class:`FSS`.
    """

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, scales=DEFAULT_SCALES):
        self.mean = FSS(thresholds, scales)
        self.thresholds, self.scales = self.mean.thresholds, self.mean.scales
        self.num_m = self.den_m = None  # (n_thr, n_scale, M)
        shape = (self.thresholds.size, len(self.scales))
        self.num_p, self.den_p = np.zeros(shape), np.zeros(shape)

    def accum(self, ens, obs) -> None:
        """Add one chunk: ``ens`` (T, M, H, W), ``obs`` (T, H, W)."""
        x, o = np.asarray(ens), np.asarray(obs)
        if x.ndim != 4 or x.shape[:1] + x.shape[2:] != o.shape:
            raise ValueError(
                f"EnsembleFSS: ens shape {x.shape} is not (T, M, H, W) of obs {o.shape}"
            )
        valid = np.isfinite(o) & np.isfinite(x).all(axis=1)
        self.mean.accum(np.where(valid, x.mean(axis=1), np.nan), o)
        if self.num_m is None:
            self.num_m = np.zeros((self.thresholds.size, len(self.scales), x.shape[1]))
            self.den_m = np.zeros_like(self.num_m)
        for j, n in enumerate(self.scales):
            window = uniform_filter(valid.astype(np.float32), (1, n, n), mode="constant")
            for i, thr in enumerate(self.thresholds):
                po = _fractions(((o >= thr) & valid).astype(np.float32), valid, window, n)
                ev = ((x >= thr) & valid[:, None]).astype(np.float32)
                pf = _fractions(ev, valid[:, None], window[:, None], n)  # (T, M, H, W)
                num, den = _fss_sums(pf, po)
                self.num_m[i, j] += num
                self.den_m[i, j] += den
                num, den = _fss_sums(pf.mean(axis=1), po)
                self.num_p[i, j] += num[0]
                self.den_p[i, j] += den[0]

    def compute(self) -> dict:
        """``fss_ens_mean``, ``fss_members``, ``fss_prob``: {(threshold mm/h, scale px): value}."""
        if self.num_m is None:  # nothing accumulated yet
            self.num_m = self.den_m = np.zeros((self.thresholds.size, len(self.scales), 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            members = (1.0 - self.num_m / self.den_m).mean(axis=-1)
            prob = 1.0 - self.num_p / self.den_p
        return {
            "fss_ens_mean": self.mean.compute()["fss"],
            "fss_members": _by_thr_scale(members, self.thresholds, self.scales),
            "fss_prob": _by_thr_scale(prob, self.thresholds, self.scales),
        }

    def records(self) -> list[dict]:
        """Rows (threshold, scale) for :func:`precipdiff.verification.tables.tidy`."""
        return [row for k, v in self.compute().items() for row in _records(v, k)]


def fss(fcst, obs, threshold: float, scale: int) -> float:
    """FSS of ``fcst`` vs ``obs`` (T, H, W) or (H, W) at one threshold (mm/h) and width (px)."""
    acc = FSS([threshold], [scale])
    acc.accum(fcst, obs)
    return acc.compute()["fss"][(float(threshold), int(scale))]
