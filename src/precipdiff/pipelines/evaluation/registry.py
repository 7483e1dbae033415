"""The only place the evaluation talks to the MLflow model registry: two small Kedro datasets.

* :class:`ChampionDataset` (load): the versions behind the alias (``champion``) of
  ``precipdiff-correction`` / ``precipdiff-downscaling``, the versions the evaluated models
  resolve to, and the champion models themselves when they differ from the evaluated ones.
* :class:`ModelSelectionDataset` (save): applies the decision of
  :func:`~precipdiff.pipelines.evaluation.selection.selection_decision` — tags on the evaluated
  versions (so the MLflow UI shows the scores and the reason), then moves the alias if
  ``promote``.

Both use the tracking/registry URI kedro-mlflow configured (``conf/base/mlflow.yml``).
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from precipdiff.datasets.mlflow_model import MlflowResidualModelDataset

log = logging.getLogger(__name__)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """Version behind ``name@alias``, None if the model or the alias does not exist."""
    return None if (mv := _by_alias(client, name, alias)) is None else str(mv.version)


def _by_alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_version(client: MlflowClient, name: str, load_args: dict | None) -> str | None:
    """The version ``load_args`` (``alias`` or ``version``; ``"latest"`` = highest) points to, or None."""
    load_args = load_args or {}
    if load_args.get("alias"):
        return alias_version(client, name, load_args["alias"])
    version = load_args.get("version", "latest")
    if version not in (None, "latest"):
        return str(version)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    return str(max(int(v.version) for v in versions)) if versions else None


class ChampionDataset(AbstractDataset[None, dict]):
    """Load-only: ``{"alias", "registered_models", "versions", "tags", "candidate_versions", "models"}``.

    ``versions[stage]`` is the version holding ``alias`` (None if none) and ``tags[stage]`` its tags
    (the ``eval.*`` scores of its own evaluation); ``candidate_versions``
    the versions the evaluated datasets' ``load_args`` point to (used when the models were not
    trained in this run); ``models`` the champion :class:`TrainedModel` pair, loaded only when the
    champion is complete and differs from the candidates (else None).
    """

    def __init__(self, *, registered_models: dict[str, str], alias: str = "champion",
                 candidates: dict[str, dict] | None = None, metadata: dict | None = None):
        self._names, self._alias = dict(registered_models), alias
        self._candidates = {k: dict(v or {}) for k, v in (candidates or {}).items()}
        self.metadata = metadata

    def load(self) -> dict:
        client = MlflowClient()
        held = {s: _by_alias(client, n, self._alias) for s, n in self._names.items()}
        versions = {s: None if mv is None else str(mv.version) for s, mv in held.items()}
        tags = {s: {} if mv is None else dict(mv.tags) for s, mv in held.items()}
        candidates = {s: resolve_version(client, n, self._candidates.get(s)) for s, n in self._names.items()}
        models = None
        if all(versions.values()) and versions != candidates:
            models = {s: MlflowResidualModelDataset(name=f"{s}_champion", registered_model_name=n,
                                                    load_args={"alias": self._alias}).load()
                      for s, n in self._names.items()}
        return {"alias": self._alias, "registered_models": self._names, "versions": versions, "tags": tags,
                "candidate_versions": candidates, "models": models}

    def save(self, data: None) -> None:
        raise DatasetError("ChampionDataset is read-only; the decision goes to ModelSelectionDataset")

    def _describe(self) -> dict[str, Any]:
        return {"registered_models": self._names, "alias": self._alias, "candidates": self._candidates}


class ModelSelectionDataset(AbstractDataset[dict, dict]):
    """Save-only: tag the evaluated versions and move the alias when ``decision["promote"]``."""

    def __init__(self, *, metadata: dict | None = None):
        self._last: dict | None = None
        self.metadata = metadata

    def save(self, data: dict) -> None:
        self._last = data
        client, run = MlflowClient(), mlflow.active_run()
        tags = {**data["tags"], "eval.run_id": run.info.run_id if run else "none"}
        for stage, version in data["candidate"]["versions"].items():
            name = data["registered_models"][stage]
            if version is None:
                log.warning("model selection: %s has no registered version to tag", name)
                continue
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
            if data["promote"]:
                client.set_registered_model_alias(name, data["alias"], version)
                log.info("model selection: %s@%s -> version %s (%s)", name, data["alias"], version, data["reason"])
        if not data["promote"]:
            log.info("model selection: %s unchanged (%s)", data["alias"], data["reason"])

    def load(self) -> dict:
        if self._last is None:
            raise DatasetError("ModelSelectionDataset: nothing saved in this run")
        return self._last

    def _describe(self) -> dict[str, Any]:
        return {}
