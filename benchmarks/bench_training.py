"""Training throughput and FLOP efficiency of the residual EDM U-Net on this machine.

Prints, per profile (CPU default and paper/GPU scale) and precision (fp32, bf16 autocast):
step time, samples/s, forward GFLOP per sample (``torch.utils.flop_counter``), achieved
GFLOP/s with training ≈ 3 × forward, that as a fraction of the measured matmul peak of the same
precision, and peak resident memory (``ru_maxrss``); plus the sampling cost of one 200×200 member.

    .venv/bin/python benchmarks/bench_training.py            # all profiles (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_training.py --quick    # CPU profile only, fewer steps
    .venv/bin/python benchmarks/bench_training.py --gpu-tflops 125   # only the derived GPU time per 1k steps

The GPU time is derived, not measured (no GPU here): training FLOPs per optimizer step of the
``--env gpu`` profile (3 × the counted forward FLOPs × its batch) over an assumed sustained
throughput (``--gpu-tflops``; 125 TFLOP/s is 40 % of an A100's 312 TFLOP/s dense bf16 peak).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import torch
from kedro.config import OmegaConfigLoader
from torch.utils.flop_counter import FlopCounterMode

from precipdiff.nn import EDMLoss, build_model, model_config
from precipdiff.nn.sampling import residual_sampler
from precipdiff.training.distributed import DistributedContext
from precipdiff.training.data import Batch
from precipdiff.training.step import batch_loss

COND_CHANNELS = 3  # e.g. transformed satellite intensity + two static fields
PROFILES = {
    "cpu": {"unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "attn_levels": [2]}, "patch": 64, "batch": 16},
    "paper": {"unet": {"base_channels": 128, "channel_mult": [1, 2, 2, 4], "attn_levels": [3]}, "patch": 128,
              "batch": 2},
}
REPO = Path(__file__).resolve().parents[1]


def gpu_estimate(tflops: float) -> None:
    """Derived seconds per 1k optimizer steps of each stage of the ``--env gpu`` profile (its U-Net, global
    batch and schedule from ``conf/gpu``, patch sizes from ``preprocessing.patches``) at ``tflops`` sustained."""
    loader = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="gpu",
                               merge_strategy={"parameters": "soft"})  # as settings.py
    params = loader["parameters"]
    patches = {"correction": "coarse", "downscaling": "fine"}
    print(f"GPU profile, derived at {tflops:g} TFLOP/s sustained (training ≈ 3 × forward FLOPs):")
    for stage, grid in patches.items():
        diffusion = params[f"{stage}_training"]["diffusion"]
        patch, batch = params["preprocessing"]["patches"][grid]["size"], diffusion["batch_size"]
        steps = diffusion["epochs"] * diffusion["steps_per_epoch"]
        gflop = forward_gflop(diffusion["model"], patch)
        per_1k = 3 * gflop * batch * 1000 / (tflops * 1e3)
        print(f"  {stage:12} {patch}² × batch {batch}: {gflop:.1f} GFLOP forward per sample, "
              f"{3 * gflop * batch * 1000 / 1e6:.2f} PFLOP and {per_1k:.0f} s per 1k steps; "
              f"{steps:,} steps ≈ {per_1k * steps / 1000 / 3600:.1f} h per network")


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 6) -> float:
    """Best GFLOP/s of an ``n × n`` matmul in ``dtype`` (2 n³ FLOP each)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _model(unet: dict):
    torch.manual_seed(0)
    return build_model(model_config("edm", COND_CHANNELS, unet, cond_mean=[0.0] * COND_CHANNELS,
                                    cond_std=[1.0] * COND_CHANNELS, residual_scale=1.0, sigma_data=1.0))


def forward_gflop(unet: dict, patch: int) -> float:
    """Forward GFLOP per sample (batch of 2, halved), counted by FlopCounterMode."""
    model = _model(unet)
    x, cond = torch.randn(2, 1, patch, patch), torch.randn(2, COND_CHANNELS, patch, patch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.ones(2), cond)
    return counter.get_total_flops() / 2 / 1e9


def step_seconds(unet: dict, patch: int, batch: int, *, bf16: bool, channels_last: bool, steps: int,
                 warmup: int = 2) -> tuple[float, float]:
    """Median (wall, process-CPU) seconds of a training step (loss, backward, clip, AdamW) after warm-up.

    CPU time divided by the thread count is a contention-robust lower bound of the wall time on an
    otherwise idle machine (other processes on the same cores inflate wall time, not CPU time).
    """
    model = _model(unet)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = EDMLoss(sigma_data=1.0)
    gen = torch.Generator().manual_seed(0)
    data = Batch(torch.randn(batch, COND_CHANNELS, patch, patch), torch.randn(batch, 1, patch, patch),
                 loss_fn.sample_sigma(batch, gen), torch.randn(batch, 1, patch, patch))
    ctx, times, cpu = DistributedContext(), [], []
    for i in range(steps + warmup):
        t0, c0 = time.perf_counter(), time.process_time()
        loss, _ = batch_loss(model, data, ctx, objective="edm", edm_loss=loss_fn, autocast=bf16,
                             channels_last=channels_last)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return _median(times), _median(cpu)


def sampling_seconds(unet: dict, size: int = 200, num_steps: int = 18, bf16: bool = False) -> float:
    """Wall time to sample one ``size × size`` member with ``num_steps`` Heun steps (2N − 1 evaluations)."""
    model = _model(unet).eval()
    cond = torch.randn(1, COND_CHANNELS, size, size)
    sample = residual_sampler(model, {"num_steps": num_steps}, "cpu", "bf16" if bf16 else "fp32")
    latents = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    return _timed(lambda: sample(cond, latents))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU profile only, 3 timed steps")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all)")
    parser.add_argument("--gpu-tflops", type=float, default=None,
                        help="only print the GPU profile's derived time per 1k steps at this sustained TFLOP/s")
    args = parser.parse_args()
    if args.gpu_tflops:
        gpu_estimate(args.gpu_tflops)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 3 if args.quick else args.steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    print(f"{'profile':8} {'precision':16} {'ms/step':>8} {'cpu ms/thr':>10} {'samples/s':>9} {'GFLOP/smp':>9} "
          f"{'GFLOP/s':>8} {'of peak':>7} {'maxrss MB':>9}")
    for name, prof in PROFILES.items():
        if args.quick and name != "cpu":
            continue
        gflop = forward_gflop(prof["unet"], prof["patch"])
        for prec, bf16, cl in [("fp32", False, False), ("fp32 chan_last", False, True), ("bf16", True, False)]:
            sec, cpu = step_seconds(prof["unet"], prof["patch"], prof["batch"], bf16=bf16, channels_last=cl,
                                    steps=steps if name == "cpu" else 1, warmup=2 if name == "cpu" else 1)
            sps = prof["batch"] / sec
            achieved = 3 * gflop * sps
            print(f"{name:8} {prec:16} {sec * 1e3:8.0f} {cpu / torch.get_num_threads() * 1e3:10.0f} {sps:9.1f} "
                  f"{gflop:9.2f} {achieved:8.1f} {achieved / peak[prec[:4]]:7.1%} {peak_rss_mb():9.0f}")
    if not args.quick:
        for bf16 in (False, True):
            sec = sampling_seconds(PROFILES["cpu"]["unet"], bf16=bf16)
            print(f"sampling (cpu profile, 200×200, 18 Heun steps = 35 evaluations, {'bf16' if bf16 else 'fp32'}): "
                  f"{sec:.1f} s per member")
    print(f"profiles: { {k: dict(v['unet'], patch=v['patch'], batch=v['batch']) for k, v in PROFILES.items()} }")


if __name__ == "__main__":
    main()
