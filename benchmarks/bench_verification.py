"""Time every verification score (and the two baselines) on a test-split-sized input.

    python benchmarks/bench_verification.py [--t 48] [--m 8] [--size 200] [--chunk 12]

Prints seconds per metric for one pass over T fields of an M-member ensemble (size x size px),
streamed in chunks of ``--chunk`` fields as the evaluation pipeline does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from precipdiff import verification as v
from precipdiff.baselines import QuantileMapping, rainfarm_ensemble


def synthetic(t: int, m: int, size: int, seed: int = 0):
    """Rain-like float32 data (mm/h): 40 % wet gamma rates, a NaN strip in the observations."""
    rng = np.random.default_rng(seed)
    wet = lambda shape: np.where(rng.random(shape) < 0.4, rng.gamma(0.7, 3.0, shape), 0.0)  # noqa: E731
    obs = wet((t, size, size)).astype(np.float32)
    obs[:, :3, :] = np.nan
    return wet((t, m, size, size)).astype(np.float32), obs


def metrics():
    """name -> (factory, how to feed a chunk: 'det' member 0, 'ens', 'fields' ensemble)."""
    return {
        "continuous": (v.ContinuousScores, "det"),
        "contingency": (v.ContingencyScores, "det"),
        "intensity": (v.IntensityErrors, "det"),
        "fss (3 thr x 6 scales)": (v.FSS, "det"),
        "crps (standard + fair)": (v.CRPSScores, "ens"),
        "spread-skill": (v.SpreadSkill, "ens"),
        "rank histogram": (v.RankHistogram, "ens"),
        "brier (3 thr)": (v.BrierScores, "ens"),
        "ensemble fss (3 ways)": (v.EnsembleFSS, "ens"),
        "mean psd of members": (v.MeanPSD, "fields"),
        "seam ratio of members": (v.SeamStatistic, "fields"),
    }


def time_metrics(ens, obs, chunk: int) -> dict[str, float]:
    out = {}
    for name, (make, kind) in metrics().items():
        acc, start = make(), time.perf_counter()
        for s in range(0, obs.shape[0], chunk):
            e, o = ens[s : s + chunk], obs[s : s + chunk]
            if kind == "det":
                acc.accum(e[:, 0], o)
            elif kind == "ens":
                acc.accum(e, o)
            else:
                acc.accum(e)
        acc.compute()
        out[name] = time.perf_counter() - start
    return out


def time_baselines(ens, obs) -> dict[str, float]:
    start = time.perf_counter()
    qm = QuantileMapping.fit(ens[:, 0], obs, n_quantiles=100)
    qm.apply(ens[:, 0])
    t_qm = time.perf_counter() - start
    t, m, h, w = ens.shape
    coarse = np.nan_to_num(obs).reshape(t, h // 10, 10, w // 10, 10).mean(axis=(2, 4))
    start = time.perf_counter()
    rainfarm_ensemble(coarse, factor=10, n_members=m, seed=0)
    return {"quantile mapping fit+apply": t_qm, "rainfarm ensemble": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--t", type=int, default=48)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--chunk", type=int, default=12)
    a = p.parse_args()
    ens, obs = synthetic(a.t, a.m, a.size)
    print(f"T={a.t} M={a.m} {a.size}x{a.size} px, chunks of {a.chunk} fields")
    timings = {**time_metrics(ens, obs, a.chunk), **time_baselines(ens, obs)}
    for name, sec in timings.items():
        print(f"  {name:<28s} {sec:7.2f} s")
    print(f"  {'total':<28s} {sum(timings.values()):7.2f} s")


if __name__ == "__main__":
    main()
