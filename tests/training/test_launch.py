"""torchrun launcher: 2 Gloo worker processes give the weights of one in-process run."""

import torch

from precipdiff.training.launch import train_distributed
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
