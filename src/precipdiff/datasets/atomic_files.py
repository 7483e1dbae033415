"""kedro-datasets' text, JSON, plotly JSON and CSV datasets with atomic local saves (issue #24).

The HTML report (``text.TextDataset``), the JSON reports (``json.JSONDataset``), the plotly
figures (``plotly.JSONDataset``) and the sampler-selection tables (``pandas.CSVDataset``) are written to ``<name>.tmp-<pid>`` beside the target with the
dataset's own open and save arguments, then moved into place (:func:`precipdiff.atomic.atomic_write`):
a failed, interrupted or killed run leaves the previous file or none, never half of one. Remote
protocols and versioned datasets keep kedro-datasets' behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.json import JSONDataset as _JSON
from kedro_datasets.pandas import CSVDataset as _CSV
from kedro_datasets.plotly import JSONDataset as _PlotlyJSON
from kedro_datasets.text import TextDataset as _Text

from precipdiff.atomic import atomic_write


class _AtomicSave:
    """Mixin: ``save`` writes through :func:`~precipdiff.atomic.atomic_write` (local, unversioned files)."""

    def _write(self, data: Any, file) -> None:  # the base dataset's write, on an open file
        raise NotImplementedError

    def save(self, data: Any) -> None:
        if self._protocol != "file" or self._version is not None:
            return super().save(data)
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        if target.is_dir():
            raise DatasetError(f"{target}: is a directory; expected a file path")

        def write(tmp: Path) -> None:
            with self._fs.open(str(tmp), **self._fs_open_args_save) as file:
                self._write(data, file)

        atomic_write(target, write)
        self._invalidate_cache()


class TextDataset(_AtomicSave, _Text):
    """``kedro_datasets.text.TextDataset`` whose local saves are atomic (the HTML report)."""

    def _write(self, data: str, file) -> None:
        file.write(data)


class JSONDataset(_AtomicSave, _JSON):
    """``kedro_datasets.json.JSONDataset`` whose local saves are atomic (the JSON reports)."""

    def _write(self, data: Any, file) -> None:
        json.dump(data, file, **self._save_args)


class PlotlyJSONDataset(_AtomicSave, _PlotlyJSON):
    """``kedro_datasets.plotly.JSONDataset`` whose local saves are atomic (the figures, previewed in kedro viz)."""

    def _write(self, data, file) -> None:
        data.write_json(file, **self._save_args)


class CSVDataset(_AtomicSave, _CSV):
    """``kedro_datasets.pandas.CSVDataset`` whose local saves are atomic (the sampler-selection tables)."""

    def _write(self, data, file) -> None:
        data.to_csv(path_or_buf=file, **self._save_args)
