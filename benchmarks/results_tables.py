"""The README's results tables, regenerated from a project's last evaluation run.

Reads ``data/08_reporting/intervals.parquet`` (the bootstrap intervals of ``kedro run``) and prints,
per stratum, the 1 km scores with their 95 % intervals and the diffusion chain's paired
differences, as Markdown; with ``--targets``, the issue's targets with the measured figure.

    .venv/bin/python benchmarks/results_tables.py --project /path/to/project [--targets]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from precipdiff.reporting.intervals import cell, markdown, paired_table, region_table, value_table
from precipdiff.reporting.report import INTERVAL_BLOCKS


def targets(intervals: pd.DataFrame, stratum: str = "all") -> pd.DataFrame:
    """The ensemble-quality targets of the diffusion chain (1 km) with the measured estimate and interval."""
    rows = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == "fine")]

    def get(metric, kind="value", versus=""):
        sel = rows[(rows["method"] == "diffusion_chain") & (rows["metric"] == metric) & (rows["kind"] == kind)
                   & (rows["versus"] == versus)]
        return sel.iloc[0] if len(sel) else None

    out = []
    for metric, lo, hi in [("psd_ratio_3km", 0.7, 1.3), ("psd_ratio_5km", 0.7, 1.3), ("psd_ratio_10km", 0.7, 1.3),
                           ("spread_skill_ratio", 0.8, 1.2)]:
        r = get(metric)
        if r is not None:
            out.append({"target": f"{metric} in [{lo}, {hi}]", "measured": cell(r.estimate, r.ci_low, r.ci_high),
                        "met": "yes" if lo <= r.estimate <= hi else "no"})
    r = get("rmse", "ratio", "regression_chain")
    if r is not None:
        out.append({"target": "ensemble-mean RMSE ≤ 1.05 × regression chain",
                    "measured": cell(r.estimate, r.ci_low, r.ci_high) + " ×",
                    "met": "yes" if r.estimate <= 1.05 else "no"})
    for other in ("regression_chain", "qm_bilinear", "rainfarm"):
        r = get("crps_fair", "ratio", other)
        if r is not None:
            excl = r.ci_high < 1.0
            out.append({"target": f"fair CRPS ≥ 15 % below {other}, CI excluding 0",
                        "measured": f"{1 - r.estimate:+.1%} [{1 - r.ci_high:+.1%}, {1 - r.ci_low:+.1%}] below",
                        "met": "yes" if (1 - r.estimate) >= 0.15 and excl else "no"})
    block = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == "downscaling_only")]
    for other in ("ds_rainfarm", "ds_bilinear"):
        sel = block[(block["method"] == "ds_diffusion") & (block["metric"] == "crps_fair")
                    & (block["kind"] == "difference") & (block["versus"] == other)]
        if len(sel):
            r = sel.iloc[0]
            out.append({"target": f"downscaling alone: fair CRPS below {other}, CI excluding 0",
                        "measured": cell(r.estimate, r.ci_low, r.ci_high) + " Δ", "met": "yes" if r.ci_high < 0 else "no"})
    sel = block[(block["method"] == "ds_diffusion") & (block["metric"] == "psd_ratio_small_scales")
                & (block["kind"] == "value")]
    if len(sel):
        r = sel.iloc[0]
        out.append({"target": "downscaling alone: PSD ratio ≤ 10 km in [0.7, 1.3]",
                    "measured": cell(r.estimate, r.ci_low, r.ci_high), "met": "yes" if 0.7 <= r.estimate <= 1.3 else "no"})
    return pd.DataFrame(out).set_index("target")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path.cwd())
    ap.add_argument("--targets", action="store_true", help="also the targets table")
    ap.add_argument("--every-region", action="store_true",
                    help="the full tables of every region too (default: one per-region summary table)")
    args = ap.parse_args()
    intervals = pd.read_parquet(args.project / "data/08_reporting/intervals.parquet")
    intervals = intervals.rename(columns={"stage": "grid"})  # written before #15 renamed the column
    strata = list(dict.fromkeys(intervals["stratum"]))
    regional = [s for s in strata if s.startswith("region:")]
    for stratum in strata if args.every_region else [s for s in strata if s not in regional]:
        for grid, method, title in INTERVAL_BLOCKS:
            rows = intervals[(intervals["stratum"] == stratum) & (intervals["grid"] == grid)]
            if rows.empty:
                continue
            n = int(rows["n_hours"].iloc[0])
            print(f"\n#### `{stratum}`: {title} ({n} hours), estimate [95 % interval]\n")
            print(markdown(value_table(intervals, stratum, grid)))
            print(f"\n`{method}` against each method (Δ = {method} − method, * = interval excludes 0):\n")
            print(markdown(paired_table(intervals, method, stratum, grid)))
        if args.targets:
            print(f"\nTargets (`{stratum}`):\n")
            print(markdown(targets(intervals, stratum)))
    if regional:
        print("\n#### Per region: the diffusion chain at 1 km, estimate [95 % interval] (ratio < 1: better)\n")
        print(markdown(region_table(intervals)))

if __name__ == "__main__":
    main()
