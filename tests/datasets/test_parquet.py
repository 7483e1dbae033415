"""ParquetDataset: atomic local saves (a failed write keeps the previous file and leaves no temporary file)."""

import pandas as pd
import pytest

from precipdiff.datasets import ParquetDataset


def test_save_round_trips_and_leaves_no_tmp(tmp_path):
    path = tmp_path / "sub" / "table.parquet"
    ds = ParquetDataset(filepath=str(path))
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    ds.save(frame)
    pd.testing.assert_frame_equal(ds.load(), frame)
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.parquet"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "table.parquet"
    ds = ParquetDataset(filepath=str(path))
    ds.save(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(Exception):  # pyarrow cannot write a column of arbitrary objects
        ds.save(pd.DataFrame({"a": [object(), object()]}))
    pd.testing.assert_frame_equal(ds.load(), pd.DataFrame({"a": [1, 2]}))
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]  # no table.parquet.tmp-<pid>
