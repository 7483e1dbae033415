"""A trained residual model as a catalog dataset, stored in MLflow's tracking store and registry.

Why not kedro-mlflow's ``MlflowModelTrackingDataset``: with ``mlflow.pytorch`` MLflow 3 either
pickles the module or exports it with ``torch.export`` (fixed input shapes, no ``sample``
method). We log a pyfunc model *from code* (:mod:`precipdiff.serving.pyfunc_model`) whose artifacts
are the ``state_dict`` (loaded with ``weights_only=True``) and the JSON ``model_config`` — nothing is
unpickled on load — with an input example and signature, and register it under
``registered_model_name``. Loading returns the model saved earlier in the same run if any, else
the registry version given by ``load_args`` (``alias`` such as ``champion``, or ``version``,
``"latest"`` by default).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from kedro.io import AbstractDataset, DatasetError

from precipdiff.serving import pyfunc_model
from precipdiff.training.artifact import TrainedModel

log = logging.getLogger(__name__)
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy", "mlflow", "precipdiff"]


def version_tags(info: dict) -> dict[str, str]:
    """The provenance tags of a registered version: stage, objective, transform, residual, data
    fingerprint, ``residual_base`` (diffusion models: input | regression, the bundled CorrDiff mean)
    and the sampler it ships with (chosen on validation, ``pipelines/residual_training.select_sampler``)."""
    tags = {key: str(info.get(key)) for key in ("stage", "objective", "transform", "residual", "data_fingerprint")}
    if "residual_base" in info:
        tags["residual_base"] = str(info["residual_base"])
    tags["sampler"] = json.dumps(info.get("sampler", {}), sort_keys=True)
    return tags


class MlflowResidualModelDataset(AbstractDataset[TrainedModel, TrainedModel]):
    """Save: log + register a :class:`TrainedModel` in the active MLflow run. Load: from the registry."""

    def __init__(self, *, name: str, registered_model_name: str, load_args: dict | None = None,
                 metadata: dict | None = None):
        self._name = name
        self._registered = registered_model_name
        self._load_args = {"alias": None, "version": "latest", **(load_args or {})}
        self._last: TrainedModel | None = None
        self.metadata = metadata

    def save(self, data: TrainedModel) -> None:
        self._last = data
        if not data.enabled:  # the stage is disabled by a parameter: nothing to log
            return
        if mlflow.active_run() is None:
            log.warning("%s: no active MLflow run; the model is kept in memory only", self._registered)
            return
        with tempfile.TemporaryDirectory() as tmp:
            weights, meta = Path(tmp) / "state_dict.pt", Path(tmp) / "model_config.json"
            torch.save(data.model.state_dict(), weights)
            meta.write_text(json.dumps({"config": data.config, "info": data.info}, indent=1))
            example = np.zeros((1, data.config["cond_channels"], 8, 8), np.float32)
            # MLflow registers the version only once the artifacts are uploaded, and creates it with
            # these tags in one transaction: a run killed at any point leaves no version, or a
            # complete and tagged one (tests/pipelines/test_killed_run.py)
            info = mlflow.pyfunc.log_model(
                name=self._name, python_model=Path(pyfunc_model.__file__),
                artifacts={"state_dict": str(weights), "model_config": str(meta)},
                input_example=example, registered_model_name=self._registered, tags=version_tags(data.info),
                pip_requirements=PIP_REQUIREMENTS,
            )
        version = getattr(info, "registered_model_version", None)
        if version is not None:
            data.info["registered"] = {"name": self._registered, "version": str(version),
                                       "run_id": mlflow.active_run().info.run_id}
            mlflow.set_tag(f"{self._name}.data_fingerprint", data.info.get("data_fingerprint"))

    def load(self) -> TrainedModel:
        if self._last is not None:
            return self._last
        uri = self.model_uri()
        try:
            wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
        except Exception as exc:  # noqa: BLE001 - re-raised with the model named
            raise DatasetError(f"{self._registered}: cannot load {uri}: {exc}") from exc
        return wrapper.trained

    def model_uri(self) -> str:
        """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` from ``load_args``."""
        alias, version = self._load_args.get("alias"), self._load_args.get("version")
        if alias:
            return f"models:/{self._registered}@{alias}"
        return f"models:/{self._registered}/{version}"

    def _exists(self) -> bool:
        return self._last is not None

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "registered_model_name": self._registered, "load_args": self._load_args}
