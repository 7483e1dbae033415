"""One tidy table for every score: columns method, stage, metric, threshold, scale, value.

Every accumulator in :mod:`precipdiff.verification` has ``records()`` returning rows
``{"metric", "value"[, "threshold"][, "scale"]}``; the evaluation pipeline adds ``method`` and
``stage`` and concatenates the tables before writing Parquet.

Column meanings: ``threshold`` is a rate in mm/h (event threshold, or the lower edge of an
intensity bin); ``scale`` is a length whose unit the metric fixes: FSS neighbourhood width and
seam block size in pixels, PSD wavelength in km. Both are NaN where not applicable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "tidy"]

COLUMNS = ("method", "stage", "metric", "threshold", "scale", "value")
_REQUIRED = ("method", "stage", "metric", "value")


def tidy(records: Iterable[Mapping], **constants) -> pd.DataFrame:
    """Build the tidy score table.

    Parameters
    ----------
    records : iterable of mapping
        Rows with keys ``metric`` and ``value``, optional ``threshold`` and ``scale``, and
        ``method``/``stage`` unless given in ``constants``.
    **constants
        Values for columns missing from the rows, e.g. ``method="qm", stage="test"``; a key
        present in a row wins over the constant.

    Returns
    -------
    pandas.DataFrame
        Columns ``COLUMNS``: method, stage, metric (str); threshold, scale, value (float64).
    """
    unknown = set(constants) - set(COLUMNS)
    if unknown:
        raise ValueError(f"tidy: unknown constant column(s) {sorted(unknown)}; allowed {COLUMNS}")
    rows = []
    for i, rec in enumerate(records):
        row = {"threshold": np.nan, "scale": np.nan, **constants, **rec}
        missing = [k for k in _REQUIRED if k not in row]
        extra = set(row) - set(COLUMNS)
        if missing or extra:
            raise ValueError(
                f"tidy: record {i} {dict(rec)} misses {missing} / has unknown keys {sorted(extra)}"
            )
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("method", "stage", "metric"):
        df[col] = df[col].astype(str)
    for col in ("threshold", "scale", "value"):
        df[col] = pd.to_numeric(df[col], errors="raise").astype(np.float64)
    return df
