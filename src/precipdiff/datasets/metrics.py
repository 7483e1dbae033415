"""Run metrics in the format of kedro-mlflow's ``MlflowMetricsHistoryDataset``.

A node that logs metrics returns ``{name: [{"value": v, "step": s}, …]}`` and the catalog logs
them (``prefix`` in the catalog entry); these two functions are the only places that dict is built.
Non-finite values are left out: MLflow can neither plot nor compare them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def metric_series(values: Iterable[float], steps: Iterable[int]) -> list[dict]:
    """One metric's history ``[{"value", "step"}, …]`` (e.g. a loss per epoch), finite values only."""
    return [{"value": float(v), "step": int(s)} for v, s in zip(values, steps) if math.isfinite(float(v))]


def metric_history(values: Mapping[str, float], step: int = 0) -> dict[str, list[dict]]:
    """``{name: [{"value", "step"}]}``: one point per metric at ``step``; non-finite values left out."""
    out = {name: metric_series([value], [step]) for name, value in values.items()}
    return {name: series for name, series in out.items() if series}
