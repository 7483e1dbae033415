"""Why do the ensembles carry too much small-scale power and spread? Measurements on VALIDATION data.

For both stages of a trained project (latest registered diffusion models):

1. the denoiser's error per noise level σ on validation residual tiles: relative MSE
   E‖D(y + σn; σ) − y‖² / E‖y‖² (scaled residual units) next to the error of the ideal Gaussian
   denoiser with the model's σ_data (σ²/(σ² + σ_data²)), which a real denoiser beats when the
   residual has structure;
2. σ_data as set at training vs the RMS of the validation residual (scaled units);
3. a sampler sweep (steps, σ_max, ρ, solver, churn) on the same validation tiles and latents:
   fair CRPS, spread–skill, PSD ratio in the stage's short-wavelength band, network calls
   (:func:`precipdiff.training.sampler_selection.score_settings`).

Writes ``<out>/diagnosis_<stage>.csv`` (sweep), ``<out>/denoiser_<stage>.csv`` and two PNG figures.

    .venv/bin/python benchmarks/diagnose_ensemble.py --project /path/to/trained/project [--env mrms] --out docs/figures
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402
from validation_skill import latest, stage_params  # noqa: E402

from precipdiff.data.transforms import make_residual  # noqa: E402
from precipdiff.pipelines.residual_training import correction_pairs, downscaling_pairs, validation_tiles  # noqa: E402
from precipdiff.training.sampler_selection import score_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIGMAS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]


def sweep_grid(quick: bool) -> list[dict]:
    """Heun and Euler steps × σ_max × ρ, 18 Heun steps from 80 (EDM's default) as the reference, and churn."""
    grid = [{"num_steps": n, "sigma_max": s, "rho": r, "solver": "heun"}
            for n, s, r in itertools.product([3, 4, 6, 8], [2.0, 5.0, 20.0], [3.0, 7.0])]
    grid += [{"num_steps": n, "sigma_max": s, "rho": r, "solver": "euler"}
             for n, s, r in itertools.product([6, 8, 10, 14], [5.0, 20.0], [3.0, 7.0])]
    grid += [{"num_steps": 18, "sigma_max": 80.0, "rho": 7.0, "solver": "heun"},
             {"num_steps": 6, "sigma_max": 20.0, "rho": 7.0, "solver": "heun", "S_churn": 2.0}]
    return grid[::4] + grid[-2:] if quick else grid


@torch.inference_mode()
def denoiser_error(model, cond: torch.Tensor, residual: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Relative MSE of D(y + σn; σ) per σ on scaled residual tiles (valid pixels); with a regression
    residual base, ``y`` is what the regression leaves (what the denoiser was trained on)."""
    left = torch.from_numpy(np.nan_to_num(residual)).float()[:, None] - model.mean_residual(cond)
    y = left / model.residual_scale
    c = model.normalise_cond(cond)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for sigma in SIGMAS:
        n = torch.randn(y.shape, generator=gen)
        d = model.precond(y + sigma * n, sigma, c)
        sd = model.precond.sigma_data
        rows.append({"sigma": sigma, "rel_mse": float(((d - y) ** 2).mean() / (y**2).mean()),
                     "rel_mse_gaussian": float(sigma**2 / (sigma**2 + sd**2) * sd**2 / (y**2).mean())})
    return pd.DataFrame(rows)


def plot_sweep(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """PSD ratio and spread–skill vs network calls, one line per (solver, σ_max, ρ) (Heun solid, Euler dashed)."""
    fig, axes = plt.subplots(2, len(tables), figsize=(5.5 * len(tables), 7), squeeze=False)
    for col, (stage, table) in enumerate(tables.items()):
        plain = table[table.get("S_churn", pd.Series(0, index=table.index)).fillna(0).eq(0)]
        for (solver, smax, rho), g in plain.groupby(["solver", "sigma_max", "rho"]):
            g = g.sort_values("network_calls")
            for row, metric in enumerate(("psd_ratio", "spread_skill_ratio")):
                axes[row, col].plot(g["network_calls"], g[metric], "o-" if solver == "heun" else "s--",
                                    label=f"{solver}, σ_max {smax:g}, ρ {rho:g}")
        for row, (metric, lo, hi) in enumerate((("psd_ratio", 0.7, 1.3), ("spread_skill_ratio", 0.8, 1.2))):
            ax = axes[row, col]
            ax.axhspan(lo, hi, color="green", alpha=0.12)
            ax.set(yscale="log", xlabel="network calls per sample", ylabel=metric, title=f"{stage} (validation)")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--env", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--quick", action="store_true", help="a quarter of the grid")
    ap.add_argument("--precision", default="bf16", help="fp32 | bf16 (the evaluation's; same scores to 1e-4)")
    args = ap.parse_args()
    torch.manual_seed(0)
    mlflow.set_tracking_uri(f"sqlite:///{args.project / 'mlflow.db'}")
    coarse = xr.open_dataset(args.project / "data/05_model_input/coarse.nc").load()
    fine = xr.open_dataset(args.project / "data/05_model_input/fine.nc").load()
    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, stage in zip(axes, ("correction", "downscaling")):
        params = stage_params(args.project, stage, args.env)
        pairs = correction_pairs(coarse, params) if stage == "correction" else downscaling_pairs(coarse, fine, params)
        trained = latest(f"precipdiff-{stage}")
        sel = stage_params(REPO, stage, args.env)["sampler_selection"]  # this checkout's tiles and bands
        cond, base, target = validation_tiles(pairs, sel)
        residual = make_residual(base, target, trained.card.residual, pairs.transform)
        err = denoiser_error(trained.model, cond, residual)
        err.to_csv(args.out / f"denoiser_{stage}.csv", index=False)
        rms = float(np.sqrt(np.nanmean(residual**2)) / trained.model.residual_scale)
        print(f"\n{stage}: σ_data {trained.model.precond.sigma_data:.3f} (training), validation residual RMS "
              f"{rms:.3f} (scaled units)\n{err.round(4).to_string(index=False)}")
        ax.loglog(err["sigma"], err["rel_mse"], "o-", label="trained denoiser")
        ax.loglog(err["sigma"], err["rel_mse_gaussian"], "--", label="Gaussian denoiser (σ_data)")
        ax.set(title=f"{stage}: denoiser error on validation", xlabel="σ (scaled units)", ylabel="relative MSE")
        ax.legend()
        sample = lambda s, c, z: _sampler(trained, s, args.precision)(c, z)  # noqa: E731
        table = score_settings(sample, sweep_grid(args.quick), cond, base, target, trained.card.transform,
                               trained.card.residual,
                               members=int(sel["members"]), seed=int(sel["seed"]), pixel_km=float(sel["pixel_km"]),
                               psd_band_km=sel["psd_band_km"])
        table.to_csv(args.out / f"diagnosis_{stage}.csv", index=False)
        print(table.round(4).to_string())
    fig.tight_layout()
    fig.savefig(args.out / "denoiser_error.png", dpi=110)
    plot_sweep({st: pd.read_csv(args.out / f"diagnosis_{st}.csv") for st in ("correction", "downscaling")},
               args.out / "sampler_sweep.png")


def _sampler(trained, setting, precision):
    from precipdiff.nn.sampling import residual_sampler

    return residual_sampler(trained.model, trained.card.sampler_setting(setting), "cpu", precision)


if __name__ == "__main__":
    main()
