"""The training pipelines' validation check, again, on a trained project's registered models.

Runs :func:`precipdiff.pipelines.residual_training.validation_skill` (the wettest validation hours;
RMSE, MAE and correlation of the condition and of ONE diffusion member, the member mean, fair CRPS,
the regression) for both stages with the latest registered versions of a project, so the figures
of models trained by an earlier code version can be re-measured. Prints one table (mm/h).

    .venv/bin/python benchmarks/validation_skill.py --project /path/to/project [--env mrms]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow
import pandas as pd
import xarray as xr
from omegaconf import OmegaConf

from precipdiff.registry import load_registered  # the latest version when nothing is asked
from precipdiff.pipelines.experiments.nodes import override_params
from precipdiff.pipelines.residual_training import correction_pairs, downscaling_pairs, validation_skill


def stage_params(project: Path, stage: str, env: str | None) -> dict:
    """``<stage>_training`` of conf/base, with the environment's file merged over it."""
    files = [project / "conf" / "base" / "parameters_training.yml"]
    if env:
        files.append(project / "conf" / env / "parameters_training.yml")
    params: dict = {}
    for f in files:
        if f.exists():
            params = override_params(params, OmegaConf.to_container(OmegaConf.load(f))[f"{stage}_training"])
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=Path.cwd(), help="trained project (mlflow.db, data/)")
    ap.add_argument("--env", default=None, help="the Kedro environment it was trained with")
    args = ap.parse_args()
    mlflow.set_tracking_uri(f"sqlite:///{args.project / 'mlflow.db'}")
    coarse = xr.open_dataset(args.project / "data/05_model_input/coarse.nc").load()
    fine = xr.open_dataset(args.project / "data/05_model_input/fine.nc").load()
    rows = {}
    for stage in ("correction", "downscaling"):
        params = stage_params(args.project, stage, args.env)
        pairs = correction_pairs(coarse, params) if stage == "correction" else downscaling_pairs(coarse, fine, params)
        models = [load_registered(f"precipdiff-{stage}{suffix}") for suffix in ("", "-regression")]
        skill = validation_skill(*models, pairs, params)
        rows[stage] = {k.removeprefix("val_"): v[0]["value"] for k, v in skill.items()}
    print(pd.DataFrame(rows).round(3).to_string())


if __name__ == "__main__":
    main()
