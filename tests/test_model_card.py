"""The model card (``precipdiff.model_card``): one typed, versioned description of a trained model,
validated when read; an old or foreign card is refused with a message naming what is wrong (#24)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from precipdiff.model_card import (SCHEMA_VERSION, Conditioning, Domain, ModelCard, ModelCardError, Provenance,
                                   TrainedModel)
from tests.inference.chain_models import unet_model

ROOT = Path(__file__).resolve().parents[1]
CARD = ModelCard(stage="correction", objective="edm", residual_base="regression", sampler={"num_steps": 18},
                 conditioning=Conditioning(("lat", "lon")),
                 provenance=Provenance(source="synthetic", domain=Domain(47.0, 48.0, -123.0, -122.0),
                                       period=("2022-10-01 01:00:00", "2022-10-20 00:00:00"),
                                       data_fingerprint="0123456789abcdef"))


def test_a_card_round_trips_through_json_equal():
    data = json.loads(json.dumps(CARD.to_dict()))
    assert data["kind"] == "precipdiff-model-card" and data["schema_version"] == SCHEMA_VERSION == 1
    assert ModelCard.from_dict(data) == CARD
    assert CARD.channels == ("base", "lat", "lon") and CARD.grid == 0


def test_the_defaults_are_the_documented_ones():
    card = ModelCard(stage="downscaling", objective="regression")
    assert (card.transform, card.residual, card.upsampling, card.residual_base) == ("log1p", "transformed",
                                                                                    "bilinear", None)
    assert card.conditioning.static_channels == () and card.channels == ("base",) and card.grid == 1
    assert card.provenance == Provenance() and card.provenance.source is None and card.provenance.regions == ()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d | {"schema_version": 2}, "schema_version 2; this precipdiff reads schema_version 1"),
    (lambda d: {k: v for k, v in d.items() if k != "kind"}, "kind None; expected 'precipdiff-model-card'"),
    (lambda d: d | {"kind": "diffusers-config"}, "kind 'diffusers-config'"),
    (lambda d: d | {"colour": "blue"}, "unknown: ['colour'], missing: none"),
    (lambda d: {k: v for k, v in d.items() if k != "transform"}, "unknown: none, missing: ['transform']"),
    (lambda d: d | {"stage": "nowcast"}, "stage: expected one of ('correction', 'downscaling'); got 'nowcast'"),
    (lambda d: d | {"sampler": {"steps": 4}}, "sampler: sampler: expected keys among"),
    (lambda d: d | {"residual_base": None}, "residual_base: expected one of ('input', 'regression')"),
    (lambda d: d | {"conditioning": {"static_channels": ["elevation"]}}, "conditioning.static_channels"),
    (lambda d: d | {"provenance": {**d["provenance"], "source": "radar"}}, "provenance.source"),
])
def test_a_foreign_or_wrong_card_is_refused_naming_what_is_wrong(change, message):
    with pytest.raises(ModelCardError, match=re.escape(message)):
        ModelCard.from_dict(change(CARD.to_dict()), "card.json")


def test_an_old_untyped_info_dict_is_refused_with_its_reason(tmp_path):
    old = {"stage": "correction", "objective": "edm", "transform": "log1p", "channels": ["base", "lat", "lon"]}
    (tmp_path / "model_card.json").write_text(json.dumps(old))
    with pytest.raises(ModelCardError, match=r"model_card.json: kind None; .*saved before model cards"):
        ModelCard.read(tmp_path / "model_card.json")
    with pytest.raises(ModelCardError, match=r"no model card \(model_card.json\); the model was saved before"):
        ModelCard.read(tmp_path / "missing.json")


def test_the_artifacts_round_trip_and_the_card_must_match_the_weights(tmp_path):
    trained = unet_model("correction", seed=1)
    trained.write(tmp_path)
    back = TrainedModel.read(tmp_path)
    assert back.card == trained.card and back.config == trained.config
    wrong = ModelCard(stage="correction", objective="edm", residual_base="input")  # base field only: 1 channel
    wrong.write(tmp_path / "model_card.json")
    with pytest.raises(ModelCardError, match=r"the card lists 1 condition channels \['base'\]; the weights take 3"):
        TrainedModel.read(tmp_path)


def test_no_untyped_info_dict_is_read_outside_the_model_card_module():
    """Every consumer reads the typed card: no ``info.get(key, default)`` with its own default."""
    files = [*sorted((ROOT / "src" / "precipdiff").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py"))]
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files if f.name != "model_card.py"
             for n, line in enumerate(f.read_text().splitlines(), 1) if re.search(r"\binfo\.get\(", line)]
    assert len(files) > 50
    assert not found, "read the model card (precipdiff.model_card) instead:\n" + "\n".join(found)
