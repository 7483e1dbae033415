"""How the training knobs move the ensemble's small-scale power, spread and CRPS (VALIDATION data).

Retrains the downscaling diffusion model of a project (its prepared data, ``conf/base`` training
parameters of this checkout) once per variant — EMA half-life, training length, the training noise
distribution (P_mean, P_std) and σ_data — and scores each on the validation tiles of the sampler
selection with two samplers: the old evaluation default (Heun 6 steps from σ_max 20) and the one
the selection chose for the default run (read from the project's registered model). Prints one table
and writes ``<out>/training_knobs.csv``. Each variant costs one training (≈ 2 min here).

    .venv/bin/python benchmarks/diagnose_training.py --project /path/to/trained/project --out docs/figures
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import mlflow
import pandas as pd
import xarray as xr
from validation_skill import stage_params

from precipdiff.nn.sampling import residual_sampler
from precipdiff.pipelines.residual_training import downscaling_pairs, train_diffusion, validation_tiles
from precipdiff.training.sampler_selection import score_settings

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: overrides of downscaling_training.diffusion
    "default": {},
    "ema_halflife 500": {"ema_halflife": 500},
    "ema_halflife 8000": {"ema_halflife": 8000},
    "half the steps": {"epochs": 4},
    "twice the steps": {"epochs": 16},
    "P_mean -0.4 (more high σ)": {"edm": {"P_mean": -0.4}},
    "P_mean -2.0 (more low σ)": {"edm": {"P_mean": -2.0}},
    "sigma_data 1.0 (not auto)": {"edm": {"sigma_data": 1.0}},
}
OLD_DEFAULT = {"num_steps": 6, "sigma_max": 20.0, "rho": 7.0, "solver": "heun"}


def merged(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) else v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help="names of VARIANTS to run")
    args = ap.parse_args()
    mlflow.set_tracking_uri(f"sqlite:///{args.project / 'mlflow.db'}")
    version = max(mlflow.MlflowClient().search_model_versions("name='precipdiff-downscaling'"),
                  key=lambda v: int(v.version))
    chosen = json.loads(version.tags["sampler"])
    coarse = xr.open_dataset(args.project / "data/05_model_input/coarse.nc").load()
    fine = xr.open_dataset(args.project / "data/05_model_input/fine.nc").load()
    patches = pd.read_parquet(args.project / "data/05_model_input/fine_patches.parquet")
    params = stage_params(REPO, "downscaling", None)
    params["checkpoint_dir"] = None  # no resume: every variant trains from scratch
    pairs = downscaling_pairs(coarse, fine, params)
    sel = params["sampler_selection"]
    cond, base, target = validation_tiles(pairs, sel)
    rows = []
    for name in args.variants:
        p = {**params, "diffusion": merged(params["diffusion"], VARIANTS[name])}
        model, _ = train_diffusion(pairs, patches, p)
        sample = lambda s, c, z: residual_sampler(model.model, model.card.sampler_setting(s), "cpu", "bf16")(c, z)  # noqa: E731
        table = score_settings(sample, [OLD_DEFAULT, chosen], cond, base, target, model.card.transform,
                               model.card.residual,
                               members=int(sel["members"]), seed=int(sel["seed"]), pixel_km=float(sel["pixel_km"]),
                               psd_band_km=sel["psd_band_km"])
        for label, (_, r) in zip(("heun 6/20", "selected"), table.iterrows()):
            rows.append({"variant": name, "sampler": label, "sigma_data": model.model.precond.sigma_data,
                         **r[["crps_fair", "spread_skill_ratio", "psd_ratio"]].to_dict()})
        print(pd.DataFrame(rows).round(4).to_string(index=False), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "training_knobs.csv", index=False)
    print(f"selected sampler: {chosen}")


if __name__ == "__main__":
    main()
