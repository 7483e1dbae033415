"""How the synthetic satellite compares with its radar truth (the calibration of the error model).

Usage: python benchmarks/synthetic_calibration.py [--hours 720] [--seed 20220101]
Reads the default parameters from conf/base/parameters_ingestion.yml and prints the pooled and
median hourly correlation of the raw satellite (nearest-upsampled to 1 km) with radar, POD/FAR/CSI
at 1, 5 and 10 mm/h, and the mean of both per radar-intensity bin.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from precipdiff.data import synthetic, transforms

CONF = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_ingestion.yml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    p = yaml.safe_load(CONF.read_text())["ingestion"]
    hours = args.hours or p["period"]["hours"]
    seed = args.seed if args.seed is not None else p["seed"]
    t0 = time.perf_counter()
    sat, radar = synthetic.generate(p["box"], p["period"]["start"], hours, seed,
                                    p["synthetic"]["radar"], p["satellite_errors"])
    print(f"generated {hours} h over {dict(radar.sizes)} in {time.perf_counter() - t0:.1f} s (seed {seed})")
    r = radar.precipitation.values
    up = transforms.upsample(sat.precipitation.values, 10, "nearest")
    hourly = [np.corrcoef(up[t].ravel(), r[t].ravel())[0, 1] for t in range(len(r))
              if r[t].std() > 0 and up[t].std() > 0]
    print(f"correlation (all hours and pixels): {np.corrcoef(up.ravel(), r.ravel())[0, 1]:.3f}; "
          f"median hourly: {np.median(hourly):.3f}")
    print(f"wet fraction (>=0.1 mm/h): radar {(r >= 0.1).mean():.3f}, satellite {(up >= 0.1).mean():.3f}; "
          f"mean rate radar {r.mean():.3f} mm/h, satellite {up.mean():.3f} mm/h")
    print("threshold  POD   FAR   CSI")
    for thr in (1, 5, 10):
        o, f = r >= thr, up >= thr
        hits, misses, fa = (o & f).sum(), (o & ~f).sum(), (~o & f).sum()
        print(f"{thr:>5} mm/h {hits / (hits + misses):.2f}  {fa / max(hits + fa, 1):.2f}  "
              f"{hits / (hits + misses + fa):.2f}")
    print("radar bin (mm/h)   radar mean  satellite mean")
    for lo, hi in ((0.1, 1), (1, 5), (5, 10), (10, np.inf)):
        k = (r >= lo) & (r < hi)
        print(f"[{lo:>4}, {hi:>4})        {r[k].mean():8.2f}  {up[k].mean():8.2f}")


if __name__ == "__main__":
    main()
