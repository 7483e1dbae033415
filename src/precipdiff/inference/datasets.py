"""Kedro datasets of the ``inference`` pipeline (``conf/base/catalog_inference.yml``).

* :class:`SatelliteFilesDataset` — load: the input files (:class:`SatelliteFiles`), read by the
  first node for the box and hours in the parameters (like a ``PartitionedDataset``'s loaders);
* :class:`EnsembleNetCDFDataset` — save: an :class:`~precipdiff.inference.output.EnsembleJob`,
  computed and written hour by hour by :class:`~precipdiff.inference.output.EnsembleStore`;
  load: the consolidated NetCDF (lazy).

The models come from the registry through :class:`~precipdiff.datasets.mlflow_model.MlflowResidualModelDataset`
(``catalog_inference.yml``), the dataset training registers them with: nothing here talks to MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr
from kedro.io import AbstractDataset, DatasetError

from precipdiff.inference import inputs
from precipdiff.inference.output import EnsembleJob, EnsembleStore


@dataclass(frozen=True)
class SatelliteFiles:
    """Input files of an inference run; :meth:`read` gives the hourly satellite data (mm/h)."""

    paths: tuple[Path, ...]

    def read(self, box=None, start=None, end=None, max_rate_mm_h=300.0, progress=True) -> tuple[xr.Dataset, dict]:
        """See :func:`precipdiff.inference.inputs.read_satellite`."""
        return inputs.read_satellite(self.paths, box, start, end, max_rate_mm_h, progress)


class SatelliteFilesDataset(AbstractDataset[None, SatelliteFiles]):
    """``path``: a directory, a file, or a list of them (IMERG files or a canonical satellite NetCDF)."""

    def __init__(self, *, path: str | list[str], metadata: dict | None = None):
        self._path = path
        self.metadata = metadata

    def load(self) -> SatelliteFiles:
        return SatelliteFiles(tuple(inputs.find_inputs(self._path)))

    def save(self, data: None) -> None:
        raise DatasetError("SatelliteFilesDataset is read-only (it lists the user's input files)")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}


class EnsembleNetCDFDataset(AbstractDataset[EnsembleJob, xr.Dataset]):
    """The ensemble product at ``filepath``, streamed hour by hour (``overwrite``: replace a different run)."""

    def __init__(self, *, filepath: str, overwrite: bool = False, progress: bool = True,
                 metadata: dict | None = None):
        self._store = EnsembleStore(filepath, overwrite=overwrite, progress=progress)
        self.metadata = metadata

    @property
    def store(self) -> EnsembleStore:
        return self._store

    def load(self) -> xr.Dataset:
        return self._store.load()

    def save(self, data: EnsembleJob) -> None:
        self._store.write(data)

    def _exists(self) -> bool:
        return self._store.path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._store.path), "overwrite": self._store.overwrite}
