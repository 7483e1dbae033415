"""Which pair of diffusion models wins — on VALIDATION hours, with paired 95 % block-bootstrap intervals.

Chooses between two variants (e.g. the two residual bases, ``residual_base: input | regression``)
without touching the test split: both (correction, downscaling) pairs go through the evaluation's
chain (``evaluation.chain``, the models' own samplers) on the same validation hours, and the
evaluation's interval machinery (``evaluation.intervals``) gives every score of both and the paired
difference ``b − a`` and ratio ``b / a`` of the diffusion chain, on the same resampled hours.

    .venv/bin/python benchmarks/compare_residual_base.py --project /path/to/trained/project \\
        --a precipdiff-correction,precipdiff-downscaling \\
        --b precipdiff-correction-residual-rebased,precipdiff-downscaling-residual-rebased \\
        [--hours 24] [--selection wettest]

Models are ``name`` (latest version), ``name/<version>`` or ``name@<alias>`` of the project's
MLflow registry (``mlflow.db``; run ``kedro run --pipelines=experiment_residual`` first for the
``-rebased`` ones). Writes ``data/08_reporting/residual_base_validation.parquet`` in the project.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from precipdiff.registry import load_registered
from precipdiff.pipelines.evaluation import nodes as ev
from precipdiff.pipelines.evaluation.intervals import confidence_intervals
from precipdiff.reporting.intervals import cell

METRICS = ["crps_fair", "rmse", "spread_skill_ratio", "psd_ratio_3km", "psd_ratio_5km", "psd_ratio_10km"]


def load(spec: str):
    """``name``, ``name/<version>`` or ``name@<alias>`` → the registered model."""
    if "@" in spec:
        name, alias = spec.split("@")
        return load_registered(name, alias=alias)
    name, _, version = spec.partition("/")
    return load_registered(name, version=version or None)  # no version: the latest


def open_project(project: Path, env: str | None, datasets: list[str]) -> tuple[dict, dict]:
    """The parameters and the named catalog datasets of a trained Kedro ``project`` (``env``), with
    MLflow pointed at its registry (``mlflow.db``) so :func:`load` finds its models."""
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        params, data = context.params, {name: context.catalog.load(name) for name in datasets}
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return params, data


def as_test(ds, split: str = "validation"):
    """``ds`` with its ``split`` hours labelled ``test`` (and the test hours hidden), so the
    evaluation's hour selection picks validation hours."""
    labels = ds["split"].values.astype(str)
    return ds.assign_coords(split=("time", np.where(labels == split, "test", np.where(labels == "test", "held_out", labels))))


def renamed(table: pd.DataFrame, arm: str) -> pd.DataFrame:
    keep = table["method"] != "radar"
    return table.assign(method=np.where(keep, arm + "." + table["method"].astype(str), table["method"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path("."))
    ap.add_argument("--a", required=True, help="correction,downscaling models of arm a")
    ap.add_argument("--b", required=True, help="correction,downscaling models of arm b")
    ap.add_argument("--labels", default="a,b", help="names of the two arms in the output")
    ap.add_argument("--hours", type=int, default=24, help="validation hours scored")
    ap.add_argument("--selection", default="wettest", choices=("wettest", "evenly_spaced"),
                    help="which validation hours (wettest: where the variants can differ; dry hours score ~0)")
    ap.add_argument("--env", default=None, help="Kedro environment of the project (e.g. mrms)")
    args = ap.parse_args()

    project = args.project.resolve()
    params, data = open_project(project, args.env, ["coarse_model_input", "fine_model_input"])
    params = dict(params["evaluation"])
    coarse, fine = (as_test(data[name]) for name in ("coarse_model_input", "fine_model_input"))
    params["hours"] = {**params["hours"], "max_hours": args.hours, "selection": args.selection}
    hours = ev.select_test_hours(coarse, fine, params)
    labels = args.labels.split(",")
    hourly = [ev.reference_hourly(coarse, fine, hours, params)]
    for label, spec in zip(labels, (args.a, args.b)):
        correction, downscaling = (load(s) for s in spec.split(","))
        print(f"{label}: {spec} — residual bases {correction.card.residual_base}, {downscaling.card.residual_base}")
        _, per_hour, _ = ev.score_diffusion_chain(coarse, fine, hours, correction, downscaling, params)
        hourly.append(renamed(per_hour, label))
    cfg = {**params["intervals"], "metrics": METRICS,
           "paired": {"methods": [f"{labels[1]}.diffusion_chain"], "metrics": METRICS}}
    intervals = confidence_intervals(hours, {**params, "intervals": cfg}, *hourly)
    out = project / "data/08_reporting/residual_base_validation.parquet"
    intervals.to_parquet(out)
    report(intervals, labels, len(hours), args.selection)
    print(f"\nwritten {out}")


def report(intervals: pd.DataFrame, labels: list[str], n_hours: int, selection: str) -> None:
    rows = intervals[(intervals["grid"] == "fine")]
    print(f"\n{n_hours} validation hours ({selection}); 1 km scores of the diffusion chain, 95 % block-bootstrap intervals")
    for stratum in ("all", "wettest"):
        print(f"\n| {stratum} | " + " | ".join(labels) + f" | {labels[1]} − {labels[0]} |\n|---|---|---|---|")
        for metric in METRICS:
            sel = rows[(rows["stratum"] == stratum) & (rows["metric"] == metric)]
            vals = [sel[(sel["method"] == f"{lab}.diffusion_chain") & (sel["kind"] == "value")] for lab in labels]
            diff = sel[(sel["method"] == f"{labels[1]}.diffusion_chain") & (sel["kind"] == "difference")
                       & (sel["versus"] == f"{labels[0]}.diffusion_chain")]
            cells = [cell(v.iloc[0].estimate, v.iloc[0].ci_low, v.iloc[0].ci_high) if len(v) else "–" for v in vals]
            d = cell(diff.iloc[0].estimate, diff.iloc[0].ci_low, diff.iloc[0].ci_high) if len(diff) else "–"
            print(f"| {metric} | " + " | ".join(cells) + f" | {d} |")


if __name__ == "__main__":
    main()
