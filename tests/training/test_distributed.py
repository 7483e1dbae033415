"""DDP with 2 Gloo processes on CPU: same gradients as one process on the same global batch; same train()."""

import os
import socket

import torch
import torch.multiprocessing as mp
from tests.training.conftest import TINY, make_problem

from precipdiff.nn import EDMLoss, build_model, model_config
from precipdiff.training import resolve_config, train
from precipdiff.training.distributed import DistributedContext, init_distributed, shutdown, wrap_model
from precipdiff.training.data import draw_batch, prepare_data
from precipdiff.training.distributed import rank_slice
from precipdiff.training.step import batch_loss

BATCH = 5  # odd on purpose: ranks get 3 and 2 samples


def _model_and_batch():
    """A model with all weights random (no zero-init branches) and a global EDM batch, both seeded."""
    torch.manual_seed(0)
    model = build_model(model_config("edm", 2, TINY["model"], cond_mean=[0, 0], cond_std=[1, 1],
                                     residual_scale=1.0, sigma_data=0.8))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    cfg = resolve_config(TINY)
    data = prepare_data(*make_problem(), cfg)
    edm_loss = EDMLoss(sigma_data=0.8)
    batch = draw_batch(data, torch.Generator().manual_seed(1), BATCH, wet_weighting=True, augment=True,
                       edm_loss=edm_loss)
    return model, batch, edm_loss


def _gradients(ctx: DistributedContext) -> dict[str, torch.Tensor]:
    model, batch, edm_loss = _model_and_batch()
    ddp = wrap_model(model, ctx)  # keep a reference: DDP's gradient hooks live as long as the wrapper
    loss, _ = batch_loss(ddp, batch.slice(rank_slice(BATCH, ctx)), ctx, objective="edm", edm_loss=edm_loss)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    grads = _gradients(ctx)
    result = train(*make_problem(), dict(TINY, batch_size=BATCH), objective="edm", checkpoint_dir=out, seed=2,
                   progress=False)
    torch.save({"grads": grads, "state_dict": result.state_dict, "val_loss": result.history["val_loss"].tolist()},
               os.path.join(out, f"rank{rank}.pt"))
    shutdown(ctx)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = _gradients(DistributedContext())
    for name, g in single.items():
        assert g.abs().sum() > 0, name
        for r in ranks:
            torch.testing.assert_close(r["grads"][name], g, rtol=1e-4, atol=1e-6)
    reference = train(*make_problem(), dict(TINY, batch_size=BATCH), objective="edm", seed=2, progress=False)
    for name, w in reference.state_dict.items():
        assert torch.equal(ranks[0]["state_dict"][name], ranks[1]["state_dict"][name]), name  # DDP keeps ranks equal
        torch.testing.assert_close(ranks[0]["state_dict"][name], w, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "latest.pt").exists()  # written by rank 0
    assert all(v == v for v in ranks[0]["val_loss"]) and all(v != v for v in ranks[1]["val_loss"])
