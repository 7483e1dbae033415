"""Inference nodes: read the satellite input, check it against the models, plan the hourly ensemble.

Nothing is sampled here: :func:`plan_ensemble` returns an :class:`~precipdiff.inference.output.EnsembleJob`
whose ``compute(hours)`` the output dataset calls hour by hour, after checking the output path and
skipping the hours already written (``precipdiff.inference.output``). Every check on the request
(parameters, input hours, model domain) therefore runs before any compute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
import xarray as xr

import precipdiff
from precipdiff.data import transforms
from precipdiff.data.contract import RESOLUTION, VARIABLE, axis, snap_box
from precipdiff.datasets.metrics import metric_history
from precipdiff.inference.chain import ChainSettings, hour_keys, run_chain
from precipdiff.inference.datasets import SatelliteFiles
from precipdiff.inference.inputs import InputError, check_hours
from precipdiff.inference.output import PRODUCT_VERSION, EnsembleJob, hour_dataset, with_clip_counts
from precipdiff.model_card import TrainedModel
from precipdiff.nn.sampling import pick_device, resolved_precision

log = logging.getLogger(__name__)


NOTES_ATTR = "precipdiff_notes"  # global attribute: what a user must know about this output, one line each


def real_input(satellite: xr.Dataset) -> bool:
    """True for IMERG files and for a canonical NetCDF not simulated by precipdiff (its ``source``)."""
    if satellite.attrs.get("input_kind") == "IMERG":
        return True
    source = str(satellite[VARIABLE].attrs.get("source", "")).lower()
    return not ("precipdiff" in source and ("simulated" in source or "synthetic" in source))


def training_notes(satellite: xr.Dataset, correction: TrainedModel, downscaling: TrainedModel,
                   allow_synthetic: bool) -> list[str]:
    """One line per thing the user must know: a model trained on synthetic data applied to a real
    input (refused with :class:`ValueError` unless ``allow_synthetic``), a box outside a model's
    training domain."""
    notes, real = [], real_input(satellite)
    for model in (correction, downscaling):
        trained_on = model.card.provenance
        if real and trained_on.synthetic:
            line = (f"{model.name} was trained on {trained_on.describe()}, and the input is real "
                    f"({satellite.attrs.get('input_kind', 'satellite data')})")
            if not allow_synthetic:
                raise ValueError(f"inference: {line}: refused, its output would not be trustworthy; pass "
                                 "--allow-synthetic-models (inference.allow_synthetic_models: true) to run it anyway")
            notes.append(line + " (allowed by --allow-synthetic-models)")
        outside = outside_domain(satellite["lat"].values, satellite["lon"].values, model)
        if outside:
            notes.append(outside)
    return notes


def check_parameters(params: Mapping) -> None:
    """Raise ``ValueError`` naming the ``inference.*`` parameter that cannot work."""
    def bad(key: str, value, expected: str):
        raise ValueError(f"inference.{key}: expected {expected}; got {value!r}")

    if params.get("box") is not None:
        snap_box(params["box"], name="inference.box")
    ChainSettings.from_params(params.get("chain"), "inference.chain")  # members, seeds, sampler, tiles, precision
    if not float(params.get("max_output_rate_mm_h", 0)) > 0:
        bad("max_output_rate_mm_h", params.get("max_output_rate_mm_h"), "a rate > 0 (mm/h), the runaway guard")
    thresholds = params.get("thresholds_mm_h") or []
    if not thresholds or any(float(t) < 0 for t in thresholds):
        bad("thresholds_mm_h", thresholds, "a non-empty list of rates >= 0 (mm/h)")
    for key in ("start", "end"):
        if params.get(key) is not None:
            try:
                pd.Timestamp(params[key])
            except ValueError:
                bad(key, params[key], "a time such as 2022-10-30T06:00 (end of the hour, UTC)")
    if params.get("start") is not None and params.get("end") is not None \
            and pd.Timestamp(params["start"]) > pd.Timestamp(params["end"]):
        bad("start", params["start"], f"a first hour <= inference.end ({params['end']})")


def read_satellite(files: SatelliteFiles, params: dict) -> xr.Dataset:
    """Hourly satellite input (mm/h) on ``inference.box`` for ``inference.start … end``.

    Raises ``InputError`` naming the hours whose field is missing everywhere (before any compute).
    """
    check_parameters(params)
    sat, report = files.read(params.get("box"), params.get("start"), params.get("end"),
                             params.get("max_rate_mm_h"), bool(params.get("progress", True)))
    check_hours(sat)
    if report["missing_hours"]:
        log.warning("inference input: %d requested hour(s) have no (complete) input and are skipped: %s",
                    len(report["missing_hours"]), report["missing_hours"][:10])
    log.info("inference input: %s", {k: v for k, v in report.items() if k != "missing_hours"})
    sat.attrs["input_kind"] = report["kind"]
    sat.attrs["input_files"] = str(report["files"])
    return sat


def plan_ensemble(satellite: xr.Dataset, correction: TrainedModel, downscaling: TrainedModel,
                  params: dict) -> EnsembleJob:
    """The job the output dataset runs hour by hour: chain, probabilities, provenance, signature."""
    transform = _check_models(correction, downscaling)
    lat_c, lon_c = satellite["lat"].values, satellite["lon"].values
    notes = training_notes(satellite, correction, downscaling, bool(params.get("allow_synthetic_models", False)))
    for line in notes:
        log.warning("inference: %s", line)
    settings = ChainSettings.from_params(params.get("chain"), "inference.chain")
    deterministic = all(m.model.objective == "regression" for m in (correction, downscaling))
    seeds = settings.seeds()[:1] if deterministic else settings.seeds()  # as run_chain: one member
    fine = tuple(axis(v[0] - RESOLUTION["satellite"] / 2, v[-1] + RESOLUTION["satellite"] / 2, RESOLUTION["radar"])
                 for v in (lat_c, lon_c))
    thresholds = [float(t) for t in params["thresholds_mm_h"]]

    threads = params.get("threads")
    max_rate = float(params["max_output_rate_mm_h"])

    def compute(hours: pd.DatetimeIndex) -> xr.Dataset:
        if threads:
            torch.set_num_threads(int(threads))
        rate = satellite[VARIABLE].sel(time=hours.to_numpy()).values
        corrected, members = run_chain(transforms.forward_transform(rate, transform), (lat_c, lon_c), fine,
                                       hour_keys(hours), correction, downscaling, settings)
        members, clipped = transforms.clip_runaway(transforms.inverse_transform(members, transform), max_rate)
        corrected, clipped_c = transforms.clip_runaway(transforms.inverse_transform(corrected, transform), max_rate)
        if clipped.any() or clipped_c.any():
            log.warning("inference: %d member cells (1 km) and %d corrected cells (0.1°) above %g mm/h clipped "
                        "in %s", int(clipped.sum()), int(clipped_c.sum()), max_rate, list(hours.strftime("%Y-%m-%dT%H")))
        ds = hour_dataset(hours, members, corrected, rate, fine, (lat_c, lon_c), seeds, thresholds)
        return with_clip_counts(ds, clipped, clipped_c, max_rate)

    signature = _signature(correction, downscaling, settings, seeds, thresholds, lat_c, lon_c, params)
    attrs = provenance(signature, satellite) | {"device": str(pick_device(settings.device)),
                                                 "batch_size": settings.batch_size}  # bit-exact regeneration
    attrs |= trained_on_attrs(correction, downscaling) | {NOTES_ATTR: "\n".join(notes) or "none",
                                                          "outside_training_domain": _yes(notes, "leaves the training")}
    return EnsembleJob(pd.DatetimeIndex(satellite["time"].values), compute, signature, attrs,
                       int(params.get("hours_per_chunk", 1)),
                       bool(params.get("progress", True)))


def ensemble_metrics(ensemble: xr.Dataset) -> dict:
    """Run metrics of the written product (kedro-mlflow metric histories, prefix ``inference``): hours,
    members, mean rate (mm/h), and the cells the runaway guard clipped (1 km members, 0.1° members)."""
    values = {"hours": ensemble.sizes["time"], "members": ensemble.sizes["member"],
              "mean_rate_mm_h": float(ensemble["precipitation_mean"].mean()),
              "clipped_cells": int(ensemble["clipped_cells"].sum()) if "clipped_cells" in ensemble else 0,
              "clipped_corrected_cells": int(ensemble["clipped_corrected_cells"].sum())
              if "clipped_corrected_cells" in ensemble else 0}
    values["clipped_fraction"] = values["clipped_cells"] / max(int(ensemble["precipitation"].size), 1)
    return metric_history(values)


def _check_models(correction: TrainedModel, downscaling: TrainedModel) -> str:
    """The common intensity transform; the models must be a correction and a downscaling model."""
    for model, stage in ((correction, "correction"), (downscaling, "downscaling")):
        if model.card.stage != stage:
            raise ValueError(f"inference.{stage}_model: {model.name} is a {model.card.stage!r} model; "
                             f"expected a {stage} model")
    if correction.card.transform != downscaling.card.transform:
        raise ValueError(f"inference: the models use different intensity transforms "
                         f"({correction.card.transform!r} vs {downscaling.card.transform!r})")
    return correction.card.transform


def outside_domain(lat: np.ndarray, lon: np.ndarray, model: TrainedModel) -> str | None:
    """One line if the 0.1° cells ``lat × lon`` leave the model's training domain, else None."""
    dom = model.card.provenance.domain
    if dom is None:
        return None
    tol = RESOLUTION["satellite"] / 2 + 1e-6  # training domains are given by cell centres
    inside = (lat.min() >= dom.lat_min - tol and lat.max() <= dom.lat_max + tol
              and lon.min() >= dom.lon_min - tol and lon.max() <= dom.lon_max + tol)
    if inside:
        return None
    return (f"the box (cell centres lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f}) "
            f"leaves the training domain of {model.name} (lat {dom.lat_min:.2f}..{dom.lat_max:.2f}, "
            f"lon {dom.lon_min:.2f}..{dom.lon_max:.2f}); {conditioning_implication(model)}")


def conditioning_implication(model: TrainedModel) -> str:
    """What leaving the training domain means for a model, given what it conditions on (#21)."""
    location = [c for c in model.card.conditioning.static_channels if c in ("lat", "lon")]
    if location:
        return (f"it takes {' and '.join(location)} as inputs, so there it extrapolates in location, not in "
                f"weather: expect degraded output (retrain without location channels to transfer)")
    return ("it conditions on the fields alone (no location inputs), so it applies what it learned "
            "from its training regions' weather; docs/experiments.md (held_out) gives the cost measured "
            "on regions held out of training")


def trained_on_attrs(correction: TrainedModel, downscaling: TrainedModel) -> dict:
    """``<stage>_training_data`` (one line), ``_training_source``, ``_training_regions``,
    ``_training_period`` (ISO 8601 interval), ``_training_box`` and ``_training_data_fingerprint``
    of both models (global attributes), from their model cards."""
    out = {}
    for stage, model in (("correction", correction), ("downscaling", downscaling)):
        p = model.card.provenance
        out |= {f"{stage}_training_data": p.describe(), f"{stage}_training_source": p.source or "unknown",
                f"{stage}_training_regions": ",".join(p.regions) or "none",
                f"{stage}_training_period": "unknown" if not p.period else "/".join(p.period),
                f"{stage}_training_box": json.dumps(None if p.domain is None else dataclasses.asdict(p.domain)),
                f"{stage}_training_data_fingerprint": p.data_fingerprint or "unknown"}
    return out


def _yes(notes: list[str], marker: str) -> str:
    return "yes" if any(marker in n for n in notes) else "no"


def _signature(correction, downscaling, settings: ChainSettings, seeds, thresholds, lat, lon, params) -> dict:
    """Every setting that changes the numbers of an hour (compared on re-runs)."""
    def model(m: TrainedModel) -> dict:
        reg = m.registered
        return {"name": reg and reg.name, "version": reg and reg.version, "run_id": reg and reg.run_id}

    return {
        "correction": model(correction), "downscaling": model(downscaling),
        "correction_sampler": correction.card.sampler_setting(settings.sampler),
        "downscaling_sampler": downscaling.card.sampler_setting(settings.sampler),
        "member_seeds": list(seeds), "thresholds_mm_h": thresholds,
        "lat_sat": [round(float(lat[0]), 6), round(float(lat[-1]), 6), int(lat.size)],
        "lon_sat": [round(float(lon[0]), 6), round(float(lon[-1]), 6), int(lon.size)],
        "tile": settings.tile, "overlap": settings.overlap,
        "precision": resolved_precision(pick_device(settings.device), settings.precision),
        "max_rate_mm_h": params.get("max_rate_mm_h"), "max_output_rate_mm_h": params.get("max_output_rate_mm_h"),
        "precipdiff_version": precipdiff.__version__, "product_version": PRODUCT_VERSION,
    }


def provenance(signature: dict, satellite: xr.Dataset) -> dict:
    """Global attributes (CF-1.8 / ACDD-1.3) saying what made the file."""
    attrs = {
        "Conventions": "CF-1.8, ACDD-1.3",
        "title": "PrecipDiff 0.01 degree (1 km) precipitation ensemble",
        "summary": "Satellite precipitation corrected and downscaled by two EDM diffusion models on residuals",
        "references": "Dai & Ushijima-Mwesigwa (2025), PrecipDiff, arXiv:2501.07447",
        "source": f"precipdiff {precipdiff.__version__}",
        "history": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} precipdiff inference pipeline",
        "precipdiff_version": precipdiff.__version__,
        "input_source": satellite[VARIABLE].attrs.get("source", "unknown"),
        "input_kind": satellite.attrs.get("input_kind", "unknown"),
        "input_files": satellite.attrs.get("input_files", "unknown"),
        "n_members": len(signature["member_seeds"]),
        "tile": signature["tile"], "tile_overlap": signature["overlap"], "precision": signature["precision"],
        "thresholds_mm_h": np.asarray(signature["thresholds_mm_h"], np.float32),
    }
    for stage in ("correction", "downscaling"):
        for key, value in signature[stage].items():
            attrs[f"{stage}_model_{key}"] = "none" if value is None else str(value)
        attrs[f"{stage}_sampler"] = json.dumps(signature[f"{stage}_sampler"], sort_keys=True)
    for key, value in signature["downscaling_sampler"].items():
        attrs[f"sampler_{key}"] = value
    return attrs
