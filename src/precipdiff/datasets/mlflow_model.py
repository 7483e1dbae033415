"""A trained residual model as a catalog dataset, stored in MLflow's tracking store and registry.

Why not kedro-mlflow's ``MlflowModelTrackingDataset``: with ``mlflow.pytorch`` MLflow 3 either
pickles the module or exports it with ``torch.export`` (fixed input shapes, no ``sample``
method). We log a pyfunc model *from code* (:mod:`precipdiff.serving.pyfunc_model`) whose artifacts
are the ``state_dict`` (loaded with ``weights_only=True``), the JSON ``model_config`` and the
:class:`~precipdiff.model_card.ModelCard` (``model_card.json``) — nothing is unpickled on load —
with an input example and a signature (its params: members, seed, hour keys, sampler), and register
it under ``registered_model_name``.

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
from kedro.io import AbstractDataset, DatasetError
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from precipdiff import registry
from precipdiff.model_card import ModelCard, Registration, TrainedModel
from precipdiff.serving import pyfunc_model

log = logging.getLogger(__name__)
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy", "mlflow", "precipdiff"]


def version_tags(card: ModelCard) -> dict[str, str]:
    """The provenance tags of a registered version, from its card: stage, objective, transform,
    residual, data fingerprint, ``residual_base`` (diffusion models: input | regression, the bundled
    CorrDiff mean), the sampler it ships with (chosen on validation,
    ``pipelines/residual_training.select_sampler``) and the card's schema version."""
    tags = {"stage": card.stage, "objective": card.objective, "transform": card.transform, "residual": card.residual,
            "data_fingerprint": str(card.provenance.data_fingerprint), "model_card_schema": str(card.schema_version)}
    if card.residual_base is not None:
        tags["residual_base"] = card.residual_base
    tags["sampler"] = json.dumps(card.sampler, sort_keys=True)
    tags["training_source"] = str(card.provenance.source)  # what it learnt from (#23)
    tags["training_data"] = card.provenance.describe()
    return tags


def signature(channels: int) -> ModelSignature:
    """Condition ``(batch, channels, lat, lon)`` float32 of any batch and size (the U-Nets are fully
    convolutional) and the pyfunc's params (:data:`~precipdiff.serving.pyfunc_model.PARAMS`)."""
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1))]),
                          params=pyfunc_model.PARAMS)


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
            artifacts = data.write(tmp)
            example = np.zeros((1, data.config["cond_channels"], 8, 8), np.float32)
            # MLflow registers the version only once the artifacts are uploaded, and creates it with
            # these tags in one transaction: a run killed at any point leaves no version, or a
            # complete and tagged one (tests/pipelines/test_killed_run.py)
            info = mlflow.pyfunc.log_model(
                name=self._name, python_model=Path(pyfunc_model.__file__),
                artifacts=artifacts, input_example=example, signature=signature(data.config["cond_channels"]),
                registered_model_name=self._registered, tags=version_tags(data.card),
                pip_requirements=PIP_REQUIREMENTS,
            )
        version = getattr(info, "registered_model_version", None)
        if version is not None:
            data.registered = Registration(self._registered, str(version), mlflow.active_run().info.run_id)
            mlflow.set_tag(f"{self._name}.data_fingerprint", data.card.provenance.data_fingerprint)

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
