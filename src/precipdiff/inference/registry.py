"""Trained models from the MLflow model registry, chosen by alias, version or training run id.

The training pipelines register ``precipdiff-correction`` and ``precipdiff-downscaling`` (and the
``-regression`` baselines) through :class:`~precipdiff.datasets.mlflow_model.MlflowResidualModelDataset`;
the evaluation pipeline sets the ``champion`` alias. :func:`resolve_version` turns a request into one
registered version with errors that name the model and what exists; :func:`load_version` rebuilds
the model from the version's artifacts (``model_config.json`` + ``state_dict.pt``, loaded with
``weights_only=True``) — the same files the pyfunc wrapper reads, without running its code.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from precipdiff.training.artifact import TrainedModel


class ModelNotFoundError(LookupError):
    """The requested registered model, alias, version or run is not in the registry."""


def resolve_version(name: str, *, alias: str | None = "champion", version: str | int | None = None,
                    run_id: str | None = None, client: MlflowClient | None = None) -> ModelVersion:
    """The registered version of ``name`` asked for: ``version`` > ``run_id`` > ``alias``.

    Raises
    ------
    ModelNotFoundError
        The model, version, run or alias does not exist; the message lists what does.
    """
    client = client or MlflowClient()
    versions = _versions(client, name)
    if version is not None:
        match = [v for v in versions if str(v.version) == str(version)]
        if not match:
            raise ModelNotFoundError(f"registered model {name!r} has no version {version}; versions: "
                                     f"{sorted(int(v.version) for v in versions)}")
        return match[0]
    if run_id:
        match = sorted((v for v in versions if v.run_id == run_id), key=lambda v: int(v.version))
        if not match:
            raise ModelNotFoundError(f"registered model {name!r} has no version logged by run {run_id!r}; "
                                     f"runs: {sorted({v.run_id for v in versions})}")
        return match[-1]
    if not alias:
        raise ModelNotFoundError(f"registered model {name!r}: give an alias, a version or a run id")
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        aliases = sorted(client.get_registered_model(name).aliases)
        raise ModelNotFoundError(
            f"registered model {name!r} has no alias {alias!r} (aliases: {aliases or 'none'}; versions: "
            f"{sorted(int(v.version) for v in versions)}). Set it (the evaluation pipeline sets 'champion'), "
            f"or choose a version (--version) or a training run (--run-id)") from None


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    try:
        client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        uri = getattr(client, "_registry_uri", None) or mlflow.get_registry_uri()
        raise ModelNotFoundError(
            f"the MLflow registry at {uri} has no registered model {name!r} "
            f"(registered: {names or 'none'}); train first: kedro run --pipelines=training") from None
    return list(client.search_model_versions(f"name='{name}'"))


def load_version(mv: ModelVersion, alias: str | None = None) -> TrainedModel:
    """Rebuild a registered version from its artifacts; ``info['registered']`` records where it came from."""
    root = Path(mlflow.artifacts.download_artifacts(f"models:/{mv.name}/{mv.version}"))
    meta = json.loads((root / "artifacts" / "model_config.json").read_text())
    trained = TrainedModel.load(meta["config"], root / "artifacts" / "state_dict.pt", meta.get("info"))
    trained.info["registered"] = {"name": mv.name, "version": str(mv.version), "run_id": mv.run_id,
                                  "alias": alias if alias in (mv.aliases or []) else None}
    return trained


def load_registered(name: str, *, alias: str | None = "champion", version=None, run_id: str | None = None
                    ) -> TrainedModel:
    """:func:`resolve_version` then :func:`load_version`."""
    mv = resolve_version(name, alias=alias, version=version, run_id=run_id)
    return load_version(mv, alias)
