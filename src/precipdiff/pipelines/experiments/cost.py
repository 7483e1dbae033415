"""Cost against benefit: training time, inference time per km² per member, peak memory and CRPS of
quantile mapping, the regression chain and the diffusion chain, measured on this machine.

Inference of each method runs in a fresh process (``spawn``) on the same ``cost.hours`` test hours,
so its peak resident memory (:func:`_rss_mb`) is its own: the interpreter, torch and the models are
included (``baseline_rss_mb`` is the same process before the method runs).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.baselines import QuantileMapping
from precipdiff.datasets.metrics import metric_history
from precipdiff.inference.chain import ChainSettings
from precipdiff.pipelines.evaluation import methods
from precipdiff.model_card import TrainedModel

log = logging.getLogger(__name__)
EARTH_RADIUS_KM = 6371.0


def area_km2(lat: np.ndarray, lon: np.ndarray) -> float:
    """Area of a regular lat/lon grid (cell centres, degrees) on a sphere: Σ R² Δλ (sin φ₂ − sin φ₁)."""
    dlat, dlon = np.deg2rad(abs(lat[1] - lat[0])), np.deg2rad(abs(lon[1] - lon[0]))
    phi = np.deg2rad(lat)
    return float(EARTH_RADIUS_KM**2 * dlon * lon.size * np.sum(np.sin(phi + dlat / 2) - np.sin(phi - dlat / 2)))


def _rss_mb() -> float:
    """Peak resident memory of this process so far (MB).

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own address
    space (``ru_maxrss`` is not: it keeps the parent's peak across fork + exec). Elsewhere ``ru_maxrss``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _run_method(method: str, chunk: methods.Chunk, models: tuple, qm: dict | None, settings) -> dict:
    """In the child process: the method on ``chunk``; wall seconds, members and peak RSS."""
    before = _rss_mb()
    started = time.perf_counter()
    if method == "qm_bilinear":
        fields = methods.qm_fields(chunk, QuantileMapping.from_dict(qm))["qm_bilinear"][:, None]
    else:
        fields = methods.chain_fields(chunk, *models, settings)["fine"]
    return {"inference_seconds": time.perf_counter() - started, "members": fields.shape[1],
            "baseline_rss_mb": before, "peak_rss_mb": _rss_mb()}


def _in_fresh_process(*args) -> dict:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_run_method, *args).result()


def measure_cost(coarse: xr.Dataset, fine: xr.Dataset, hours: pd.DataFrame, baselines: dict,
                 correction: TrainedModel, downscaling: TrainedModel, correction_regression: TrainedModel,
                 downscaling_regression: TrainedModel, metrics: pd.DataFrame, evaluation: dict,
                 params: dict) -> pd.DataFrame:
    """One row per method: ``train_seconds``, ``inference_seconds``, ``us_per_km2_member``,
    ``peak_rss_mb``, ``crps_fair`` (the evaluation's, mm/h) on the first ``params["hours"]`` evaluated hours.

    Training time is measured where the training happens: for the networks the wall time of their
    training epochs (``train_seconds`` in the model info, both stages, summed over resumes), for
    quantile mapping the fit of the 1 km mapping by the evaluation (``qm_fine_fit_seconds`` of
    ``evaluation_baselines``); NaN where it was not recorded.
    """
    chunk = next(methods.iter_chunks(coarse, fine, hours.iloc[: int(params["hours"])], int(params["hours"])))
    settings = ChainSettings.from_params(evaluation["chain"], "evaluation.chain")
    area = area_km2(*chunk.fine_grid)
    crps = metrics[(metrics["metric"] == "crps_fair") & (metrics["grid"] == "fine")].set_index("method")["value"]
    runs = {"qm_bilinear": ((None, None), float(baselines.get("qm_fine_fit_seconds", np.nan))),
            "regression_chain": ((correction_regression, downscaling_regression),
                                 _train_seconds(correction_regression, downscaling_regression)),
            "diffusion_chain": ((correction, downscaling), _train_seconds(correction, downscaling))}
    rows = []
    for method, (models, train_s) in runs.items():
        if models[0] is not None and not all(m.enabled for m in models):
            log.info("cost: %s disabled, not measured", method)
            continue
        out = _in_fresh_process(method, chunk, models, baselines["qm_fine"], settings)
        per = out["inference_seconds"] / (len(chunk.times) * out["members"] * area)
        rows.append({"method": method, "train_seconds": train_s, **out, "hours": len(chunk.times),
                     "area_km2": area, "us_per_km2_member": per * 1e6, "crps_fair": float(crps.get(method, np.nan))})
        log.info("cost %s: train %.1f s, %.3g µs per km² per member, peak %.0f MB", method, train_s,
                 per * 1e6, out["peak_rss_mb"])
    return pd.DataFrame(rows)


def _train_seconds(*models: TrainedModel) -> float:
    return float(sum(np.nan if m.card.train_seconds is None else m.card.train_seconds for m in models))


def cost_metrics(cost: pd.DataFrame) -> dict:
    """MLflow run metrics ``<method>.<column>`` (the catalog prefixes ``experiments.cost``)."""
    cols = ["train_seconds", "inference_seconds", "us_per_km2_member", "peak_rss_mb", "crps_fair"]
    return metric_history({f"{r['method']}.{c}": r[c] for r in cost.to_dict("records") for c in cols})


def cost_markdown(cost: pd.DataFrame) -> str:
    """The cost table as Markdown for the README."""
    lines = ["### Cost against benefit", "",
             "| method | training (s) | inference (µs / km² / member) | peak RSS (MB) | fair CRPS (mm/h) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.method} | {r.train_seconds:.3g} | {r.us_per_km2_member:.3g} | {r.peak_rss_mb:.0f} | {r.crps_fair:.3g} |"
              for r in cost.itertuples()]
    return "\n".join(lines) + "\n"

