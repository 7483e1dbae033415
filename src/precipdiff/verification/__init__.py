"""Verification scores for precipitation fields and ensembles (plain numpy/scipy).

Conventions: ``obs`` (T, H, W), deterministic ``fcst`` (T, H, W), ``ens`` (T, M, H, W), rates in
mm/h, NaN = missing and excluded everywhere. Scores over big test sets are streamed:
``acc = Score(...)``; ``acc.accum(fcst, obs)`` per chunk; ``acc.compute()`` -> dict;
``acc.records()`` -> rows for :func:`tidy`.

=====================  ===================================================================
module                 contents
=====================  ===================================================================
``continuous``         RMSE, MAE, bias, ratio of totals, correlation
``probabilistic``      CRPS (standard, fair), spread-skill, rank histogram, exceedance probability
``reliability``        Brier score, its Murphy (1973) decomposition, reliability diagrams (per hour, per cell stratum)
``categorical``        POD/FAR/CSI/frequency bias; FSS (deterministic and ensemble)
``spectral``           RAPSD of batches, PSD ratio, ratio at small scales, slope
``intensity``          count / bias / RMSE per observed-intensity bin
``artefacts``          seam ratio at block borders, over-smoothing flag
``tables``             tidy score table (method, grid, metric, threshold, scale, value), row specs
``bootstrap``          per-hour sums and hour-block bootstrap confidence intervals
=====================  ===================================================================
"""

from precipdiff.verification.artefacts import SeamStatistic, oversmoothing_flag, seam_ratio
from precipdiff.verification.bootstrap import (
    HourlyStats,
    block_weights,
    bootstrap,
    hourly_sums,
    hourly_table,
    percentile_interval,
)
from precipdiff.verification.categorical import FSS, ContingencyScores, EnsembleFSS, fss
from precipdiff.verification.continuous import (
    ContinuousScores,
    bias,
    correlation,
    mae,
    ratio_of_totals,
    rmse,
    valid_pairs,
)
from precipdiff.verification.intensity import IntensityErrors
from precipdiff.verification.probabilistic import (
    CRPSScores,
    RankHistogram,
    SpreadSkill,
    crps_ensemble,
    exceedance_probability,
)
from precipdiff.verification.reliability import (
    BrierScores,
    ReliabilityCounts,
    brier_terms,
    cell_strata,
    reliability_hourly,
    reliability_sums,
)
from precipdiff.verification.spectral import (
    RAPSD,
    MeanPSD,
    psd_ratio,
    psd_ratio_at,
    psd_slope,
    rapsd,
)
from precipdiff.verification.tables import COLUMNS, select, tidy

__all__ = [
    "BrierScores",
    "COLUMNS",
    "CRPSScores",
    "ContingencyScores",
    "ContinuousScores",
    "EnsembleFSS",
    "FSS",
    "HourlyStats",
    "IntensityErrors",
    "MeanPSD",
    "RAPSD",
    "RankHistogram",
    "ReliabilityCounts",
    "SeamStatistic",
    "SpreadSkill",
    "bias",
    "block_weights",
    "brier_terms",
    "cell_strata",
    "bootstrap",
    "correlation",
    "crps_ensemble",
    "exceedance_probability",
    "fss",
    "hourly_sums",
    "hourly_table",
    "mae",
    "oversmoothing_flag",
    "percentile_interval",
    "psd_ratio",
    "psd_ratio_at",
    "psd_slope",
    "rapsd",
    "ratio_of_totals",
    "reliability_hourly",
    "reliability_sums",
    "rmse",
    "seam_ratio",
    "select",
    "tidy",
    "valid_pairs",
]
