"""The MLflow model registry: which registered version a request means, and how its weights load.

The only module that looks models up in the registry. The training pipelines register
``precipdiff-correction`` and ``precipdiff-downscaling`` (and the ``-regression`` baselines)
through :class:`~precipdiff.datasets.mlflow_model.MlflowResidualModelDataset`; evaluation and
inference load them through the same dataset, the evaluation's champion bookkeeping
(``pipelines/evaluation/registry.py``) and the benchmarks through the functions here.

**One precedence** for a request ``(version, run_id, alias)``, whoever asks:

    version  >  run_id  >  alias  >  the latest version

* ``version``: that version number (``"latest"``: the highest);
* ``run_id``: the highest version registered by that training run;
* ``alias``: the version holding it (``champion`` is set by the evaluation);
* none of them: the highest version.

The most specific choice wins, so a default alias (inference asks for ``champion`` unless told
otherwise) never hides an explicit version or run id. A request that matches nothing is a
:class:`ModelNotFoundError` naming the model and listing what exists (versions, runs, aliases).

**One load path**: :func:`load_version` downloads the version's artifacts (``model_config.json``,
``model_card.json`` + ``state_dict.pt``) and rebuilds the model with
:meth:`~precipdiff.model_card.TrainedModel.read` (the card validated first, then
``torch.load(..., weights_only=True)``; a version registered before model cards is refused):
no pickled code and no pyfunc environment (the pyfunc wrapper, for ``mlflow models serve``, reads
the same two files with the same function).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from precipdiff.model_card import ModelCardError, Registration, TrainedModel


class ModelNotFoundError(LookupError):
    """The requested registered model, alias, version or run is not in the registry."""


def resolve_version(name: str, *, version: str | int | None = None, run_id: str | None = None,
                    alias: str | None = None, client: MlflowClient | None = None) -> ModelVersion:
    """The registered version of ``name`` asked for: ``version`` > ``run_id`` > ``alias`` > latest.

    Raises
    ------
    ModelNotFoundError
        The model, version, run or alias does not exist; the message lists what does.
    """
    client = client or MlflowClient()
    versions = _versions(client, name)
    numbers = sorted(int(v.version) for v in versions)
    if version is not None and str(version) != "latest":
        match = [v for v in versions if str(v.version) == str(version)]
        if not match:
            raise ModelNotFoundError(f"registered model {name!r} has no version {version}; versions: {numbers}")
        return match[0]
    if run_id and version is None:
        match = sorted((v for v in versions if v.run_id == run_id), key=lambda v: int(v.version))
        if not match:
            raise ModelNotFoundError(f"registered model {name!r} has no version logged by run {run_id!r}; "
                                     f"runs: {sorted({v.run_id for v in versions})}")
        return match[-1]
    if alias and version is None:
        try:
            return client.get_model_version_by_alias(name, alias)
        except MlflowException:
            aliases = sorted(client.get_registered_model(name).aliases)
            raise ModelNotFoundError(
                f"registered model {name!r} has no alias {alias!r} (aliases: {aliases or 'none'}; versions: "
                f"{numbers}). Set it (the evaluation pipeline sets 'champion'), or choose a version "
                f"(--version) or a training run (--run-id)") from None
    if not versions:
        raise ModelNotFoundError(f"registered model {name!r} has no version yet; "
                                 "train first: kedro run --pipelines=training")
    return max(versions, key=lambda v: int(v.version))


def find_version(name: str, *, version: str | int | None = None, run_id: str | None = None,
                 alias: str | None = None, client: MlflowClient | None = None) -> ModelVersion | None:
    """:func:`resolve_version`, or None when nothing matches (a registry that may not hold it yet)."""
    try:
        return resolve_version(name, version=version, run_id=run_id, alias=alias, client=client)
    except ModelNotFoundError:
        return None


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
    """Rebuild a registered version from its artifacts; ``registered`` records where it came from.

    Raises :class:`~precipdiff.model_card.ModelCardError` naming the version when its model card is
    missing (registered before model cards), of another schema version, or invalid.
    """
    root = Path(mlflow.artifacts.download_artifacts(f"models:/{mv.name}/{mv.version}"))
    try:
        trained = TrainedModel.read(root / "artifacts")
    except ModelCardError as exc:
        raise ModelCardError(f"registered model {mv.name!r} version {mv.version}: {exc}") from None
    trained.registered = Registration(mv.name, str(mv.version), mv.run_id,
                                      alias if alias in (mv.aliases or []) else None)
    return trained


def load_registered(name: str, *, version: str | int | None = None, run_id: str | None = None,
                    alias: str | None = None, client: MlflowClient | None = None) -> TrainedModel:
    """:func:`resolve_version` then :func:`load_version`."""
    mv = resolve_version(name, version=version, run_id=run_id, alias=alias, client=client)
    return load_version(mv, alias)
