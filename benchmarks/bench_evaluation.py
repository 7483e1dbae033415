"""Cost of the PrecipDiff chain per member-hour on this machine (sizes the evaluation defaults).

Builds the correction and downscaling diffusion models of the CPU profile (conf/base
``parameters_training.yml``, random weights: the cost does not depend on them) on the default
Seattle grid (20 × 20 cells at 0.1°, 200 × 200 at 0.01°) and times ``run_chain`` for each
(sampler steps, batch size, precision). Prints wall and process CPU seconds per member-hour; on a
busy machine CPU / threads is the better estimate of the unloaded wall time.

    .venv/bin/python benchmarks/bench_evaluation.py                      # 2 hours × 8 members, steps 4 and 8
    .venv/bin/python benchmarks/bench_evaluation.py --steps 4 6 --precision fp32 bf16
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from precipdiff.inference.chain import ChainSettings, run_chain
from precipdiff.nn import build_model, model_config
from precipdiff.model_card import Conditioning, ModelCard, TrainedModel

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"


def profile_model(stage: str) -> TrainedModel:
    """A random-weight diffusion model with the ``stage``'s CPU-profile U-Net and static channels."""
    params = OmegaConf.to_container(OmegaConf.load(CONF / "parameters_training.yml"))[f"{stage}_training"]
    channels = ["base", *params["static_channels"]]
    config = model_config("edm", len(channels), params["diffusion"]["model"], cond_mean=[0.0] * len(channels),
                          cond_std=[1.0] * len(channels), residual_scale=1.0, sigma_data=1.0)
    card = ModelCard(stage=stage, objective="edm", residual_base="input", sampler=params["sampler"],
                     conditioning=Conditioning(tuple(params["static_channels"])))
    return TrainedModel(config, build_model(config).eval(), card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=2)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--precision", nargs="+", default=["fp32"])
    args = parser.parse_args()
    torch.manual_seed(0)
    corr, down = profile_model("correction"), profile_model("downscaling")
    lat_c, lon_c = 46.55 + 0.1 * np.arange(20), -123.45 + 0.1 * np.arange(20)
    lat_f, lon_f = 46.505 + 0.01 * np.arange(200), -123.495 + 0.01 * np.arange(200)
    sat = np.log1p(np.random.default_rng(0).gamma(0.5, 2.0, (args.hours, 20, 20))).astype(np.float32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    print(f"{'steps':>5} {'NFE':>4} {'batch':>5} {'precision':>9} {'wall s/member-h':>16} "
          f"{'cpu/threads s/member-h':>23}")
    for precision in args.precision:
        for batch in args.batch:
            for steps in args.steps:
                settings = ChainSettings(n_members=args.members, seed=0, sampler={"num_steps": steps},
                                         batch_size=batch, precision=precision)
                keys = list(range(args.hours))
                run_chain(sat[:1], (lat_c, lon_c), (lat_f, lon_f), keys[:1], corr, down,
                          ChainSettings(n_members=1, sampler={"num_steps": 1}, batch_size=batch, precision=precision))
                t0, c0 = time.perf_counter(), time.process_time()
                run_chain(sat, (lat_c, lon_c), (lat_f, lon_f), keys, corr, down, settings)
                n = args.hours * args.members
                wall, cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n / torch.get_num_threads()
                nfe = 2 * steps - 1 if settings.sampler.get("solver", "heun") == "heun" else steps
                print(f"{steps:5d} {nfe:4d} {batch:5d} {precision:>9} {wall:16.2f} {cpu:23.2f}", flush=True)


if __name__ == "__main__":
    main()
