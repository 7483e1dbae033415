"""One tidy table for every score: columns method, grid, metric, threshold, scale, value.

Every accumulator in :mod:`precipdiff.verification` has ``records()`` returning rows
``{"metric", "value"[, "threshold"][, "scale"]}``; the evaluation pipeline adds ``method`` and
``grid`` and concatenates the tables before writing Parquet.

Column meanings: ``grid`` is where a method is scored, named by the caller (the evaluation:
``fine`` = 0.01°, ``coarse`` = 0.1°, ``downscaling_only`` for its block, ``cost`` for timings);
``threshold`` is a rate in mm/h (event threshold, or the lower edge of an
intensity bin); ``scale`` is a length whose unit the metric fixes: FSS neighbourhood width and
seam block size in pixels, PSD wavelength in km. Both are NaN where not applicable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "SPEC_KEYS", "select", "tidy"]

COLUMNS = ("method", "grid", "metric", "threshold", "scale", "value")
_REQUIRED = ("method", "grid", "metric", "value")
SPEC_KEYS = ("metric", "grid", "threshold", "scale")  # a row spec such as {metric: csi, threshold: 5.0}


def tidy(records: Iterable[Mapping], **constants) -> pd.DataFrame:
    """Build the tidy score table.

    Parameters
    ----------
    records : iterable of mapping
        Rows with keys ``metric`` and ``value``, optional ``threshold`` and ``scale``, and
        ``method``/``grid`` unless given in ``constants``.
    **constants
        Values for columns missing from the rows, e.g. ``method="qm", grid="test"``; a key
        present in a row wins over the constant.

    Returns
    -------
    pandas.DataFrame
        Columns ``COLUMNS``: method, grid, metric (str); threshold, scale, value (float64).
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
    for col in ("method", "grid", "metric"):
        df[col] = df[col].astype(str)
    for col in ("threshold", "scale", "value"):
        df[col] = pd.to_numeric(df[col], errors="raise").astype(np.float64)
    return df


def select(table: pd.DataFrame, spec: Mapping, where: str = "spec") -> pd.Series:
    """Rows of ``table`` matching ``spec`` (``metric``; ``grid``, ``fine`` unless given; ``threshold``
    and ``scale`` when given, compared with ``np.isclose``), as a boolean mask.

    Raises ``ValueError`` naming ``where`` for a key other than :data:`SPEC_KEYS` (e.g. the former
    ``stage``, now ``grid``).
    """
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: {dict(spec)} has unknown key(s) {unknown}; expected some of {list(SPEC_KEYS)}")
    sel = (table["metric"] == spec["metric"]) & (table["grid"] == spec.get("grid", "fine"))
    for key in ("threshold", "scale"):
        if key in spec:
            sel &= np.isclose(table[key].astype(float), float(spec[key]))
    return sel
