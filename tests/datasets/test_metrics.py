"""Run metrics in kedro-mlflow's metric-history format, built in one place."""

import numpy as np

from precipdiff.datasets.metrics import metric_history, metric_series


def test_one_point_per_metric_and_non_finite_values_left_out():
    out = metric_history({"a": np.float32(0.5), "b": 3, "c": np.nan, "d": np.inf})
    assert out == {"a": [{"value": 0.5, "step": 0}], "b": [{"value": 3.0, "step": 0}]}
    assert all(type(p["value"]) is float and type(p["step"]) is int for p in out["a"] + out["b"])
    assert metric_history({"a": 1.0}, step=4) == {"a": [{"value": 1.0, "step": 4}]}


def test_a_series_keeps_its_steps():
    assert metric_series([1.0, np.nan, 0.25], np.array([0, 1, 2])) == [{"value": 1.0, "step": 0},
                                                                        {"value": 0.25, "step": 2}]
