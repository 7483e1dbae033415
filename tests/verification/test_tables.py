"""The tidy score table: columns, dtypes, NaN defaults, helpful errors."""

import numpy as np
import pandas as pd
import pytest

from precipdiff.verification import COLUMNS, select, tidy


def test_tidy_columns_and_defaults(tmp_path):
    rows = [
        {"metric": "rmse", "value": 1.5},
        {"metric": "fss", "threshold": 1, "scale": 5, "value": 0.7},
    ]
    df = tidy(rows, method="qm", grid="test")
    assert list(df.columns) == list(COLUMNS)
    assert df["threshold"].isna().tolist() == [True, False] and df.loc[1, "scale"] == 5.0
    assert df.dtypes["value"] == np.float64 and (df["method"] == "qm").all()
    df.to_parquet(tmp_path / "scores.parquet")  # the evaluation pipeline writes Parquet
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "scores.parquet"), df, check_dtype=False
    )


def test_tidy_row_overrides_constant_and_errors():
    df = tidy([{"metric": "crps", "value": 0.1, "method": "rainfarm"}], method="qm", grid="val")
    assert df.loc[0, "method"] == "rainfarm"
    with pytest.raises(ValueError, match=r"record 0 .* misses \['grid'\]"):
        tidy([{"metric": "crps", "value": 0.1}], method="qm")
    with pytest.raises(ValueError, match="unknown"):
        tidy([{"metric": "crps", "value": 0.1, "lead": 3}], method="qm", grid="val")


def test_select_rows_by_spec_and_refuse_unknown_keys():
    df = tidy([{"method": "m", "grid": "fine", "metric": "csi", "threshold": 5.0, "value": 0.3},
               {"method": "m", "grid": "fine", "metric": "csi", "threshold": 1.0, "value": 0.5},
               {"method": "m", "grid": "coarse", "metric": "csi", "threshold": 5.0, "value": 0.4}])
    assert df[select(df, {"metric": "csi", "threshold": 5})]["value"].tolist() == [0.3]  # grid fine unless given
    assert df[select(df, {"metric": "csi", "grid": "coarse"})]["value"].tolist() == [0.4]
    with pytest.raises(ValueError, match=r"evaluation.headline: .* unknown key\(s\) \['stage'\]; expected some of "
                                         r"\['metric', 'grid', 'threshold', 'scale'\]"):
        select(df, {"metric": "csi", "stage": "coarse"}, "evaluation.headline")
