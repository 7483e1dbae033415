"""EMA decay, half-life in samples and ramp-up."""

import pytest
import torch

from precipdiff.nn.ema import EMA


def _param(value: float) -> torch.nn.Linear:
    lin = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(lin.weight, value)
    return lin


def test_fixed_decay():
    model = _param(0.0)
    ema = EMA(model, decay=0.9)
    torch.nn.init.constant_(model.weight, 1.0)
    ema.update(model, batch_size=4, samples_seen=4)
    ema.update(model, batch_size=4, samples_seen=8)
    assert ema.module.weight.item() == pytest.approx(1 - 0.9**2)  # 0.19


def test_halflife_in_samples_and_rampup():
    ema = EMA(_param(0.0), halflife=100, rampup=None)
    assert ema.beta(batch_size=100, samples_seen=10_000) == pytest.approx(0.5)  # one half-life per update
    assert ema.beta(batch_size=50, samples_seen=10_000) == pytest.approx(0.5**0.5)
    ramped = EMA(_param(0.0), halflife=100, rampup=0.05)
    assert ramped.beta(batch_size=10, samples_seen=400) == pytest.approx(0.5**0.5)  # h = 0.05 × 400 = 20
    assert ramped.beta(batch_size=10, samples_seen=10_000) == pytest.approx(0.5**0.1)  # h capped at 100


def test_ema_copy_is_frozen_and_state_dict_round_trips():
    ema = EMA(_param(2.0), decay=0.5)
    assert not any(p.requires_grad for p in ema.module.parameters())
    other = EMA(_param(0.0), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.module.weight.item() == 2.0
