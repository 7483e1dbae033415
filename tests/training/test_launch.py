"""torchrun launcher: 2 Gloo worker processes give the weights of one in-process run."""

import os
import subprocess
import sys

import torch

from precipdiff.training.launch import JOB_PREFIX, remove_stale_jobs, train_distributed
from precipdiff.training.loop import train
from tests.training.conftest import TINY


def test_torchrun_two_processes_match_in_process(problem, tmp_path):
    cond, residual, patches = problem
    kwargs = {"objective": "regression", "seed": 3}
    single = train(cond, residual, patches, TINY, checkpoint_dir=None, progress=False, **kwargs)
    ddp = train_distributed(cond, residual, patches, TINY, checkpoint_dir=tmp_path / "ckpt",
                            nproc_per_node=2, **kwargs)
    assert (tmp_path / "ckpt").exists()  # rank 0 wrote the resumable checkpoint
    for name, value in single.state_dict.items():
        torch.testing.assert_close(ddp.state_dict[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert list(ddp.history.epoch) == list(single.history.epoch)


def test_job_folders_of_killed_processes_are_removed(tmp_path):
    """A Kedro process killed during train_distributed leaves its job folder (a copy of the training
    arrays); the next call removes it, but not the folders of running processes (issue #13 item 4)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folders = {name: tmp_path / f"{JOB_PREFIX}{pid}-x1y2" for name, pid in
               (("dead", int(dead.stdout)), ("running", os.getpid()))}
    for folder in folders.values():
        folder.mkdir()
        (folder / "cond.npy").write_bytes(b"arrays")
    (tmp_path / f"{JOB_PREFIX}no-pid").mkdir()
    assert remove_stale_jobs(tmp_path) == [folders["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folders["running"].name, f"{JOB_PREFIX}no-pid"])
