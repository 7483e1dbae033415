"""Rain from nothing? The chain over satellite-dry cells and over an all-dry input, on VALIDATION hours.

    .venv/bin/python benchmarks/dry_input.py --project /path/to/trained/project [--hours 12] \\
        [--precision fp32 bf16] [--dry-hours 4] [--members 8]

On ``--hours`` evenly spaced validation hours of a trained project, for each ``--precision``:

* the chain's frequency of R ≥ 0.1 mm/h over satellite-dry 1 km cells (satellite < 0.1 mm/h)
  against the radar's there, with the evaluation's 95 % hour-block bootstrap intervals
  (``pipelines/evaluation/probability.py``), the Brier skill score against QM + bilinear at 1 and
  5 mm/h and the reliability-diagram verdicts (bins whose interval holds the diagonal);
* the time per member-hour of the chain;
* the all-dry input: ``--dry-hours`` validation hours with the satellite set to 0 mm/h everywhere
  (what the real IMERG half hour over the Seattle box holds), through the same chain: the wet
  fraction (R ≥ 0.1 mm/h) of the 1 km members and of the corrected 0.1° members, the largest
  member rate and the largest P(R ≥ 0.1).

Models: the project's latest ``precipdiff-correction`` / ``precipdiff-downscaling`` (or
``--correction`` / ``--downscaling`` as ``name``, ``name/<version>`` or ``name@<alias>``).
Writes ``data/08_reporting/dry_input.json`` in the project and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from compare_residual_base import load, open_project  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from precipdiff.data import transforms
from precipdiff.inference.chain import ChainSettings, run_chain
from precipdiff.pipelines.evaluation import nodes as ev
from precipdiff.pipelines.evaluation.probability import diagram_verdict, probability_scores
from precipdiff.reporting.intervals import cell

DATA = ["coarse_model_input", "fine_model_input", "evaluation_baselines"]


def validation_scores(data: dict, models: tuple, hours: pd.DataFrame, params: dict) -> dict:
    """Rain over satellite-dry cells, BSS and reliability of the chain on the validation ``hours``."""
    coarse, fine = data["coarse_model_input"], data["fine_model_input"]
    _, base_hourly = ev.score_baselines(coarse, fine, hours, data["evaluation_baselines"], params)
    started = time.perf_counter()
    table, chain_hourly, _ = ev.score_diffusion_chain(coarse, fine, hours, *models, params)
    seconds = time.perf_counter() - started
    scores, diagram = probability_scores(hours, params, base_hourly, chain_hourly)

    def row(method, cells, thr, metric):
        r = scores[(scores.method == method) & (scores.cells == cells) & np.isclose(scores.threshold, thr)
                   & (scores.metric == metric)].iloc[0]
        return [float(r.estimate), float(r.ci_low), float(r.ci_high)]

    members = int(table.loc[(table.method == "diffusion_chain") & (table.metric == "members"), "value"].iloc[0])
    crps = float(table.loc[(table.method == "diffusion_chain") & (table.metric == "crps_fair")
                           & (table.grid == "fine"), "value"].iloc[0])
    verdict = diagram_verdict(diagram, "diffusion_chain", [0.1, 1.0, 5.0, 10.0])
    return {"hours": len(hours), "members": members, "crps_fair": crps,
            "seconds_per_member_hour": seconds / (len(hours) * members),
            "chain_dry_frequency": row("diffusion_chain", "sat_dry", 0.1, "forecast_frequency"),
            "radar_dry_frequency": row("diffusion_chain", "sat_dry", 0.1, "observed_frequency"),
            "chain_wet_frequency": row("diffusion_chain", "sat_wet", 0.1, "forecast_frequency"),
            "radar_wet_frequency": row("diffusion_chain", "sat_wet", 0.1, "observed_frequency"),
            **{f"bss_{t:g}": row("diffusion_chain", "all", t, "bss") for t in (0.1, 1.0, 5.0, 10.0)},
            "reliability": verdict.to_dict("records")}


def correction_stage(data: dict, correction, hours: pd.DataFrame, settings: ChainSettings) -> dict:
    """The correction model alone (0.1°) on the validation ``hours``: how often its members reach
    0.1 mm/h over satellite-dry cells against the max-pooled radar there, and over an all-dry input."""
    coarse = data["coarse_model_input"]
    name, idx = coarse.attrs["transform"], np.sort(hours["sample_index"].to_numpy())
    keys, grid = hours.sort_values("time")["hour_key"].tolist(), (coarse["lat"].values, coarse["lon"].values)
    fine = (data["fine_model_input"]["lat"].values, data["fine_model_input"]["lon"].values)
    sat_t = coarse["satellite"].values[idx]
    corrected, _ = run_chain(sat_t, grid, fine, keys, correction, None, settings)
    dry_corrected, _ = run_chain(np.zeros_like(sat_t), grid, fine, keys, correction, None, settings)
    mm = lambda x: transforms.inverse_transform(x, name)  # noqa: E731
    dry = mm(sat_t) < 0.1
    radar = mm(coarse["radar"].values[idx])
    return {"hours": len(idx), "corrected_dry_frequency": float((mm(corrected) >= 0.1)[
                np.broadcast_to(dry[:, None], corrected.shape)].mean()),
            "radar_max_dry_frequency": float((radar >= 0.1)[dry].mean()),
            "all_dry_corrected_wet_fraction": float((mm(dry_corrected) >= 0.1).mean())}


def all_dry(data: dict, models: tuple, hours: pd.DataFrame, settings: ChainSettings) -> dict:
    """The chain on the validation ``hours`` with the satellite set to 0 mm/h everywhere."""
    coarse, fine = data["coarse_model_input"], data["fine_model_input"]
    name = coarse.attrs["transform"]
    idx = np.sort(hours["sample_index"].to_numpy())
    dry = transforms.forward_transform(np.zeros_like(coarse["satellite"].values[idx]), name)
    corrected, members = run_chain(dry, (coarse["lat"].values, coarse["lon"].values),
                                   (fine["lat"].values, fine["lon"].values), hours.sort_values("time")["hour_key"].tolist(),
                                   *models, settings)
    corrected, members = transforms.inverse_transform(corrected, name), transforms.inverse_transform(members, name)
    return {"dry_hours": len(idx), "member_wet_fraction": float((members >= 0.1).mean()),
            "corrected_wet_fraction": float((corrected >= 0.1).mean()),
            "member_max_mm_h": float(np.nanmax(members)), "corrected_max_mm_h": float(np.nanmax(corrected)),
            "max_p_0.1": float((members >= 0.1).mean(axis=1).max()),
            "member_wet_fraction_per_hour": [float(x) for x in (members >= 0.1).mean(axis=(1, 2, 3))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--env", default=None)
    ap.add_argument("--correction", default="precipdiff-correction")
    ap.add_argument("--downscaling", default="precipdiff-downscaling")
    ap.add_argument("--hours", type=int, default=12, help="evenly spaced validation hours scored")
    ap.add_argument("--dry-hours", type=int, default=4, help="validation hours run with an all-dry satellite")
    ap.add_argument("--members", type=int, default=None, help="ensemble size (default: evaluation.chain)")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--skip-validation", action="store_true", help="only the all-dry input")
    ap.add_argument("--correction-only", action="store_true",
                    help="only the correction model, at 0.1°, on every validation hour (cheap)")
    args = ap.parse_args()
    project = args.project.absolute()
    params, data = open_project(project, args.env, DATA)
    models = (load(args.correction), None if args.correction_only else load(args.downscaling))
    out = {}
    for precision in args.precision:
        p = {**params["evaluation"], "chain": {**params["evaluation"]["chain"], "precision": precision}}
        if args.members:
            p["chain"]["n_members"] = args.members
        hours = ev._split_hours(data["coarse_model_input"], data["fine_model_input"], "validation", args.hours,
                                "evenly_spaced").sort_values("time").reset_index(drop=True)
        hours["sample"] = hours.index == 0  # the evaluation's map hour (one, unused here)
        if args.correction_only:
            out[precision] = correction_stage(data, models[0], hours, ChainSettings.from_params(p["chain"]))
            print(precision, out[precision])
            continue
        out[precision] = {} if args.skip_validation else validation_scores(data, models, hours, p)
        out[precision]["all_dry"] = all_dry(data, models, hours.iloc[:: max(len(hours) // args.dry_hours, 1)]
                                            .head(args.dry_hours), ChainSettings.from_params(p["chain"]))
    (project / "data/08_reporting/dry_input.json").write_text(json.dumps(out, indent=1))
    if not args.correction_only:
        print(markdown(out))


def markdown(out: dict) -> str:
    lines = ["| precision | chain R≥0.1 over sat-dry | radar there | chain R≥0.1 over sat-wet | radar there | "
             "BSS 1 mm/h | BSS 5 mm/h | all-dry input: member wet fraction | corrected wet fraction | max member "
             "(mm/h) | s per member-hour |", "|" + "---|" * 11]
    for precision, r in out.items():
        d = r["all_dry"]
        c = (lambda k: cell(*r[k]) if k in r else "–")  # noqa: E731
        lines.append(f"| {precision} | {c('chain_dry_frequency')} | {c('radar_dry_frequency')} | "
                     f"{c('chain_wet_frequency')} | {c('radar_wet_frequency')} | {c('bss_1')} | {c('bss_5')} | "
                     f"{d['member_wet_fraction']:.4f} | {d['corrected_wet_fraction']:.4f} | {d['member_max_mm_h']:.2f} | "
                     f"{r.get('seconds_per_member_hour', float('nan')):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
