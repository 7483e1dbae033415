"""Resumable training checkpoints: a plain ``state_dict``-style dict, written atomically.

Everything is a tensor, number, string, or a list/dict of those, so it loads with
``torch.load(path, weights_only=True)``. Contents (:func:`capture_rng` for the RNG part):

``step``, ``model``, ``ema``, ``optimizer``, ``scheduler`` (state_dicts), ``rng`` (torch CPU, CUDA,
numpy, python and the training generator), ``history`` (column → list), ``epoch_accum`` (the
running sums of the current epoch), ``model_config``, ``fingerprint`` (of config + data).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from precipdiff.atomic import atomic_write

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
