"""``pandas.ParquetDataset`` with atomic local saves (issue #13: no half-written Parquet after an interrupt).

The frame is written to ``<name>.tmp-<pid>`` beside the target and moved into place
(:func:`precipdiff.atomic.atomic_write`), so a failed, interrupted or killed run never leaves a
truncated ``.parquet`` that a re-run would load; Ctrl-C during the write is held back until it is
over. Remote protocols keep kedro-datasets' behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.pandas import ParquetDataset as _Base

from precipdiff.atomic import atomic_write


class ParquetDataset(_Base):
    """``kedro_datasets.pandas.ParquetDataset`` whose local saves are atomic."""

    def save(self, data: pd.DataFrame) -> None:
        if self._protocol != "file" or "partition_cols" in self._save_args:
            return super().save(data)
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        if target.is_dir():
            raise DatasetError(f"{target}: is a directory; expected a Parquet file path")
        atomic_write(target, lambda tmp: data.to_parquet(tmp, **self._save_args))
        self._invalidate_cache()
