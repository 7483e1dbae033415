"""Run :func:`~precipdiff.training.loop.train` on several processes with ``torchrun`` (DDP).

The Kedro node stays one process (one MLflow run, one catalog): it writes its inputs to a
temporary folder, launches ``torchrun --standalone --nproc_per_node=N -m precipdiff.training.launch
<folder>``, and reads back what rank 0 wrote (a ``state_dict`` loaded with ``weights_only=True``,
the JSON model config, the history). Every hand-off file is written atomically
(:func:`precipdiff.atomic.atomic_write`): a process killed while writing leaves the previous file or none. Each worker runs the very same :func:`train` (NCCL on GPUs,
Gloo on CPU), so multi-GPU and single-process training are one code path.

Multi-node: run the worker module yourself on every node with torchrun's rendezvous options
(``torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=host:29400
-m precipdiff.training.launch <shared folder>``) on a folder written by :func:`write_job`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from precipdiff.atomic import atomic_write, pid_alive
from precipdiff.nn.residual import build_model
from precipdiff.training.loop import TrainResult, train

log = logging.getLogger(__name__)
JOB_PREFIX = "precipdiff-ddp-"  # job folders: <tmp>/precipdiff-ddp-<pid of the Kedro process>-<random>


def write_job(folder: Path, cond, residual, patches: pd.DataFrame, config: dict, *, objective: str,
              checkpoint_dir, seed: int) -> None:
    """Inputs of one training job, readable by every worker (memory-mapped arrays)."""
    _save_array(folder / "cond.npy", cond)
    _save_array(folder / "residual.npy", residual)
    atomic_write(folder / "patches.parquet", patches.to_parquet)
    job = {"config": config, "objective": objective, "seed": int(seed),
           "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir else None}
    atomic_write(folder / "job.json", lambda tmp: tmp.write_text(json.dumps(job, default=str)))


def write_result(folder: Path, result: TrainResult) -> None:
    """What rank 0 hands back: the ``state_dict``, the model config and normalisation, the history."""
    atomic_write(folder / "state_dict.pt", lambda tmp: torch.save(result.state_dict, tmp))
    meta = {"model_config": result.model_config, "normalisation": result.normalisation}
    atomic_write(folder / "result.json", lambda tmp: tmp.write_text(json.dumps(meta, default=float)))
    atomic_write(folder / "history.parquet", result.history.to_parquet)


def _save_array(path: Path, array) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to the temporary name
            np.save(f, np.ascontiguousarray(array))

    atomic_write(path, write)


def run_worker(folder: Path) -> None:
    """Worker entry point: train on this rank; rank 0 writes the result into ``folder``."""
    job = json.loads((folder / "job.json").read_text())
    result = train(np.load(folder / "cond.npy", mmap_mode="r"), np.load(folder / "residual.npy", mmap_mode="r"),
                   pd.read_parquet(folder / "patches.parquet"), job["config"], objective=job["objective"],
                   checkpoint_dir=job["checkpoint_dir"], seed=job["seed"], progress=True)
    if int(os.environ.get("RANK", "0")) == 0:
        write_result(folder, result)


def train_distributed(cond, residual, patches: pd.DataFrame, config: dict, *, objective: str,
                      checkpoint_dir, seed: int, nproc_per_node: int) -> TrainResult:
    """:func:`train` on ``nproc_per_node`` local processes launched by ``torchrun``."""
    remove_stale_jobs()
    with tempfile.TemporaryDirectory(prefix=f"{JOB_PREFIX}{os.getpid()}-") as tmp:
        folder = Path(tmp)
        write_job(folder, cond, residual, patches, config, objective=objective,
                  checkpoint_dir=checkpoint_dir, seed=seed)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={int(nproc_per_node)}", "-m", "precipdiff.training.launch", str(folder)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not (folder / "state_dict.pt").exists():
            raise RuntimeError(f"torchrun training failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        meta = json.loads((folder / "result.json").read_text())
        state = torch.load(folder / "state_dict.pt", map_location="cpu", weights_only=True)
        model = build_model(meta["model_config"])
        model.load_state_dict(state)
        return TrainResult(model=model, model_config=meta["model_config"], state_dict=state,
                           history=pd.read_parquet(folder / "history.parquet"),
                           normalisation=meta["normalisation"])


def remove_stale_jobs(root: str | Path | None = None) -> list[Path]:
    """Delete the job folders (a copy of the training arrays) of Kedro processes no longer running.

    A process killed outright (SIGKILL, power loss) during :func:`train_distributed` cannot remove
    its temporary job folder; the next call does. Folders of running processes are kept however
    old (a training may run for days), and so are those without a pid in their name.
    """
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{JOB_PREFIX}*"):
        match = re.match(rf"{re.escape(JOB_PREFIX)}(\d+)-", folder.name)
        if match and folder.is_dir() and not pid_alive(int(match[1])):
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the job folder %s of process %s, no longer running", folder, match[1])
            removed.append(folder)
    return removed


if __name__ == "__main__":
    run_worker(Path(sys.argv[1]))
