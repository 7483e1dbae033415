"""Kedro datasets of the ``inference`` pipeline (``conf/base/catalog_inference.yml``).

* :class:`SatelliteFilesDataset` — load: the input files (:class:`SatelliteFiles`), read by the
  first node for the box and hours in the parameters (like a ``PartitionedDataset``'s loaders);
* :class:`RegisteredModelDataset` — load: a model from the MLflow registry by alias, version or
  training run id (read-only; training saves through ``MlflowResidualModelDataset``);
* :class:`EnsembleNetCDFDataset` — save: an :class:`~precipdiff.inference.output.EnsembleJob`,
  computed and written hour by hour by :class:`~precipdiff.inference.output.EnsembleStore`;
  load: the consolidated NetCDF (lazy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr
from kedro.io import AbstractDataset, DatasetError

from precipdiff.inference import inputs, registry
from precipdiff.inference.output import EnsembleJob, EnsembleStore
from precipdiff.training.artifact import TrainedModel


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


class RegisteredModelDataset(AbstractDataset[None, TrainedModel]):
    """A registered model by ``model_version`` > ``run_id`` > ``alias`` (see :mod:`precipdiff.inference.registry`)."""

    def __init__(self, *, registered_model_name: str, alias: str | None = "champion", model_version=None,
                 run_id: str | None = None, metadata: dict | None = None):
        # ``model_version``: Kedro reserves ``version`` for its own versioned datasets
        self._name, self._alias, self._version, self._run_id = registered_model_name, alias, model_version, run_id
        self.metadata = metadata

    def load(self) -> TrainedModel:
        return registry.load_registered(self._name, alias=self._alias, version=self._version, run_id=self._run_id)

    def save(self, data: TrainedModel) -> None:
        raise DatasetError(f"{self._name}: RegisteredModelDataset is read-only; models are registered by training")

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._name, "alias": self._alias, "model_version": self._version,
                "run_id": self._run_id}


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
