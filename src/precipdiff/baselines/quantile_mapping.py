"""Empirical quantile mapping (QM) of satellite rates onto the radar distribution.

Why our own ~40 lines: python-cmethods, xclim (``sdba``) and ibicus all do QM, but none is in
the environment, they pull in xarray/dask-heavy stacks and time-grouping conventions built for
daily climate series, and we need one stationary mapping of pooled pixels that we can test
exactly. The method is the classic one (Panofsky & Brier 1968; Gudmundsson et al. 2012):

    y = F_radar^-1( F_sat(x) )

with the CDFs estimated on ``n_quantiles`` probability levels spread over the *wet* part of the
satellite distribution, linear interpolation between them, and three precipitation rules:

* dry stays dry: x < ``wet_threshold`` maps to 0;
* drizzle is removed: where the satellite has more wet pixels than the radar, the low satellite
  levels line up with radar zeros and map to 0; any mapped value below ``wet_threshold`` is set to
  0, so the output has the radar's wet fraction (a satellite that misses rain cannot be fixed);
* top tail: above the largest training satellite value x_max the mapping continues with the
  constant ratio y = x * y_max / x_max ("constant correction" of the last quantile, Boé et al.
  2007, in multiplicative form because rate errors scale with rate; an additive shift would
  let the correction dominate for the largest rates). It is continuous and monotone; the ratio
  rests on the training maxima, so it is noisy for small training sets.

Fit on the training split only (the caller's responsibility); inputs are arrays of any shape in
mm/h, NaN ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuantileMapping"]


@dataclass
class QuantileMapping:
    """Fitted empirical quantile mapping; build with :meth:`fit`, use with :meth:`apply`.

    Attributes
    ----------
    sat_knots, radar_knots : ndarray
        Matching quantiles (mm/h), ``sat_knots`` strictly increasing.
    wet_threshold : float
        Rates below this (mm/h) count as dry.
    tail_ratio : float
        y / x applied above ``sat_knots[-1]``.
    """

    sat_knots: np.ndarray
    radar_knots: np.ndarray
    wet_threshold: float
    tail_ratio: float

    @classmethod
    def fit(
        cls, sat, radar, n_quantiles: int = 100, wet_threshold: float = 0.1
    ) -> "QuantileMapping":
        """Fit on training samples of satellite and radar rates (mm/h, any shapes, NaN ignored).

        Parameters
        ----------
        sat, radar : array_like
            Training rates; the two need not be paired or of equal size (only the marginal
            distributions are used), but should cover the same times and area.
        n_quantiles : int
            Number of probability levels on the wet part of the satellite distribution.
        wet_threshold : float
            Dry/wet threshold in mm/h.
        """
        s = _finite(sat, "sat")
        r = _finite(radar, "radar")
        r = np.where(r < wet_threshold, 0.0, r)  # radar drizzle counts as dry
        p_dry = np.mean(s < wet_threshold)
        if p_dry == 1.0:
            raise ValueError(
                f"QuantileMapping.fit: no satellite rate >= wet_threshold={wet_threshold}"
            )
        levels = p_dry + (1.0 - p_dry) * np.linspace(0.0, 1.0, int(n_quantiles))
        sq, rq = np.quantile(s, levels), np.quantile(r, levels)
        sq, first = np.unique(sq, return_index=True)  # ties in sat: keep one knot per value
        rq = np.maximum.accumulate(rq[first])
        tail = rq[-1] / sq[-1] if sq[-1] > 0 else 1.0
        return cls(sq, rq, float(wet_threshold), float(tail))

    def apply(self, x) -> np.ndarray:
        """Map satellite rates ``x`` (mm/h, any shape) to radar-like rates; NaN stays NaN."""
        x = np.asarray(x, dtype=np.float64)
        y = np.interp(x, self.sat_knots, self.radar_knots)
        y = np.where(x > self.sat_knots[-1], x * self.tail_ratio, y)  # Boé et al. (2007) tail
        y = np.where((x < self.wet_threshold) | (y < self.wet_threshold), 0.0, y)
        return np.where(np.isnan(x), np.nan, y)

    def to_dict(self) -> dict:
        """JSON-able parameters (for a catalog entry); inverse of :meth:`from_dict`."""
        return {"sat_knots": self.sat_knots.tolist(), "radar_knots": self.radar_knots.tolist(),
                "wet_threshold": self.wet_threshold, "tail_ratio": self.tail_ratio}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> "QuantileMapping":
        """Rebuild from :meth:`to_dict` output."""
        return cls(np.asarray(d["sat_knots"], dtype=np.float64),
                   np.asarray(d["radar_knots"], dtype=np.float64),
                   float(d["wet_threshold"]), float(d["tail_ratio"]))  # fmt: skip


def _finite(a, name: str) -> np.ndarray:
    v = np.asarray(a, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError(f"QuantileMapping.fit: {name} has no finite value")
    return v
