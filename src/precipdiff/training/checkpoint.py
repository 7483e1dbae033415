"""Resumable training checkpoints: a plain ``state_dict``-style dict, written atomically.

:func:`checkpoint_state` collects a run's state, :func:`save_checkpoint` writes it and
:func:`resume` loads it back into a fresh run when its :func:`run_fingerprint` (config, objective,
seed, data) matches — so calling ``train`` again with the same ``checkpoint_dir`` continues
bit-exactly on CPU.

Everything is a tensor, number, string, or a list/dict of those, so it loads with
``torch.load(path, weights_only=True)``. Contents (:func:`capture_rng` for the RNG part):

``step``, ``model``, ``ema``, ``optimizer``, ``scheduler`` (state_dicts), ``rng`` (torch CPU, CUDA,
numpy, python and the training generator), ``history`` (column → list), ``epoch_accum`` (the
running sums of the current epoch), ``model_config``, ``train_config``, ``fingerprint`` (of config + data).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch

from precipdiff.atomic import atomic_write
from precipdiff.training.data import PatchData
from precipdiff.training.state import TrainJob, TrainState

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "latest.pt"


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    """The single, latest checkpoint file in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    atomic_write(path, lambda tmp: torch.save(state, tmp), hidden=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict | None:
    """The checkpoint dict at ``path`` (``weights_only=True``), or ``None`` if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(f"checkpoint {path} could not be read ({err}); delete it to start afresh") from err


def capture_rng(generator: torch.Generator) -> dict:
    """All random states a training step consumes, as tensors and plain numbers."""
    keys, pos, has_gauss, cached = np.random.get_state()[1:]
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(py_version), "state": list(py_state), "gauss": py_gauss},
        "generator": generator.get_state(),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch_cpu"])
    if state["torch_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    generator.set_state(state["generator"])


def run_fingerprint(cfg: dict, objective: str, seed: int, data: PatchData, stats: dict) -> str:
    """Hash of what determines the run: config, objective, seed, shapes, patch table, data statistics."""
    h = hashlib.sha256(json.dumps([cfg, objective, seed, data.cond.shape, data.residual.shape, stats],
                                  sort_keys=True, default=str).encode())
    for part in (data.train, data.val):
        for key in sorted(part):
            h.update(np.ascontiguousarray(part[key]).tobytes())
    return h.hexdigest()


def checkpoint_state(run: TrainState, job: TrainJob) -> dict:
    """Everything :func:`resume` needs, as a ``weights_only``-loadable dict."""
    return {
        "step": run.step,
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else {},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": capture_rng(run.generator),
        "history": run.history,
        "epoch_accum": dict(run.accum),
        "model_config": job.model_config,
        "train_config": json.loads(json.dumps(job.cfg, default=str)),
        "fingerprint": job.fingerprint,
    }


def resume(run: TrainState, job: TrainJob) -> None:
    """Load the checkpoint into ``run`` if it exists and matches the job's fingerprint; else start afresh."""
    state = load_checkpoint(job.checkpoint) if job.checkpoint is not None else None  # on CPU: RNG states
    if state is None:
        return
    if state.get("fingerprint") != job.fingerprint:
        old = state.get("train_config", {})
        new = json.loads(json.dumps(job.cfg, default=str))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        log.warning("checkpoint %s is from a different run (config keys differing: %s; else data, seed or "
                    "objective); starting afresh, it will be overwritten", job.checkpoint, changed or "none")
        return
    run.model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], run.generator)
    run.step, run.history, run.accum = int(state["step"]), state["history"], dict(state["epoch_accum"])
    log.info("resumed from %s at step %d of %d", job.checkpoint, run.step, job.total_steps)
