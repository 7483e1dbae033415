"""Models from the registry of the tiny trained project: by alias, version or run id, with clear errors."""

from __future__ import annotations

import pytest
import torch

from precipdiff.model_card import Registration
from precipdiff.nn.sampling import sample_members
from precipdiff.registry import ModelNotFoundError, load_version, resolve_version


def test_alias_version_and_run_id_find_the_same_version(registry):
    champion = resolve_version("precipdiff-correction", alias="champion", client=registry)
    assert str(champion.version) == "1"
    assert resolve_version("precipdiff-correction", version=1, client=registry).run_id == champion.run_id
    by_run = resolve_version("precipdiff-downscaling", alias=None, run_id=champion.run_id, client=registry)
    assert by_run.name == "precipdiff-downscaling" and by_run.run_id == champion.run_id  # one training run, both models


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("precipdiff-correction", {"alias": "nope"}, "'precipdiff-correction' has no alias 'nope' (aliases: ["),
        ("precipdiff-correction", {"version": 7}, "'precipdiff-correction' has no version 7; versions: [1]"),
        ("precipdiff-correction", {"run_id": "abc"}, "no version logged by run 'abc'"),
        ("precipdiff-nowcast", {}, "no registered model 'precipdiff-nowcast'"),
    ],
)
def test_missing_model_alias_version_or_run_is_named(registry, name, kwargs, message):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_version(name, client=registry, **kwargs)
    assert message in str(info.value)


def test_loaded_model_records_where_it_came_from_and_samples(registry):
    mv = resolve_version("precipdiff-downscaling", alias="champion", client=registry)
    trained = load_version(mv, "champion")
    assert trained.card.stage == "downscaling" and trained.card.objective == "edm"
    assert trained.registered == Registration("precipdiff-downscaling", "1", mv.run_id, "champion")
    cond = torch.zeros(1, len(trained.card.channels), 8, 8)
    sample = sample_members(trained.model, cond, {"num_steps": 2}, [0, 1], [0], trained.card.grid)
    assert sample.shape == (1, 2, 1, 8, 8) and torch.isfinite(sample).all()
