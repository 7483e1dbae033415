"""The tidy score table: columns, dtypes, NaN defaults, helpful errors."""

import numpy as np
import pandas as pd
import pytest

from precipdiff.verification import COLUMNS, tidy


def test_tidy_columns_and_defaults(tmp_path):
    rows = [
        {"metric": "rmse", "value": 1.5},
        {"metric": "fss", "threshold": 1, "scale": 5, "value": 0.7},
    ]
    df = tidy(rows, method="qm", stage="test")
    assert list(df.columns) == list(COLUMNS)
    assert df["threshold"].isna().tolist() == [True, False] and df.loc[1, "scale"] == 5.0
    assert df.dtypes["value"] == np.float64 and (df["method"] == "qm").all()
    df.to_parquet(tmp_path / "scores.parquet")  # the evaluation pipeline writes Parquet
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "scores.parquet"), df, check_dtype=False
    )


def test_tidy_row_overrides_constant_and_errors():
    df = tidy([{"metric": "crps", "value": 0.1, "method": "rainfarm"}], method="qm", stage="val")
    assert df.loc[0, "method"] == "rainfarm"
    with pytest.raises(ValueError, match=r"record 0 .* misses \['stage'\]"):
        tidy([{"metric": "crps", "value": 0.1}], method="qm")
    with pytest.raises(ValueError, match="unknown"):
        tidy([{"metric": "crps", "value": 0.1, "lead": 3}], method="qm", stage="val")
