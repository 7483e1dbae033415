"""Fast sampling: skill (fair CRPS) and cost of the chain for a number of sampler steps.

On the validation split of a trained project, runs the full chain (correction → upsample →
downscaling) for each ``--steps`` value and prints steps, solver, fair CRPS (mm/h, Ferro 2014, vs the
1 km radar), wall time, throughput (km² of one member-hour per second) and the U-Nets' achieved
FLOP/s (``torch.utils.flop_counter.FlopCounterMode``) against this machine's measured matmul peak;
marks the Pareto front (no other setting both faster and better) and the suggested default (the
fastest setting on the front within ``--tolerance`` of the best CRPS); then repeats the default with
bf16 autocast on CPU.

Create the trained default-config project first (CPU profile; 6 min 15 s on this idle 2-core machine):

    kedro run --pipelines=training                   # in the project (or a copy of it)
    .venv/bin/python benchmarks/bench_sampling.py --project . --hours 6 --members 4

``--crop N`` keeps the first N × N 0.1° cells (N × 10 km squared) to shorten the run on a slow or
busy machine; throughput and FLOP/s hardly depend on it, the CRPS is then that of the sub-domain.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import mlflow
import numpy as np
import torch
import xarray as xr
import yaml
from torch.utils.flop_counter import FlopCounterMode

from precipdiff.data import transforms
from precipdiff.inference import chain
from precipdiff.registry import find_version, load_version, resolve_version
from precipdiff.verification import CRPSScores

EARTH_KM_PER_DEG = 111.195  # km per degree of latitude (mean Earth radius 6371 km)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n × n`` matmul in ``dtype`` (2 n³ FLOP each), all threads."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def load_models(project: Path, alias: str | None):
    """Both diffusion models: the alias if set and held, else the latest version."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    models = []
    for name in ("precipdiff-correction", "precipdiff-downscaling"):
        held = find_version(name, alias=alias) if alias else None
        models.append(load_version(held or resolve_version(name), alias))
    return models


def validation_data(project: Path, n_hours: int, crop: int | None):
    """Satellite (transformed) and radar (mm/h) of the wettest validation hours."""
    catalog = yaml.safe_load((project / "conf/base/catalog.yml").read_text())
    coarse = xr.open_dataset(project / catalog["coarse_model_input"]["filepath"]).load()
    fine = xr.open_dataset(project / catalog["fine_model_input"]["filepath"]).load()
    val = coarse["split"].values == "validation"
    wet = coarse["radar"].values[val].mean(axis=(1, 2))
    times = np.sort(coarse["time"].values[val][np.argsort(wet)[::-1][:n_hours]])
    coarse, fine = coarse.sel(time=times), fine.sel(time=times)
    if crop:
        coarse, fine = coarse.isel(lat=slice(0, crop), lon=slice(0, crop)), fine.isel(lat=slice(0, 10 * crop),
                                                                                  lon=slice(0, 10 * crop))
    obs = transforms.inverse_transform(fine["radar"].values, coarse.attrs["transform"])
    return coarse, fine, obs


def network_gflop(model, h: int, w: int) -> float:
    """GFLOP of one U-Net call on one ``h × w`` sample."""
    cond = torch.zeros(1, model.model.cond_mean.numel(), h, w)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.model.precond(torch.zeros(1, 1, h, w), torch.ones(1), cond)
    return counter.get_total_flops() / 1e9


def forward_speedup(model, h: int, w: int, batch: int, repeats: int = 4) -> float:
    """fp32 time / bf16-autocast time of one U-Net call, alternating the two (best of ``repeats``)."""
    x, sigma = torch.randn(batch, 1, h, w), torch.ones(batch)
    cond = torch.randn(batch, model.model.cond_mean.numel(), h, w)
    best = {True: np.inf, False: np.inf}
    with torch.inference_mode():
        for _ in range(repeats):
            for bf16 in (False, True):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    t0 = time.perf_counter()
                    model.model.precond(x, sigma, cond)
                    best[bf16] = min(best[bf16], time.perf_counter() - t0)
    return best[False] / best[True]


def run(coarse, fine, obs, models, settings: chain.ChainSettings):
    """Fair CRPS (mm/h) and wall time (s) of the chain over all hours."""
    sat = coarse["satellite"].values
    keys = chain.hour_keys(coarse["time"].values)
    t0 = time.perf_counter()
    _, members = chain.run_chain(sat, (coarse.lat.values, coarse.lon.values), (fine.lat.values, fine.lon.values),
                                 keys, *models, settings)
    seconds = time.perf_counter() - t0
    crps = CRPSScores()
    crps.accum(transforms.inverse_transform(members, coarse.attrs["transform"]), obs)
    return crps.compute()["crps_fair"], seconds


def pareto(rows: list[dict]) -> None:
    """Mark rows not dominated in (seconds, crps)."""
    for r in rows:
        r["pareto"] = not any(o["seconds"] <= r["seconds"] and o["crps"] <= r["crps"]
                              and (o["seconds"] < r["seconds"] or o["crps"] < r["crps"]) for o in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, default=Path.cwd(), help="trained project (mlflow.db, data/)")
    ap.add_argument("--hours", type=int, default=6, help="wettest validation hours")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 12, 18, 32])
    ap.add_argument("--solver", default="heun", choices=("heun", "euler"))
    ap.add_argument("--crop", type=int, default=None, help="keep N × N 0.1° cells")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--alias", default="champion")
    ap.add_argument("--tolerance", type=float, default=0.05, help="relative CRPS slack for the default")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    project = args.project.absolute()
    os.chdir(project)  # artifact locations in the store are relative to the project
    models = load_models(project, args.alias)
    coarse, fine, obs = validation_data(project, args.hours, args.crop)
    t, h, w = coarse["satellite"].shape
    lat = float(coarse.lat.mean())
    area_km2 = (10 * h * 0.01 * EARTH_KM_PER_DEG) * (10 * w * 0.01 * EARTH_KM_PER_DEG * np.cos(np.radians(lat)))
    tile = 256
    gflop = [network_gflop(models[0], min(h, tile), min(w, tile)), network_gflop(models[1], min(10 * h, tile),
                                                                                 min(10 * w, tile))]
    n_tiles = [len(chain.tile_layout(n, tile, 32)[1]) for n in (h, w, 10 * h, 10 * w)]
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"project {project}: {t} validation hours, {args.members} members, coarse {h}×{w}, fine {10 * h}×{10 * w} "
          f"({area_km2:.0f} km²), {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"U-Net GFLOP per call and sample: correction {gflop[0]:.4f}, downscaling {gflop[1]:.3f}; "
          f"matmul peak fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")

    warm = chain.ChainSettings(n_members=1, sampler={"num_steps": 2}, tile=tile, batch_size=args.batch_size)
    run(coarse.isel(time=[0]), fine.isel(time=[0]), obs[:1], models, warm)  # warm-up (allocations, kernels)
    rows = []
    for steps in args.steps:
        settings = chain.ChainSettings(n_members=args.members, sampler={"num_steps": steps, "solver": args.solver},
                                       tile=tile, batch_size=args.batch_size, precision="fp32")
        crps, seconds = run(coarse, fine, obs, models, settings)
        calls = 2 * steps - 1 if args.solver == "heun" else steps
        samples = t * args.members
        flop = calls * samples * (gflop[0] * n_tiles[0] * n_tiles[1] + gflop[1] * n_tiles[2] * n_tiles[3])
        rows.append({"steps": steps, "crps": crps, "seconds": seconds, "gflops": flop / seconds,
                     "km2_s": area_km2 * samples / seconds})
        print(f"  steps {steps:3d}: CRPS {crps:.4f} mm/h, {seconds:7.1f} s", flush=True)
    pareto(rows)
    best = min(r["crps"] for r in rows)
    default = min((r for r in rows if r["pareto"] and r["crps"] <= best * (1 + args.tolerance)),
                  key=lambda r: r["seconds"])
    print(f"\n| steps | solver | fair CRPS (mm/h) | wall time (s) | km²/s per member | GFLOP/s | % of fp32 peak | Pareto |")
    print("|---:|---|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        mark = "yes" + (" (default)" if r is default else "") if r["pareto"] else ""
        print(f"| {r['steps']} | {args.solver} | {r['crps']:.4f} | {r['seconds']:.1f} | {r['km2_s']:.0f} | "
              f"{r['gflops']:.1f} | {100 * r['gflops'] / peak['fp32']:.1f} | {mark} |")
    print(f"\nsuggested default: num_steps = {default['steps']} (fastest Pareto setting within "
          f"{100 * args.tolerance:.0f} % of the best CRPS {best:.4f} mm/h)")
    if not args.no_bf16:
        settings = chain.ChainSettings(n_members=args.members, sampler={"num_steps": default["steps"],
                                       "solver": args.solver}, tile=tile, batch_size=args.batch_size, precision="bf16")
        crps, seconds = run(coarse, fine, obs, models, settings)
        speedup = forward_speedup(models[1], min(10 * h, tile), min(10 * w, tile), args.batch_size)
        print(f"bf16 autocast on CPU at {default['steps']} steps: CRPS {crps:.4f} mm/h ({crps - default['crps']:+.4f}), "
              f"chain {seconds:.1f} s ({default['seconds'] / seconds:.2f}× the fp32 speed); downscaling U-Net "
              f"forward, fp32 and bf16 interleaved (best of 4, immune to load drifts): {speedup:.2f}× faster in bf16")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
