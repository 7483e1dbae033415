"""Interrupted + resumed training reaches bit-exactly the weights of an uninterrupted run (CPU)."""

import os
import signal

import pytest
import torch
from tests import paused_run
from tests.training.conftest import TINY

from precipdiff import interrupts
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


def test_sigint_inside_a_checkpoint_write_keeps_the_previous_checkpoint_and_resume_is_exact(problem, tmp_path):
    """Issue #13 item 4: SIGINT (a real signal to this process) while the step-4 checkpoint is half
    written stops ``train`` with ``KeyboardInterrupt``; the published checkpoint is still the complete
    step-2 one and the temporary file is gone; training again resumes from step 2 to the weights of
    the uninterrupted run, bit for bit. (SIGKILL, in a ``kedro run``: tests/pipelines/test_killed_run.py.)"""
    cfg = dict(TINY, checkpoint_every=2)
    straight = train(*problem, cfg, objective="edm", checkpoint_dir=tmp_path / "straight", seed=3, progress=False)

    undo = paused_run.install("checkpoint:interrupted:4", lambda half_written: os.kill(os.getpid(), signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt, match="not saved"):
            train(*problem, cfg, objective="edm", checkpoint_dir=tmp_path / "interrupted", seed=3, progress=False)
        # nothing of the interrupt is left in this process (the next write would not publish)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not interrupts.pending()
    finally:
        undo()
        interrupts.reset()  # whatever happened, other tests start clean
    assert [p.name for p in (tmp_path / "interrupted").iterdir()] == ["latest.pt"]
    assert load_checkpoint(checkpoint_path(tmp_path / "interrupted"))["step"] == 2
    resumed = train(*problem, cfg, objective="edm", checkpoint_dir=tmp_path / "interrupted", seed=3, progress=False)
    for (name, a), b in zip(straight.state_dict.items(), resumed.state_dict.values(), strict=True):
        assert torch.equal(a, b), name


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
