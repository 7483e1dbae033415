"""What a model was trained on: the typed provenance every registered model carries.

Written by the training pipelines into the model's metadata (``info["provenance"]``, the JSON beside
the weights, and the registry tags ``training_source`` …), read by ``precipdiff downscale`` (which
refuses synthetic-trained models on real input unless told otherwise) and copied into the output
NetCDF and the evaluation report. Plain Python, no Kedro.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

#: ``ingestion.source`` → what the models learnt from, in words
SOURCES = {
    "synthetic": "synthetic data (generated radar, satellite simulated from it)",
    "radar_simulated_satellite": "real radar (MRMS) with a satellite simulated from it",
    "files": "real files (IMERG satellite, MRMS radar)",
}


@dataclass(frozen=True)
class TrainingData:
    """Provenance of a model's training data (schema: :data:`SOURCES` keys, ISO 8601 UTC times).

    ``source``: ``ingestion.source`` (``unknown`` for models registered before this record);
    ``region``: ``ingestion.region`` or None; ``box``: the ingested box (degrees, lon east);
    ``period``: first and last training hour (end-of-hour labels); ``data_fingerprint``: hash of the
    training arrays; ``source_fingerprint``: hash of the ingestion parameters.
    """

    source: str = "unknown"
    region: str | None = None
    box: dict = field(default_factory=dict)
    period: tuple[str, str] | None = None
    data_fingerprint: str | None = None
    source_fingerprint: str | None = None

    @property
    def synthetic(self) -> bool:
        """True unless the satellite side of the training data was real (``files``): synthetic data,
        a satellite simulated from real radar, and models that record nothing all count as synthetic."""
        return self.source != "files"

    def describe(self) -> str:
        """``synthetic data (…), box 46.5–48.5° N, 123.5–121.5° W, 2022-10-01T01:00Z … 2022-10-21T12:00Z``."""
        where = self.region or _box_text(self.box)
        when = "period unknown" if not self.period else f"{self.period[0]} … {self.period[1]}"
        return f"{SOURCES.get(self.source, self.source + ' (no provenance recorded)')}, {where}, {when}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["period"] = list(self.period) if self.period else None
        return out

    @classmethod
    def from_dict(cls, info: dict | None) -> "TrainingData":
        """From ``info["provenance"]`` (an empty record for models registered before it existed)."""
        if not info:
            return cls()
        period = info.get("period")
        return cls(source=info.get("source", "unknown"), region=info.get("region"), box=dict(info.get("box") or {}),
                   period=tuple(period) if period else None, data_fingerprint=info.get("data_fingerprint"),
                   source_fingerprint=info.get("source_fingerprint"))


def training_data(ingestion: dict | None, times, split, data_fingerprint: str, box: dict,
                  source_fingerprint: str | None) -> TrainingData:
    """The record of a training run: ``ingestion`` parameters, the hours ``times`` with their ``split``."""
    train = pd.DatetimeIndex(times)[pd.Index(split).astype(str) == "train"]
    period = None if train.empty else (iso(train.min()), iso(train.max()))
    source = (ingestion or {}).get("source", "unknown")
    return TrainingData(source=source, region=(ingestion or {}).get("region"), box=dict(box), period=period,
                        data_fingerprint=data_fingerprint, source_fingerprint=source_fingerprint)


def iso(t) -> str:
    """ISO 8601 UTC, minutes: ``2022-10-01T01:00Z``."""
    return f"{pd.Timestamp(t):%Y-%m-%dT%H:%MZ}"


def _box_text(box: dict) -> str:
    if not box:
        return "box unknown"
    ns = lambda v: f"{abs(v):g}° {'N' if v >= 0 else 'S'}"  # noqa: E731
    ew = lambda v: f"{abs(v):g}° {'E' if v >= 0 else 'W'}"  # noqa: E731
    return (f"box {ns(box['lat_min'])}–{ns(box['lat_max'])}, {ew(box['lon_min'])}–{ew(box['lon_max'])}")
