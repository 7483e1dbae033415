"""The evaluation's champion bookkeeping in the MLflow model registry: two small Kedro datasets.

* :class:`ChampionDataset` (load): the versions behind the alias (``champion``) of
  ``precipdiff-correction`` / ``precipdiff-downscaling``, the versions the evaluated models
  resolve to, and the champion models themselves when they differ from the evaluated ones.
* :class:`ModelSelectionDataset` (save): applies the decision of
  :func:`~precipdiff.pipelines.evaluation.selection.selection_decision` — tags on the evaluated
  versions (so the MLflow UI shows the scores and the reason), then moves the alias if
  ``promote``.

Both use the tracking/registry URI kedro-mlflow configured (``conf/base/mlflow.yml``). Which version
a request means and how it loads is :mod:`precipdiff.registry`'s (one precedence, one load path).
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow import MlflowClient

from precipdiff import registry

log = logging.getLogger(__name__)


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
        held = {s: registry.find_version(n, alias=self._alias, client=client) for s, n in self._names.items()}
        versions = {s: None if mv is None else str(mv.version) for s, mv in held.items()}
        tags = {s: {} if mv is None else dict(mv.tags) for s, mv in held.items()}
        found = {s: registry.find_version(n, client=client, **self._candidates.get(s, {}))
                 for s, n in self._names.items()}
        candidates = {s: None if mv is None else str(mv.version) for s, mv in found.items()}
        models = None
        if all(versions.values()) and versions != candidates:
            models = {s: registry.load_version(mv, self._alias) for s, mv in held.items()}
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
