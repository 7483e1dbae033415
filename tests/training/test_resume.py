"""Interrupted + resumed training reaches bit-exactly the weights of an uninterrupted run (CPU)."""

import pytest
import torch
from tests.training.conftest import TINY

from precipdiff.training import loop, train
from precipdiff.training.checkpoint import checkpoint_path, load_checkpoint


class _Crash(Exception):
    pass


@pytest.mark.parametrize(("objective", "bf16"), [("edm", False), ("regression", False), ("edm", True)])
def test_resume_is_bit_exact(problem, tmp_path, monkeypatch, objective, bf16):
    cfg = dict(TINY, checkpoint_every=2, cpu_bf16=bf16,
               model=dict(TINY["model"], dropout=0.1))  # dropout: the global torch RNG is restored too
    straight = train(*problem, cfg, objective=objective, checkpoint_dir=tmp_path / "straight", seed=3,
                     progress=False)

    real_save = loop.save_checkpoint
    saves = []

    def crash_after_second_save(state, path):
        real_save(state, path)
        saves.append(state["step"])
        if len(saves) == 2:  # step 4: mid-way through epoch 2
            raise _Crash

    monkeypatch.setattr(loop, "save_checkpoint", crash_after_second_save)
    with pytest.raises(_Crash):
        train(*problem, cfg, objective=objective, checkpoint_dir=tmp_path / "resumed", seed=3, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(checkpoint_path(tmp_path / "resumed"))["step"] == 4
    resumed = train(*problem, cfg, objective=objective, checkpoint_dir=tmp_path / "resumed", seed=3,
                    progress=False)

    for (name, a), b in zip(straight.state_dict.items(), resumed.state_dict.values(), strict=True):
        assert torch.equal(a, b), name
    final = [load_checkpoint(checkpoint_path(tmp_path / d)) for d in ("straight", "resumed")]
    for key in ("model", "ema"):
        for name, a in final[0][key].items():
            assert torch.equal(a, final[1][key][name]), (key, name)
    assert straight.history["train_loss"].tolist() == resumed.history["train_loss"].tolist()
    assert straight.history["val_loss"].tolist() == resumed.history["val_loss"].tolist()


def test_changed_config_starts_afresh(problem, tmp_path, caplog):
    train(*problem, TINY, objective="regression", checkpoint_dir=tmp_path, progress=False)
    again = train(*problem, dict(TINY, lr=1e-3), objective="regression", checkpoint_dir=tmp_path, progress=False)
    assert "different run" in caplog.text and "'lr'" in caplog.text
    assert again.history["step"].tolist() == [3, 6]


def test_finished_run_returns_without_training(problem, tmp_path):
    first = train(*problem, TINY, objective="edm", checkpoint_dir=tmp_path, progress=False)
    second = train(*problem, TINY, objective="edm", checkpoint_dir=tmp_path, progress=False)
    for a, b in zip(first.state_dict.values(), second.state_dict.values(), strict=True):
        assert torch.equal(a, b)
    assert first.history["train_loss"].tolist() == second.history["train_loss"].tolist()
