"""A trained residual model as a catalog dataset, stored in MLflow's tracking store and registry.

Why not kedro-mlflow's ``MlflowModelTrackingDataset``: with ``mlflow.pytorch`` MLflow 3 either
pickles the module or exports it with ``torch.export`` (fixed input shapes, no ``sample``
method). We log a pyfunc model *from code* (:mod:`precipdiff.serving.pyfunc_model`) whose artifacts
are the ``state_dict`` (loaded with ``weights_only=True``) and the JSON ``model_config`` — nothing is
unpickled on load — with an input example and signature, and register it under
``registered_model_name``.

Loading returns the model saved earlier in the same run if any, else the registry version that
``load_args`` (``version``, ``run_id``, ``alias``; none = the latest) ask for, with the one
precedence and the one ``weights_only`` load path of :mod:`precipdiff.registry`
(``version > run_id > alias > latest``). Training, evaluation and inference all read and write
registered models through this dataset.
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

from precipdiff import registry
from precipdiff.serving import pyfunc_model
from precipdiff.training.artifact import TrainedModel
from precipdiff.training.provenance import TrainingData

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
    trained_on = TrainingData.from_dict(info.get("provenance"))  # what it learnt from (#23)
    tags.update(training_source=trained_on.source, training_data=trained_on.describe())
    return tags


class MlflowResidualModelDataset(AbstractDataset[TrainedModel, TrainedModel]):
    """Save: log + register a :class:`TrainedModel` in the active MLflow run. Load: from the registry.

    ``load_args``: ``version`` (a number or ``latest``), ``run_id`` (the training run), ``alias``
    (e.g. ``champion``); the first one given wins, in that order, and none means the latest version.
    """

    LOAD_KEYS = ("version", "run_id", "alias")

    def __init__(self, *, name: str, registered_model_name: str, load_args: dict | None = None,
                 metadata: dict | None = None):
        self._name = name
        self._registered = registered_model_name
        unknown = sorted(set(load_args or {}) - set(self.LOAD_KEYS))
        if unknown:
            raise DatasetError(f"{registered_model_name}: unknown load_args {unknown}; expected some of "
                               f"{list(self.LOAD_KEYS)}")
        self._load_args = {k: (load_args or {}).get(k) for k in self.LOAD_KEYS}
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
        return registry.load_registered(self._registered, **self._load_args)

    @property
    def load_args(self) -> dict:
        """What a load asks the registry for: ``{"version", "run_id", "alias"}`` (None = not given)."""
        return dict(self._load_args)

    def _exists(self) -> bool:
        return self._last is not None

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "registered_model_name": self._registered, "load_args": self._load_args}
