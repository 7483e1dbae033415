"""The model card: one typed, versioned description of a trained model, written beside its weights.

Training writes it (``pipelines/residual_training.py``), the MLflow dataset stores it as the
``model_card.json`` artifact of every registered version, and every consumer reads it from here —
the registry (:mod:`precipdiff.registry`), the evaluation, the inference chain and the MLflow pyfunc
model — so each field has one meaning and one default, in this file. A card is validated when it
is built and when it is read: a card of another schema version, or a file that is not a card (the
untyped ``info`` dict of models registered before schema 1), is refused with
:class:`ModelCardError` naming the file, the key, what was expected and what was found.

Schema 1 (``SCHEMA_VERSION``)::

    kind, schema_version          "precipdiff-model-card", 1
    stage, objective              correction | downscaling; edm | regression
    transform, residual           intensity transform (log1p | none); residual space (transformed | absolute)
    upsampling                    how the downscaling condition was upsampled from 0.1° (bilinear | nearest …)
    residual_base                 edm: input | regression (CorrDiff mean bundled); regression: null
    sampler                       edm_sampler keywords the model samples with (chosen on validation)
    sampler_training              the sampler parameters before the selection
    sampler_selection             validation scores of the chosen sampler (crps_fair, spread_skill_ratio, …)
    conditioning                  what the model takes besides the base field (Conditioning)
    provenance                    what it was trained on (Provenance)
    train_seconds                 wall time of its training epochs (s)
    disabled                      a stand-in for a stage turned off by a parameter (no weights)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from precipdiff.data.transforms import RESIDUALS, STATIC_CHANNELS, TRANSFORMS
from precipdiff.nn.residual import OBJECTIVES, ResidualModel, build_model
from precipdiff.nn.sampler import SamplerSettingError, check_sampler
from precipdiff.nn.sampling import COARSE, FINE

KIND = "precipdiff-model-card"
SCHEMA_VERSION = 1
STAGES = ("correction", "downscaling")
GRIDS = {"correction": COARSE, "downscaling": FINE}  # the latent grid id of each stage
RESIDUAL_BASES = ("input", "regression")
SOURCES = ("synthetic", "radar_simulated_satellite", "files")  # ingestion.source
#: what each source means, in words (:meth:`Provenance.describe`)
SOURCE_WORDS = {"synthetic": "synthetic data (generated radar, satellite simulated from it)",
                "radar_simulated_satellite": "real radar (MRMS) with a satellite simulated from it",
                "files": "real files (IMERG satellite, MRMS radar)"}


class ModelCardError(ValueError):
    """A model card that cannot be used: the message names where, the key, what was expected and found."""


@dataclass(frozen=True)
class Domain:
    """Extent of the training cells' centres, degrees north / east (out-of-domain warnings)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


@dataclass(frozen=True)
class Conditioning:
    """What the model takes besides its base field: the static channels appended to the condition,
    in this order (degrees; ``()`` = the base field alone, ``("lat", "lon")`` = cell-centre latitude
    and longitude, :func:`precipdiff.data.transforms.condition`). Issue #21 adds more kinds here."""

    static_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provenance:
    """What the model was trained on (all optional: unknown = ``None`` or empty).

    ``source``: the ingestion source (``synthetic``, ``radar_simulated_satellite`` = real radar with
    simulated satellite, ``files`` = real IMERG and MRMS files); ``domain``: the training box
    (cell-centre extent); ``regions``: the named regions whose box-hours were trained on (the one
    named box of a one-box run, or the regions of a large domain, ``precipdiff.data.boxes``);
    ``held_out_regions``: regions of the data kept out of training and validation on purpose;
    ``period``: first and last training hour (UTC, ISO 8601); ``data_fingerprint``: SHA-256 prefix of
    the training arrays; ``mean_fingerprint``: that of the residual base's (CorrDiff) training data.
    """

    source: str | None = None
    domain: Domain | None = None
    regions: tuple[str, ...] = ()
    held_out_regions: tuple[str, ...] = ()
    period: tuple[str, str] | None = None
    data_fingerprint: str | None = None
    mean_fingerprint: str | None = None

    @property
    def synthetic(self) -> bool:
        """True unless the satellite side of the training data was real (``files``): synthetic data,
        a satellite simulated from real radar, and a model that records no source all count."""
        return self.source != "files"

    def describe(self) -> str:
        """One line: ``synthetic data (…), box 47.05–47.35° N, 122.35–122.05° W, 2022-10-01T01:00Z … …``."""
        what = SOURCE_WORDS.get(self.source, "unknown data (no source recorded)")
        where = ", ".join(self.regions) if self.regions else _box_words(self.domain)
        when = "period unknown" if not self.period else f"{self.period[0]} … {self.period[1]}"
        return f"{what}, {where}, {when}"


@dataclass(frozen=True)
class ModelCard:
    """Schema 1 of the description of a trained residual model (see the module docstring)."""

    stage: str
    objective: str
    transform: str = "log1p"
    residual: str = "transformed"
    upsampling: str = "bilinear"
    residual_base: str | None = None
    sampler: dict = field(default_factory=dict)
    sampler_training: dict = field(default_factory=dict)
    sampler_selection: dict = field(default_factory=dict)
    conditioning: Conditioning = Conditioning()
    provenance: Provenance = Provenance()
    train_seconds: float | None = None
    disabled: bool = False
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        _check_card(self)

    @property
    def channels(self) -> tuple[str, ...]:
        """Condition channels in order: ``base`` then the static channels."""
        return ("base", *self.conditioning.static_channels)

    @property
    def grid(self) -> int:
        """The latent grid id of the stage (:data:`~precipdiff.nn.sampling.COARSE` / ``FINE``)."""
        return GRIDS[self.stage]

    def sampler_setting(self, overrides: dict | None = None) -> dict:
        """The model's sampler with ``overrides`` (a :data:`~precipdiff.nn.sampler.SAMPLER_KEYS`
        dict, ``None`` values ignored) on top: what every sampling path passes to the sampler."""
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        try:
            return check_sampler({**self.sampler, **given})
        except SamplerSettingError as exc:
            raise ModelCardError(f"{self.stage} model: {exc}") from None

    def to_dict(self) -> dict:
        """JSON-ready dict (``kind`` first); :meth:`from_dict` reads it back equal."""
        return {"kind": KIND, **_plain(dataclasses.asdict(self))}

    @classmethod
    def from_dict(cls, data: Any, where: str = "model card") -> "ModelCard":
        """Read and validate a card written by :meth:`to_dict`; refuse anything else (:class:`ModelCardError`)."""
        _check_header(data, where)
        body = {k: v for k, v in data.items() if k != "kind"}
        _check_keys(body, cls, where)
        try:
            return cls(**{**body, "conditioning": _nested(Conditioning, body["conditioning"], f"{where}: conditioning"),
                          "provenance": _provenance(body["provenance"], where)})
        except ModelCardError as exc:
            raise ModelCardError(f"{where}: {exc}") from None

    def write(self, path: str | Path) -> None:
        """Write the card as JSON (the caller writes into a temporary folder or atomically)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False))

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        """Read and validate a card file (:meth:`from_dict`), naming the file in any error."""
        path = Path(path)
        if not path.is_file():
            raise ModelCardError(f"{path}: no model card (model_card.json); the model was saved before model "
                                 f"cards (schema {SCHEMA_VERSION}) or by another program: retrain it")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelCardError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data, str(path))


def _box_words(d: Domain | None) -> str:
    """``box 47.05–47.35° N, 122.35–122.05° W`` (the training cells' centres) or ``box unknown``."""
    if d is None:
        return "box unknown"
    ns = lambda v: f"{abs(v):.2f}° {'N' if v >= 0 else 'S'}"  # noqa: E731
    ew = lambda v: f"{abs(v):.2f}° {'E' if v >= 0 else 'W'}"  # noqa: E731
    return f"box {ns(d.lat_min)}–{ns(d.lat_max)}, {ew(d.lon_min)}–{ew(d.lon_max)} (cell centres)"


def iso_hour(t) -> str:
    """ISO 8601 UTC to the minute, ``2022-10-01T01:00Z`` (the periods of a card)."""
    import pandas as pd

    return f"{pd.Timestamp(t):%Y-%m-%dT%H:%MZ}"


def _check_header(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise ModelCardError(f"{where}: expected a JSON object (a precipdiff model card); got {type(data).__name__}")
    if data.get("kind") != KIND:
        old = " (an untyped 'info' dict of a model saved before model cards: retrain it)" if "stage" in data else ""
        raise ModelCardError(f"{where}: kind {data.get('kind')!r}; expected {KIND!r}{old}")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ModelCardError(f"{where}: schema_version {data.get('schema_version')!r}; this precipdiff reads "
                             f"schema_version {SCHEMA_VERSION} (retrain the model, or use the precipdiff that wrote it)")


def _check_keys(body: dict, cls: type, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown, missing = sorted(set(body) - names), sorted(names - set(body))
    if unknown or missing:
        raise ModelCardError(f"{where}: keys {sorted(body)}; expected exactly {sorted(names)} "
                             f"(unknown: {unknown or 'none'}, missing: {missing or 'none'})")


def _nested(cls: type, value: Any, where: str):
    if not isinstance(value, dict):
        raise ModelCardError(f"{where}: expected an object with keys {[f.name for f in dataclasses.fields(cls)]}; "
                             f"got {value!r}")
    _check_keys(value, cls, where)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})


def _provenance(value: Any, where: str) -> Provenance:
    prov = _nested(Provenance, value, f"{where}: provenance")
    domain = None if prov.domain is None else _nested(Domain, prov.domain, f"{where}: provenance.domain")
    return dataclasses.replace(prov, domain=domain)


def _check_card(card: ModelCard) -> None:
    """Every field's allowed values (:class:`ModelCardError` naming the key)."""
    def bad(key: str, expected: str):
        raise ModelCardError(f"{key}: expected {expected}; got {getattr(card, key)!r}")

    if card.schema_version != SCHEMA_VERSION:
        bad("schema_version", str(SCHEMA_VERSION))
    choices = {"stage": STAGES, "objective": OBJECTIVES, "transform": TRANSFORMS, "residual": RESIDUALS}
    for key, allowed in choices.items():
        if getattr(card, key) not in allowed:
            bad(key, f"one of {allowed}")
    if card.objective == "edm" and card.residual_base not in RESIDUAL_BASES and not card.disabled:
        bad("residual_base", f"one of {RESIDUAL_BASES} for a diffusion (edm) model")
    if card.objective == "regression" and card.residual_base is not None:
        bad("residual_base", "null for a regression model (it is a residual base itself)")
    for key in ("sampler", "sampler_training"):
        try:
            check_sampler(getattr(card, key))
        except SamplerSettingError as exc:
            raise ModelCardError(f"{key}: {exc}") from None
    unknown = sorted(set(card.conditioning.static_channels) - set(STATIC_CHANNELS))
    if unknown:
        raise ModelCardError(f"conditioning.static_channels: expected some of {STATIC_CHANNELS}; got "
                             f"{card.conditioning.static_channels!r}")
    if card.provenance.source not in (None, *SOURCES):
        raise ModelCardError(f"provenance.source: expected one of {SOURCES} or null; got {card.provenance.source!r}")


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively (JSON shape)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Registration:
    """Where a loaded model came from in the MLflow registry (set by :mod:`precipdiff.registry`)."""

    name: str
    version: str
    run_id: str | None = None
    alias: str | None = None


@dataclass
class TrainedModel:
    """A :class:`~precipdiff.nn.residual.ResidualModel`, its ``model_config`` (what
    :func:`~precipdiff.nn.build_model` rebuilds it from) and its :class:`ModelCard`.

    ``model`` is None (see :meth:`disabled`) when the stage was turned off by a parameter;
    ``registered`` says which registry version it is, once it has one.
    """

    config: dict
    model: ResidualModel | None
    card: ModelCard
    registered: Registration | None = None

    @property
    def enabled(self) -> bool:
        """False for the stand-in of a model a parameter turned off (Kedro outputs cannot be None)."""
        return self.model is not None

    @property
    def name(self) -> str:
        """``precipdiff-correction v3`` (registered), else the stage (for messages)."""
        if self.registered is None:
            return f"{self.card.stage} model (not registered)"
        return f"{self.registered.name} v{self.registered.version}"

    @classmethod
    def disabled(cls, stage: str, objective: str) -> "TrainedModel":
        return cls({}, None, ModelCard(stage=stage, objective=objective, disabled=True))

    @classmethod
    def load(cls, config: dict, weights_path, card: ModelCard) -> "TrainedModel":
        """Rebuild from a ``state_dict`` file, loaded with ``weights_only=True`` (no arbitrary pickles)."""
        model = build_model(config)
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        if len(card.channels) != model.cond_mean.numel():
            raise ModelCardError(f"{weights_path}: the card lists {len(card.channels)} condition channels "
                                 f"{list(card.channels)}; the weights take {model.cond_mean.numel()}")
        return cls(config, model.eval(), card)

    @classmethod
    def read(cls, folder: str | Path) -> "TrainedModel":
        """Rebuild from a folder holding ``model_config.json``, ``state_dict.pt`` and ``model_card.json``
        (what :func:`write_artifacts` writes; a registered version's ``artifacts/``)."""
        folder = Path(folder)
        card = ModelCard.read(folder / CARD_FILE)  # first: an old or foreign card is refused before anything loads
        config = json.loads((folder / CONFIG_FILE).read_text())
        return cls.load(config, folder / WEIGHTS_FILE, card)

    def write(self, folder: str | Path) -> dict[str, str]:
        """Write the three artifacts into ``folder`` (a fresh temporary one); ``{artifact: path}``."""
        folder = Path(folder)
        paths = {"state_dict": folder / WEIGHTS_FILE, "model_config": folder / CONFIG_FILE,
                 "model_card": folder / CARD_FILE}
        torch.save(self.model.state_dict(), paths["state_dict"])
        paths["model_config"].write_text(json.dumps(self.config, indent=1))
        self.card.write(paths["model_card"])
        return {k: str(v) for k, v in paths.items()}


WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "state_dict.pt", "model_config.json", "model_card.json"
