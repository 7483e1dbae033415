"""Which verification scores each method gets, streamed chunk by chunk (plain numpy, no Kedro).

One :class:`MethodScores` per (method, grid) bundles the accumulators of
:mod:`precipdiff.verification`; ``accum(fcst, obs)`` takes a chunk of hours, ``records()`` gives
the rows of the tidy table (``method``/``grid`` are added by the caller).

* deterministic ``fcst`` (T, H, W): RMSE/MAE/bias/ratio of totals/correlation, CRPS (= MAE: a point
  forecast is a one-point distribution, so the fair correction does not apply and
  ``crps_fair = crps = mae``), POD/FAR/CSI, FSS, intensity-bin errors, and at 1 km the mean
  RAPSD and the seam ratio at 10 km block borders;
* ensemble ``fcst`` (T, M, H, W): the continuous scores of the **ensemble mean**; CRPS standard and
  fair (Ferro 2014, the headline), spread-skill ratio (Fortin et al. 2014), rank histogram; the
  contingency table, intensity-bin errors, RAPSD and seams of the **members pooled** (each member
  is a plausible field); FSS of the ensemble mean, of the members (averaged) and of the
  neighbourhood ensemble probability (Duc et al. 2013).

An ensemble of one member (a regression chain) is scored as deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precipdiff import verification as v
from precipdiff.data.transforms import clip_runaway


@dataclass(frozen=True)
class ScoreConfig:
    """Thresholds (mm/h), FSS neighbourhood widths (pixels of the grid) and the rest."""

    thresholds_mm_h: tuple[float, ...] = (1.0, 5.0, 10.0)
    fss_scales_px: tuple[int, ...] = (1, 5, 11, 21, 41)
    intensity_bins_mm_h: tuple[float, ...] = (0.0, 0.1, 1.0, 5.0, 10.0, 20.0, np.inf)
    pixel_km: float = 1.0
    spectra: bool = True  # RAPSD + seams (the 1 km grid); off on the 0.1° grid (20 × 20 cells)
    seam_block_px: int = 10
    rank_seed: int = 0
    max_rate_mm_h: float = 300.0  # forecasts are clipped here (the QC limit of the observations)
    probability_thresholds_mm_h: tuple[float, ...] = ()  # Brier / reliability of P(R ≥ t) (the product's)
    satellite_dry_mm_h: float = 0.1  # a cell is satellite-dry below this rate (cell strata of the Brier score)

    @classmethod
    def from_params(cls, scores: dict, grid: str) -> "ScoreConfig":
        """From ``evaluation.scores`` and a grid (``fine`` = 0.01°, ``coarse`` = 0.1°); the Brier
        scores (``scores.probability``) on the fine grid only, where the product writes probabilities."""
        fine = grid == "fine"
        prob = scores.get("probability") or {}
        return cls(probability_thresholds_mm_h=tuple(float(t) for t in prob.get("thresholds_mm_h", ())) if fine else (),
                   satellite_dry_mm_h=float(prob.get("satellite_dry_mm_h", 0.1)),
                   thresholds_mm_h=tuple(float(t) for t in scores["thresholds_mm_h"]),
                   fss_scales_px=tuple(int(s) for s in scores["fss_scales_px"][grid]),
                   intensity_bins_mm_h=tuple(float(b) for b in scores["intensity_bins_mm_h"]),
                   pixel_km=float(scores["pixel_km"][grid]), spectra=fine,
                   seam_block_px=int(scores["seam_block_px"]), rank_seed=int(scores["rank_histogram_seed"]),
                   max_rate_mm_h=float(scores["max_rate_mm_h"]))


class MethodScores:
    """Streaming scores of one method at one grid; ``ensemble`` fixes which set (module doc)."""

    def __init__(self, ensemble: bool, cfg: ScoreConfig):
        self.ensemble, self.cfg = ensemble, cfg
        self.hourly = v.HourlyStats(cfg.pixel_km if cfg.spectra else None)
        thr, scales = cfg.thresholds_mm_h, cfg.fss_scales_px
        self.acc = {"continuous": v.ContinuousScores(), "contingency": v.ContingencyScores(thr),
                    "intensity": v.IntensityErrors(cfg.intensity_bins_mm_h)}
        if ensemble:
            self.acc.update(crps=v.CRPSScores(), spread=v.SpreadSkill(), rank=v.RankHistogram(cfg.rank_seed),
                            fss=v.EnsembleFSS(thr, scales))
        else:
            self.acc["fss"] = v.FSS(thr, scales)
        if cfg.spectra:
            self.acc.update(psd=v.MeanPSD(cfg.pixel_km), seams=v.SeamStatistic(cfg.seam_block_px))
        self.reliability = v.ReliabilityCounts(cfg.probability_thresholds_mm_h)
        self.n_values = self.n_clipped = 0

    def accum(self, fcst: np.ndarray, obs: np.ndarray, keys, sat: np.ndarray | None = None) -> None:
        """Add a chunk: ``fcst`` (T, H, W) or (T, M, H, W) as declared, ``obs`` (T, H, W), mm/h;
        ``keys`` (T,) the hours' ids (their per-hour sums feed the bootstrap intervals); ``sat``
        (T, h, w) the satellite input (mm/h) whose dry / wet cells stratify the Brier counts
        (none: no Brier counts, e.g. the downscaling-only block, which has no satellite).

        Forecast rates above ``max_rate_mm_h`` are clipped to it first and counted
        (``clipped_fraction``), so one diverging sample cannot turn every score into inf.
        """
        fcst = mask_missing(fcst, obs)
        self.n_values += int(np.isfinite(fcst).sum())
        fcst, clipped = clip_runaway(fcst, self.cfg.max_rate_mm_h)
        self.n_clipped += int(clipped.sum())
        self.hourly.accum(fcst, obs, keys)
        if sat is not None and self.cfg.probability_thresholds_mm_h:  # deterministic: 0/1 probabilities
            self.reliability.accum(fcst, obs, keys, v.cell_strata(sat, obs.shape[-2:], self.cfg.satellite_dry_mm_h))
        a = self.acc
        if self.ensemble:
            a["continuous"].accum(ensemble_mean(fcst), obs)
            for key in ("crps", "spread", "rank"):
                a[key].accum(fcst, obs)
        else:
            a["continuous"].accum(fcst, obs)
        for key in ("fss", "contingency", "intensity"):  # members pooled for an ensemble
            a[key].accum(fcst, obs)
        if self.cfg.spectra:
            a["psd"].accum(fcst)
            a["seams"].accum(fcst)

    def records(self) -> list[dict]:
        """Rows ``{metric, value[, threshold][, scale]}``; one ``n`` (valid pixels, continuous)."""
        rows = [{"metric": "clipped_fraction", "value": self.n_clipped / max(self.n_values, 1)}]
        rows += self.reliability.records("all")  # Brier score and decomposition, all cells
        for key, acc in self.acc.items():
            rows += [r for r in acc.records() if not (r["metric"] == "n" and key != "continuous")]
        if self.ensemble:  # EnsembleFSS leaves out the "useful" skill level 0.5 + f_o / 2
            rows += [{"metric": "fss_useful", "threshold": t, "value": u}
                     for t, u in self.acc["fss"].mean.compute()["fss_useful"].items()]
        else:  # CRPS of a point forecast = MAE (no finite-ensemble correction to make)
            mae = self.acc["continuous"].compute()["mae"]
            rows += [{"metric": "crps", "value": mae}, {"metric": "crps_fair", "value": mae}]
        return rows


def mask_missing(fcst: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``fcst`` (T, H, W) or (T, M, H, W) with NaN where the observation is missing (a radar gap), so
    every score sees the same cells: pixel scores skip them anyway, and a field with a gap is left
    out of the forecast's spectrum as it is of the radar's (``rapsd``, ``nan_policy="skip"``).
    Unchanged (no copy) when nothing is missing."""
    gap = ~np.isfinite(obs)
    if not gap.any():
        return fcst
    return np.where(gap[:, None] if fcst.ndim == 4 else gap, np.nan, fcst)


def as_forecast(fields: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(T, M, H, W)`` → itself and ``True``; a single member ``(T, 1, H, W)`` → ``(T, H, W)``, ``False``."""
    if fields.ndim == 4 and fields.shape[1] == 1:
        return fields[:, 0], False
    return fields, fields.ndim == 4


def ensemble_mean(ens: np.ndarray) -> np.ndarray:
    """Member mean ``(T, H, W)`` of ``(T, M, H, W)``; NaN where any member is NaN."""
    return np.where(np.isfinite(ens).all(axis=1), ens.mean(axis=1), np.nan)


class Scoreboard:
    """Every (method, grid) of an evaluation, filled chunk by chunk; ``table()`` is the tidy table.

    The observations themselves go through :meth:`add_reference` (method ``radar``: spectrum and seams only).
    :meth:`hourly` gives the per-hour sums of every method for the bootstrap intervals.
    """

    def __init__(self, configs: dict[str, ScoreConfig]):
        self.configs = configs
        self.scores: dict[tuple[str, str], MethodScores] = {}
        self.reference: dict[str, list] = {}
        self.hourly_reference: dict[str, v.HourlyStats] = {}

    def add(self, method: str, grid: str, fields: np.ndarray, obs: np.ndarray, keys, sat: np.ndarray | None = None) -> None:
        """Score ``fields`` (T, H, W), (T, 1, H, W) or (T, M, H, W) against ``obs`` (T, H, W), mm/h,
        of the hours ``keys`` (T,); ``sat`` (T, h, w, mm/h) stratifies the Brier counts by satellite-dry cells."""
        fcst, ensemble = as_forecast(fields)
        key = (method, grid)
        if key not in self.scores:
            self.scores[key] = MethodScores(ensemble, self.configs[grid])
        self.scores[key].accum(fcst, obs, keys, sat)

    def add_reference(self, grid: str, obs: np.ndarray, keys) -> None:
        """The observed fields' mean RAPSD (the denominator of the PSD ratios) and seam ratio (method
        ``radar``), and their per-hour spectra."""
        cfg = self.configs[grid]
        if cfg.spectra:
            ref = self.reference.setdefault(grid, [v.MeanPSD(cfg.pixel_km), v.SeamStatistic(cfg.seam_block_px)])
            for acc in ref:
                acc.accum(obs)
            self.hourly_reference.setdefault(grid, v.HourlyStats(cfg.pixel_km)).accum(obs, obs, keys)

    def table(self):
        """Tidy DataFrame (method, grid, metric, threshold, scale, value)."""
        import pandas as pd

        parts = [v.tidy(s.records(), method=m, grid=st) for (m, st), s in self.scores.items()]
        parts += [v.tidy(a.records(), method="radar", grid=st) for st, ref in self.reference.items() for a in ref]
        return pd.concat(parts, ignore_index=True) if parts else v.tidy([])

    def hourly(self):
        """Per-hour sums of every (method, grid): :func:`precipdiff.verification.hourly_table`."""
        import pandas as pd

        stats = {key: s.hourly for key, s in self.scores.items()}
        stats.update({("radar", st): h for st, h in self.hourly_reference.items()})
        counts = v.reliability_hourly({key: s.reliability for key, s in self.scores.items()})
        return pd.concat([v.hourly_table(stats), counts], ignore_index=True) if len(counts) else v.hourly_table(stats)
