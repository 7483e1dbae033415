"""Does the sampler selection measure what the evaluation scores? One trained diffusion model, a few
sampler settings, the VALIDATION tiles of ``<stage>_training.sampler_selection`` at one or more
window sizes: fair CRPS, spread–skill and the PSD ratio per band, as ``select_sampler`` computes them.

    .venv/bin/python benchmarks/selection_tiles.py --project /path/to/trained/project \\
        [--stage downscaling] [--model precipdiff-downscaling] [--tiles 64x16,200x6] \\
        [--grid '[{"num_steps": 5, "sigma_max": 10.0, "rho": 3.0, "solver": "heun"}]'] [--env mrms]

``--tiles`` lists ``<side>x<count>`` window sizes (cells) and counts of the wettest validation
windows; ``--grid`` defaults to the stage's ``sampler_selection.grid``. Models as in
``compare_residual_base.py`` (``name``, ``name/<version>``, ``name@<alias>``). Prints one table row
per (tiles, setting) and writes ``data/08_reporting/selection_tiles_<stage>.csv`` in the project.
Nothing here reads the test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from precipdiff.nn.sampling import pick_device, residual_sampler
from precipdiff.pipelines import residual_training as rt
from precipdiff.training.sampler_selection import score_settings

BANDS_KM = {"psd_ratio_3km": [2.5, 3.6], "psd_ratio_5km": [4.2, 6.0], "psd_ratio_10km": [8.4, 12.0],
            "psd_ratio_2_10km": [2.0, 10.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--stage", default="downscaling", choices=["correction", "downscaling"])
    parser.add_argument("--model", default=None, help="registered model (default precipdiff-<stage>)")
    parser.add_argument("--tiles", default="64x16,200x6")
    parser.add_argument("--grid", default=None, help="JSON list of sampler settings")
    parser.add_argument("--env", default=None, help="Kedro environment of the project (e.g. mrms)")
    args = parser.parse_args()
    from compare_residual_base import load, open_project
    names = ["coarse_model_input"] + (["fine_model_input"] if args.stage == "downscaling" else [])
    params, data = open_project(args.project.resolve(), args.env, names)
    params = params[f"{args.stage}_training"]
    coarse, fine = data["coarse_model_input"], data.get("fine_model_input")
    trained = load(args.model or f"precipdiff-{args.stage}")
    pairs = rt.downscaling_pairs(coarse, fine, params) if fine is not None else rt.correction_pairs(coarse, params)
    sel = params["sampler_selection"]
    grid = json.loads(args.grid) if args.grid else sel["grid"]
    settings = [{**params.get("sampler", {}), **g} for g in grid]
    bands = BANDS_KM if args.stage == "downscaling" else sel["psd_bands_km"]
    device = pick_device(sel.get("device", "auto"))
    tables = []
    for spec in args.tiles.split(","):
        side, count = (int(x) for x in spec.split("x"))
        cond, base, target = rt.validation_tiles(pairs, {**sel, "tile": side, "n_tiles": count, "stage": args.stage})
        sample = lambda s, c, z: residual_sampler(trained.model, trained.card.sampler_setting(s), device,  # noqa: E731
                                                  sel.get("precision", "auto"))(c, z)
        table = score_settings(sample, settings, cond, base, target, trained.card.transform, trained.card.residual,
                               members=int(sel["members"]),
                               seed=int(sel["seed"]), pixel_km=float(sel["pixel_km"]), psd_bands_km=bands)
        tables.append(table.assign(tiles=f"{side} cells × {len(target)}"))
    out = pd.concat(tables, ignore_index=True)
    keep = ["tiles", "num_steps", "sigma_max", "rho", "solver", "crps_fair", "spread_skill_ratio", *bands]
    print(out[[c for c in keep if c in out]].round(4).to_string(index=False))
    path = args.project.resolve() / "data" / "08_reporting" / f"selection_tiles_{args.stage}.csv"
    out.to_csv(path, index=False)
    print(f"written {path}")


if __name__ == "__main__":
    main()
