"""Learning curves of a stage's diffusion model: validation scores against optimizer steps and training data.

Each point retrains the stage's diffusion model of a trained project (its model inputs, its
``<stage>_training`` parameters, its registered regression U-Net as the residual base, so only the
diffusion model's training changes), lets the project's sampler selection choose its sampler on the
validation tiles, as training does, then scores it on VALIDATION hours with the evaluation's own
machinery and hour-block bootstrap intervals:

* downscaling: the downscaling stage alone from the true radar at 0.1° (the evaluation's
  ``downscaling_only`` block: fair CRPS, spread–skill, PSD ratio at 3 / 5 / 10 km, against RainFARM
  and bilinear on the same hours);
* correction: the correction ensemble at 0.1° against the max-pooled radar (fair CRPS, spread–skill).

Every point is an MLflow run (experiment ``precipdiff-learning-curves`` in the project's ``mlflow.db``)
and a row of ``<out>/learning_curves_<stage>.csv``; ``<out>/learning_curves_<stage>.json`` is the
plotly figure. Points are resumable: each trains in its own checkpoint folder under the project.

    .venv/bin/python benchmarks/learning_curves.py --project /path/to/trained/project --stage downscaling \\
        --steps 320,1000,3000,10000 [--data-fractions 0.25,0.5] [--hours 24] [--selection wettest] [--members 4]

``--steps`` points train on all training hours; ``--data-fractions`` points train the first fraction
(in time) of the training hours for ``--data-steps`` steps (default: the largest of ``--steps``
below 5000).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from compare_residual_base import load, open_project

from precipdiff.pipelines.evaluation import nodes as ev
from precipdiff.pipelines.evaluation.intervals import confidence_intervals
from precipdiff.pipelines.experiments.nodes import override_params
from precipdiff.pipelines.residual_training import (correction_pairs, downscaling_pairs, select_sampler,
                                                    train_diffusion)

REPO = Path(__file__).resolve().parents[1]
METRICS = {"downscaling": ("downscaling_only", "ds_diffusion",
                           ["crps_fair", "spread_skill_ratio", "psd_ratio_3km", "psd_ratio_5km", "psd_ratio_10km"]),
           "correction": ("coarse", "correction_diffusion", ["crps_fair", "spread_skill_ratio", "rmse"])}
EXPERIMENT = "precipdiff-learning-curves"


def train_point(stage: str, steps: int, fraction: float, data: dict, params: dict, project: Path):
    """The stage's diffusion model trained ``steps`` optimizer steps on the first ``fraction`` of the
    training hours, with the sampler the project's selection chooses on validation tiles."""
    p = params[f"{stage}_training"]
    per_epoch = int(p["diffusion"]["steps_per_epoch"])
    if steps % per_epoch:
        raise SystemExit(f"--steps {steps}: must be a multiple of steps_per_epoch ({per_epoch})")
    tag = f"steps{steps}_data{fraction:g}"
    p = override_params(p, {"diffusion": {"epochs": steps // per_epoch},
                            "checkpoint_dir": str(project / "data/06_models/checkpoints/learning_curves" / stage / tag)})
    coarse, fine = data["coarse_model_input"], data["fine_model_input"]
    pairs = correction_pairs(coarse, p) if stage == "correction" else downscaling_pairs(coarse, fine, p)
    patches = data["coarse_patches" if stage == "correction" else "fine_patches"]
    if fraction < 1:
        train_times = np.sort(patches.loc[patches.split == "train", "time"].unique())
        cut = train_times[int(np.ceil(fraction * len(train_times))) - 1]
        patches = patches[(patches.split != "train") | (patches.time <= cut)]
    regression = load(f"precipdiff-{stage}-regression")
    started = time.perf_counter()
    model, _ = train_diffusion(pairs, patches, p, regression)
    model, table = select_sampler(model, pairs, p)
    return model, table, time.perf_counter() - started


def score_point(stage: str, model, data: dict, params: dict, hours: pd.DataFrame, members: int) -> pd.DataFrame:
    """The model's scores on the validation hours with their intervals (the evaluation's rows)."""
    ep = override_params(params["evaluation"], {"chain": {"n_members": members},
                                                "downscaling_only": {"max_hours": None}})
    coarse, fine = data["coarse_model_input"], data["fine_model_input"]
    if stage == "downscaling":
        _, hourly = ev.score_downscaling_block(coarse, fine, hours, model, data["evaluation_baselines"], ep)
    else:
        _, hourly = ev._score_chain(coarse, fine, hours, model, None, ep, {"corrected": "correction_diffusion"})
    return confidence_intervals(hours, ep, hourly)


def point_rows(stage: str, steps: int, fraction: float, intervals: pd.DataFrame, selection: pd.DataFrame,
               seconds: float) -> list[dict]:
    grid, method, metrics = METRICS[stage]
    rows = intervals[(intervals["stratum"] == "all") & (intervals["grid"] == grid) & (intervals["kind"] == "value")]
    chosen = selection.loc[selection["chosen"]].iloc[0] if len(selection) else pd.Series(dtype=object)
    sampler = json.dumps({k: chosen[k].item() if hasattr(chosen[k], "item") else chosen[k]
                          for k in ("num_steps", "sigma_max", "rho", "solver") if k in chosen})
    out = []
    for r in rows.itertuples():
        if r.metric in metrics:
            out.append({"stage": stage, "steps": steps, "data_fraction": fraction, "method": r.method,
                        "metric": r.metric, "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                        "n_hours": r.n_hours, "sampler": sampler, "train_seconds": round(seconds, 1)})
    return out


def figure(table: pd.DataFrame, stage: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = list(dict.fromkeys(table["metric"]))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
    for col, metric in enumerate(metrics, start=1):
        for (method, fraction), g in table[table.metric == metric].groupby(["method", "data_fraction"]):
            g = g.sort_values("steps")
            fig.add_trace(go.Scatter(x=g["steps"], y=g["estimate"], mode="lines+markers",
                                     name=f"{method}, data {fraction:g}", legendgroup=f"{method}{fraction}",
                                     showlegend=col == 1,
                                     error_y={"type": "data", "symmetric": False, "array": g["ci_high"] - g["estimate"],
                                              "arrayminus": g["estimate"] - g["ci_low"]}), row=1, col=col)
        fig.update_xaxes(type="log", title_text="optimizer steps", row=1, col=col)
    fig.update_layout(title=f"Learning curves of the {stage} diffusion model (validation hours, 95 % intervals)",
                      height=420, width=330 * len(metrics) + 200)
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--env", default=None)
    ap.add_argument("--stage", choices=("downscaling", "correction"), default="downscaling")
    ap.add_argument("--steps", default="320,1000,3000,10000")
    ap.add_argument("--data-fractions", default="")
    ap.add_argument("--data-steps", type=int, default=None)
    ap.add_argument("--hours", type=int, default=24, help="validation hours scored")
    ap.add_argument("--selection", default="wettest", help="which validation hours: wettest | evenly_spaced | stratified")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    args = ap.parse_args()
    project, out = args.project.resolve(), args.out.resolve()
    params, data = open_project(project, args.env, ["coarse_model_input", "fine_model_input", "coarse_patches",
                                                    "fine_patches", "evaluation_baselines"])
    hp = override_params(params["evaluation"], {"hours": {"split": "validation", "max_hours": args.hours,
                                                          "selection": args.selection}})
    hours = ev.select_test_hours(data["coarse_model_input"], data["fine_model_input"], hp)
    steps = [int(s) for s in args.steps.split(",") if s]
    fractions = [float(f) for f in args.data_fractions.split(",") if f]
    data_steps = args.data_steps or max([s for s in steps if s < 5000] or steps)
    points = [(s, 1.0) for s in steps] + [(data_steps, f) for f in fractions]
    csv = out / f"learning_curves_{args.stage}.csv"
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["steps", "data_fraction"])
    mlflow.set_experiment(EXPERIMENT)
    for n_steps, fraction in points:
        if ((done["steps"] == n_steps) & (done["data_fraction"] == fraction)).any():
            print(f"{args.stage} {n_steps} steps, data {fraction:g}: in {csv}, skipped", flush=True)
            continue
        model, selection, seconds = train_point(args.stage, n_steps, fraction, data, params, project)
        intervals = score_point(args.stage, model, data, params, hours, args.members)
        rows = point_rows(args.stage, n_steps, fraction, intervals, selection, seconds)
        with mlflow.start_run(run_name=f"{args.stage} {n_steps} steps data {fraction:g}"):
            mlflow.log_params({"stage": args.stage, "steps": n_steps, "data_fraction": fraction,
                               "sampler": rows[0]["sampler"], "validation_hours": len(hours), "members": args.members})
            for r in rows:
                key = f"{r['method']}.{r['metric']}"
                mlflow.log_metrics({key: r["estimate"], f"{key}_low": r["ci_low"], f"{key}_high": r["ci_high"]})
            mlflow.log_metric("train_seconds", seconds)
        done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
        out.mkdir(parents=True, exist_ok=True)
        done.to_csv(csv, index=False)
        print(pd.DataFrame(rows)[["steps", "data_fraction", "method", "metric", "estimate", "ci_low", "ci_high",
                                  "sampler"]].round(4).to_string(index=False), flush=True)
    figure(done, args.stage).write_json(out / f"learning_curves_{args.stage}.json")


if __name__ == "__main__":
    main()
