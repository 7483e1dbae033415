"""The files precipdiff writes besides NetCDF, Parquet and checkpoints, each written by its own code
path (issue #24, item 4): the HTML report, a JSON report, a plotly figure, a CSV table and the DDP
hand-off files of ``training/launch.py`` (the job's inputs, rank 0's result).

:func:`write` writes version ``"old"`` or ``"new"`` of a kind into a folder. Run as a script, it
writes ``"new"`` with a pause at the ``publish:<file>`` point of ``tests/paused_run.py`` (the
temporary file half-written, ``WORKDIR/ready`` then written), for the test to kill it by PID::

    python tests/datasets/write_child.py KIND FOLDER WORKDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# kind -> the file whose publication the child pauses in
FILES = {"report": "evaluation_report.html", "json": "model_selection.json", "figure": "evaluation_psd.json",
         "csv": "correction_sampler_selection.csv", "ddp_job": "cond.npy", "ddp_result": "state_dict.pt"}


def write(kind: str, folder: Path, version: str) -> Path:
    """Write version ``old`` / ``new`` of ``kind`` into ``folder`` with precipdiff's own writer; the file of :data:`FILES`."""
    from precipdiff.datasets import atomic_files

    n = 20_000 if version == "new" else 10_000  # sizes differ: a mixed file is not the old one
    path = folder / FILES[kind]
    if kind == "report":
        atomic_files.TextDataset(filepath=str(path), fs_args={"open_args_save": {"encoding": "utf-8"}}).save(
            f"<html><body><p>{version}</p>{'<td>1.0</td>' * n}</body></html>")
    elif kind == "json":
        atomic_files.JSONDataset(filepath=str(path)).save({"version": version, "values": list(range(n))})
    elif kind == "figure":
        import plotly.graph_objects as go
        atomic_files.PlotlyJSONDataset(filepath=str(path)).save(go.Figure(go.Scatter(y=np.arange(n) * 0.5,
                                                                                    name=version)))
    elif kind == "csv":
        atomic_files.CSVDataset(filepath=str(path)).save(pd.DataFrame({"crps_fair": np.linspace(0, 1, n)}))
    elif kind == "ddp_job":
        from precipdiff.training.launch import write_job
        rng = np.random.default_rng(0 if version == "old" else 1)
        write_job(folder, rng.standard_normal((n // 100, 2, 16, 16)).astype(np.float32),
                  rng.standard_normal((n // 100, 1, 16, 16)).astype(np.float32),
                  pd.DataFrame({"sample_index": [0], "row": [0], "col": [0]}), {"epochs": 1}, objective="edm",
                  checkpoint_dir=None, seed=0)
    elif kind == "ddp_result":
        import torch
        from precipdiff.training.launch import write_result
        from precipdiff.training.loop import TrainResult
        state = {"w": torch.arange(n, dtype=torch.float32)}
        write_result(folder, TrainResult(None, {"objective": "edm"}, state, pd.DataFrame({"epoch": [1]}), {}))
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(FILES)}")
    return path


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from tests.paused_run import _pause, install

    kind, folder, workdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    install(f"publish:{FILES[kind]}", _pause(workdir))
    write(kind, folder, "new")
