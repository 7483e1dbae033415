"""A large tiled domain: do the overlaps keep the ensemble's statistics, and what does it cost?

    .venv/bin/python benchmarks/bench_tiling.py --project /path/to/trained/project \\
        [--cells 500] [--hours 2] [--members 4] [--tile 256] [--overlap 32] [--threads 2]

Generates ``--hours`` synthetic hours (the project's own generator and satellite error model,
``ingestion`` parameters) over a square box of ``--cells`` × ``--cells`` 0.01° cells centred on
the training box, samples the project's registered chain over it with windows of at most
``--tile`` cells (the 1 km grid is tiled, MultiDiffusion-style: one latent field, the denoiser
blended at every step) and compares, in mm/h at 1 km:

* the member spread (std across members), the wet fraction (R ≥ 0.1 mm/h) and the members' power
  spectrum over 2–10 km (64-cell patches, relative to the radar's in the same patches) in the
  **overlap bands** (cells two windows share) against the **window interiors** (ratios, target
  0.9–1.1), and the same ratios for **control bands** of the same width in the middle of each
  window (nothing is blended there: what the weather's own geography gives on so few hours), with
  the radar's wet-fraction ratio for both;
* the seam ratio (``verification.SeamStatistic``: mean |gradient| across the window starts and
  ends over that inside; 1 = no border);
* seconds of chain per hour and member (wall clock, ``--threads`` torch threads).

The domain leaves the training box (lat/lon channels are extrapolated): this measures the tiling,
not the skill. Prints a Markdown table and writes ``data/08_reporting/bench_tiling.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from compare_residual_base import load, open_project  # noqa: E402  (benchmarks/ is on sys.path)

from precipdiff.data import synthetic, transforms
from precipdiff.inference.chain import ChainSettings, hour_keys, run_chain, tile_layout
from precipdiff.verification import SeamStatistic, rapsd


def domain(params: dict, cells: int, hours: int):
    """Synthetic satellite (0.1°) and radar (0.01°) over ``cells`` 0.01° cells around the training box."""
    ing = params["ingestion"]
    box = ing["regions"][ing["region"]] if ing.get("region") else ing["box"]
    lat0, lon0 = (box["lat_min"] + box["lat_max"]) / 2, (box["lon_min"] + box["lon_max"]) / 2
    half = cells * 0.01 / 2
    big = {"lat_min": round(lat0 - half, 1), "lat_max": round(lat0 + half, 1),
           "lon_min": round(lon0 - half, 1), "lon_max": round(lon0 + half, 1)}
    return synthetic.generate(big, ing["period"]["start"], hours, int(ing["seed"]) + 99,
                              ing.get("synthetic", {}).get("radar"), ing.get("satellite_errors"))


def bands(n: int, tile: int, overlap: int) -> tuple[np.ndarray, list[int], list[int]]:
    """Per cell of an axis: True where two windows overlap; the window starts and ends."""
    size, starts = tile_layout(n, tile, overlap)
    shared = np.zeros(n, int)
    for s in starts:
        shared[s:s + size] += 1
    return shared > 1, starts[1:], [s + size for s in starts[:-1]]


def patch_psd(fields: np.ndarray, centres: list[tuple[int, int]], half: int = 32) -> np.ndarray:
    """Mean RAPSD of ``(N, H, W)`` over 2·``half``-cell patches at ``centres``, geometric mean over 2–10 km."""
    patches = [fields[:, r - half:r + half, c - half:c + half] for r, c in centres]
    res = rapsd(np.concatenate(patches), 1.0)
    sel = (res.wavelength_km >= 2) & (res.wavelength_km <= 10)
    return float(np.exp(np.log(np.nanmean(res.psd, axis=0)[sel]).mean()))


def _ratios(members: np.ndarray, radar: np.ndarray, band_rows: np.ndarray, band_cols: np.ndarray, width: int) -> dict:
    """Band / interior ratios of spread, wet fraction and PSD ratio for bands ``band_rows``/``band_cols``
    (boolean per row / column); interiors: at least ``width`` cells from any band."""
    t, m, h, w = members.shape
    band = band_rows[:, None] | band_cols[None, :]
    dist = [np.min(np.abs(np.arange(n)[:, None] - np.flatnonzero(b)[None]), axis=1) for n, b in ((h, band_rows),
                                                                                                  (w, band_cols))]
    interior = (dist[0][:, None] >= width) & (dist[1][None, :] >= width)
    spread = members.std(axis=1, ddof=1).mean(axis=0)
    wet = (members >= 0.1).mean(axis=(0, 1))
    mids = [int(np.flatnonzero(band_rows)[k]) for k in np.r_[0, np.flatnonzero(np.diff(np.flatnonzero(band_rows)) > 1) + 1]]
    mids = [r + width // 2 for r in mids]
    band_centres = [(r, c) for r in mids for c in range(40, w - 40, 64)]
    inner = [(r, c) for r in range(40, h - 40, 64) for c in range(40, w - 40, 64) if interior[r, c] and dist[0][r] >= 32]
    flat = members.reshape(t * m, h, w)
    psd = (patch_psd(flat, band_centres) / patch_psd(radar, band_centres)) / (patch_psd(flat, inner) / patch_psd(radar, inner))
    radar_wet = (radar >= 0.1).mean(axis=0)
    return {"spread": float(spread[band].mean() / spread[interior].mean()),
            "wet_fraction": float(wet[band].mean() / wet[interior].mean()),
            "psd_ratio": float(psd),
            "radar_wet_fraction": float(radar_wet[band].mean() / radar_wet[interior].mean())}


def measure(members: np.ndarray, radar: np.ndarray, tile: int, overlap: int) -> dict:
    """Overlap-band / interior ratios (and the same for control bands midway inside the windows, where
    nothing is blended: what the field's own geography gives) and seam ratios of ``members`` (T, M, H, W) mm/h."""
    t, m, h, w = members.shape
    in_rows, starts_r, ends_r = bands(h, tile, overlap)
    in_cols, _, _ = bands(w, tile, overlap)
    size, starts = tile_layout(h, tile, overlap)
    control = np.zeros(h, bool)
    for s in starts:  # the middle of every window
        control[s + size // 2 - overlap // 2:s + size // 2 + overlap // 2] = True
    out = {f"overlap_{k}": v for k, v in _ratios(members, radar, in_rows, in_cols, overlap).items()}
    out |= {f"control_{k}": v for k, v in _ratios(members, radar, control, control, overlap).items()}
    flat = members.reshape(t * m, h, w)
    step = starts_r[0] if starts_r else h
    for name, offset in (("starts", 0), ("ends", size % step)):
        stat = SeamStatistic(step, offset)
        stat.accum(flat)
        out[f"seam_ratio_window_{name}"] = stat.compute()["seam_ratio"]
    return {"windows_per_axis": len(starts), "window": size, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--env", default=None)
    ap.add_argument("--cells", type=int, default=500)
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    project = args.project.absolute()
    params, _ = open_project(project, args.env, [])
    models = (load("precipdiff-correction"), load("precipdiff-downscaling"))
    sat, radar = domain(params, args.cells, args.hours)
    name = models[0].card.transform
    sat_t = transforms.forward_transform(sat["precipitation"].values, name)
    settings = ChainSettings(n_members=args.members, seed=3, tile=args.tile, overlap=args.overlap,
                             batch_size=args.batch_size, precision=args.precision)
    started = time.perf_counter()
    _, fine = run_chain(sat_t, (sat["lat"].values, sat["lon"].values), (radar["lat"].values, radar["lon"].values),
                        hour_keys(sat["time"].values), *models, settings)
    seconds = time.perf_counter() - started
    members = transforms.inverse_transform(fine, name)
    out = {"cells": list(members.shape[-2:]), "hours": args.hours, "members": args.members, "tile": args.tile,
           "overlap": args.overlap, "precision": args.precision, "threads": torch.get_num_threads(),
           "seconds_per_hour_per_member": seconds / (args.hours * args.members),
           **measure(members, radar["precipitation"].values, args.tile, args.overlap)}
    (project / "data/08_reporting/bench_tiling.json").write_text(json.dumps(out, indent=1))
    print("| bands | spread band/interior | wet fraction band/interior (radar's) | PSD ratio band/interior |\n"
          "|---|---|---|---|")
    for kind in ("overlap", "control"):
        print(f"| {kind} | {out[kind + '_spread']:.3f} | {out[kind + '_wet_fraction']:.3f} "
              f"({out[kind + '_radar_wet_fraction']:.3f}) | {out[kind + '_psd_ratio']:.3f} |")
    print(f"{out['cells'][0]} × {out['cells'][1]} cells, {out['windows_per_axis']}² windows of {out['window']}; seam ratio "
          f"window starts {out['seam_ratio_window_starts']:.3f}, ends {out['seam_ratio_window_ends']:.3f}; "
          f"{out['seconds_per_hour_per_member']:.1f} s per hour per member")


if __name__ == "__main__":
    main()
