"""Evaluation nodes: test hours, baselines, streamed scores of every method, flags, model selection.

All rates are mm/h; grids are the 0.1° satellite grid (grid ``coarse``, scored against the radar
max-pooled to 0.1°) and the 0.01° ≈ 1 km radar grid (grid ``fine``). Every scoring node streams
the selected test hours ``evaluation.chunk_hours`` at a time through its method(s) and the
accumulators of :mod:`precipdiff.verification`, so memory does not grow with the test set.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.baselines import QuantileMapping, fit_alpha
from precipdiff.data import boxes as bx
from precipdiff.data import transforms
from precipdiff.datasets.metrics import metric_history
from precipdiff.inference.chain import ChainSettings, hour_keys
from precipdiff.pipelines.evaluation import flags, methods
from precipdiff.pipelines.evaluation.scores import ScoreConfig, Scoreboard, ensemble_mean
from precipdiff.pipelines.evaluation.selection import VALIDATION, selection_decision, setup_fingerprint, tagged_score
from precipdiff.model_card import TrainedModel
from precipdiff.verification import exceedance_probability, hourly_table, select, tidy

log = logging.getLogger(__name__)
GRIDS = ("coarse", "fine")  # the metrics table's column ``grid`` (also ``cost`` and ``downscaling_only``)
BLOCK = "downscaling_only"  # the grid of the downscaling-alone block (1 km, from the true radar at 0.1°)


# ---- which hours ------------------------------------------------------------------------------
def select_test_hours(coarse: xr.Dataset, fine: xr.Dataset, params: dict) -> pd.DataFrame:
    """The evaluated test box-hours (the test hours of a one-box run): all, or ``hours.max_hours`` of
    them chosen by ``hours.selection``.

    ``wettest``: the largest radar mean rate (so scores describe rainy hours, not the climatology);
    ``evenly_spaced``: every k-th test box-hour in time; ``stratified``: evenly spaced within each
    region, the regions sharing ``max_hours`` equally (a fixed rule, blind to any result; for one
    region it is ``evenly_spaced``). ``hour_key`` is the box-hour's key
    (:func:`precipdiff.seeds.sample_keys`: the hour key for the one box of a one-box run); ``sample``
    marks the ``figures.sample_hours`` wettest selected box-hours shown on the maps.
    """
    hp = params["hours"]
    split = hp.get("split", "test")  # benchmarks score VALIDATION box-hours the same way
    cap, how = hp.get("max_hours"), hp.get("selection", "wettest")
    table = _split_hours(coarse, fine, split, cap, how, hp.get("regions"))
    n_split = int((coarse["split"].values.astype(str) == split).sum())
    n_maps = int(params["figures"]["sample_hours"])
    if n_maps < 1:
        raise ValueError(f"evaluation.figures.sample_hours must be >= 1, got {n_maps}")
    table["sample"] = table.index.isin(table["radar_mean_mm_h"].fillna(-1).nlargest(n_maps).index)
    log.info("evaluation: %d of %d %s box-hours (%s) in %d region(s), %.2f mm/h mean radar rate", len(table),
             n_split, split, "all" if cap is None else how, table["region"].nunique(), table["radar_mean_mm_h"].mean())
    return table.sort_values(["time", "box_number"]).reset_index(drop=True)


def select_validation_hours(coarse: xr.Dataset, fine: xr.Dataset, params: dict) -> pd.DataFrame:
    """The ``selection.validation_hours`` validation box-hours the champion is chosen on (stratified by
    region: evenly spaced in time for a one-box run)."""
    table = _split_hours(coarse, fine, "validation", params["selection"]["validation_hours"], "stratified")
    return table.sort_values(["time", "box_number"]).reset_index(drop=True)


def _split_hours(coarse: xr.Dataset, fine: xr.Dataset, split: str, cap, how: str, regions=None) -> pd.DataFrame:
    """Box-hours of ``split`` (time, sample_index, hour_key, box, region, radar mean and wet fraction over
    the covered cells), of ``regions`` only when given, at most ``cap`` of them chosen by ``how``."""
    if not all(np.array_equal(coarse[c].values, fine[c].values) for c in ("time", "box_number")):
        raise ValueError("evaluation: coarse_model_input and fine_model_input hold different box-hours")
    index = np.flatnonzero(coarse["split"].values.astype(str) == split)
    if index.size == 0:
        raise ValueError(f"evaluation: coarse_model_input has no {split!r} hour (preprocessing.split.fractions.{split})")
    radar = transforms.inverse_transform(fine["radar"].values[index], fine.attrs["transform"])
    table = pd.DataFrame({"time": pd.to_datetime(coarse["time"].values[index]), "sample_index": index,
                          "hour_key": bx.keys(coarse)[index], "box": coarse["box"].values[index].astype(str),
                          "box_number": coarse["box_number"].values[index],
                          "region": coarse["region"].values[index].astype(str),
                          "radar_mean_mm_h": np.nanmean(radar, axis=(1, 2)),
                          "radar_wet_fraction": np.nanmean(np.where(np.isfinite(radar), radar >= 0.1, np.nan),
                                                           axis=(1, 2))})
    if regions:  # only these regions' box-hours (the held-out experiment)
        missing = sorted(set(regions) - set(table["region"]))
        if missing:
            raise ValueError(f"evaluation.hours.regions: no {split} box-hour in {missing}; the {split} split has "
                             f"{sorted(table['region'].unique())}")
        table = table[table["region"].isin(regions)].reset_index(drop=True)
    if cap is not None and int(cap) < len(table):
        table = _subset(table, int(cap), how)
    return table


def _subset(table: pd.DataFrame, n: int, how: str) -> pd.DataFrame:
    if how == "wettest":
        return table.loc[table["radar_mean_mm_h"].fillna(-1).nlargest(n).index]
    if how == "evenly_spaced":
        return table.iloc[np.unique(np.linspace(0, len(table) - 1, n).round().astype(int))]
    if how == "stratified":
        return _stratified(table, n)
    raise ValueError(f"evaluation.hours.selection must be 'wettest', 'evenly_spaced' or 'stratified', got {how!r}")


def _stratified(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` box-hours shared equally among the regions (in name order, the first ones taking the
    remainder; a region with fewer gives the rest to the others), evenly spaced in time within each."""
    groups = {r: g.sort_values(["time", "box_number"]) for r, g in table.groupby("region", sort=True)}
    quota, left = dict.fromkeys(groups, 0), n
    while left > 0:
        open_ = [r for r, g in groups.items() if quota[r] < len(g)]
        if not open_:
            break
        for r in open_[:left] if left < len(open_) else open_:
            quota[r] += 1
            left -= 1
    parts = [_subset(g, quota[r], "evenly_spaced") for r, g in groups.items() if quota[r]]
    return pd.concat(parts)


# ---- baselines ---------------------------------------------------------------------------------
def fit_baselines(coarse: xr.Dataset, fine: xr.Dataset, params: dict) -> dict:
    """Quantile mappings and the RainFARM slope, fitted on the **training split only**.

    ``qm_fine``: satellite 0.1° values → the radar 0.01° distribution (then bilinear to 1 km:
    ``qm_bilinear``, and RainFARM's input); ``qm_coarse``: satellite → the max-pooled radar 0.1°
    distribution (the correction-stage baseline ``qm``). ``rainfarm_alpha``: minus the RAPSD slope
    of the ``rainfarm.alpha_fit_hours`` wettest training radar fields (or the number given).
    ``qm_fine_fit_seconds``: wall time of the ``qm_fine`` fit (the cost experiment's training time of QM).
    """
    train = coarse["split"].values.astype(str) == "train"
    inv = lambda da: transforms.inverse_transform(da.values[train], coarse.attrs["transform"])  # noqa: E731
    sat, radar_coarse, radar = inv(coarse["satellite"]), inv(coarse["radar"]), inv(fine["radar"])
    qm = params["qm"]
    kw = {"n_quantiles": int(qm["n_quantiles"]), "wet_threshold": float(qm["wet_threshold_mm_h"])}
    rf = params["rainfarm"]
    alpha = _fit_alpha(radar, rf) if rf["alpha"] == "fit" else float(rf["alpha"])
    started = time.perf_counter()
    qm_fine = QuantileMapping.fit(sat, radar, **kw)
    out = {"qm_fine": qm_fine.to_dict(), "qm_fine_fit_seconds": time.perf_counter() - started,
           "qm_coarse": QuantileMapping.fit(sat, radar_coarse, **kw).to_dict(),
           "rainfarm_alpha": float(alpha), "train_hours": int(train.sum())}
    log.info("evaluation baselines: QM on %d training hours, RainFARM alpha %.2f", out["train_hours"], alpha)
    return out


def _fit_alpha(radar: np.ndarray, rf: dict) -> float:
    """RainFARM alpha from the ``alpha_fit_hours`` wettest complete (NaN-free) training radar fields."""
    complete = np.flatnonzero(np.isfinite(radar).all(axis=(1, 2)))
    if complete.size == 0:
        raise ValueError("evaluation.baselines.rainfarm.alpha: every training radar field has missing cells, "
                         "so the spectral slope cannot be fitted; set alpha to a number (e.g. 2.0)")
    wet = complete[np.argsort(radar[complete].mean(axis=(1, 2)))[::-1][: int(rf["alpha_fit_hours"])]]
    return fit_alpha(radar[np.sort(wet)], pixel_km=1.0, min_km=float(rf["alpha_min_km"]))


# ---- scores --------------------------------------------------------------------------------------
def _board(params: dict) -> Scoreboard:
    configs = {g: ScoreConfig.from_params(params["scores"], g) for g in GRIDS}
    return Scoreboard({**configs, BLOCK: configs["fine"]})


def _cost_rows(method: str, seconds: dict[str, float]) -> pd.DataFrame:
    return tidy([{"metric": k, "value": float(v)} for k, v in seconds.items()], method=method, grid="cost")


def score_baselines(coarse: xr.Dataset, fine: xr.Dataset, hours: pd.DataFrame, baselines: dict,
                    params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Satellite, QM and RainFARM on both grids, plus the radar reference spectrum: the tidy
    table and the per-hour sums (:meth:`~.scores.Scoreboard.hourly`)."""
    board, started = _board(params), time.perf_counter()
    qm_fine, qm_coarse = (QuantileMapping.from_dict(baselines[k]) for k in ("qm_fine", "qm_coarse"))
    rf, chain = params["baselines"]["rainfarm"], ChainSettings.from_params(params["chain"], "evaluation.chain")
    for chunk in methods.iter_chunks(coarse, fine, hours, params["chunk_hours"]):
        keys = chunk.hour_keys
        board.add_reference("fine", chunk.radar, keys)
        board.add("satellite", "coarse", chunk.sat, chunk.radar_coarse, keys)
        board.add("qm", "coarse", qm_coarse.apply(chunk.sat), chunk.radar_coarse, keys)
        fields = {**methods.satellite_fields(chunk), **methods.qm_fields(chunk, qm_fine),
                  **methods.rainfarm_fields(chunk, qm_fine, baselines["rainfarm_alpha"], chain.n_members,
                                            chain.seed, rf.get("kernel_type"))}
        for name, f in fields.items():
            board.add(name, "fine", f, chunk.radar, keys, sat=chunk.sat)
    seconds = time.perf_counter() - started
    log.info("evaluation: baselines scored on %d hours in %.1f s", len(hours), seconds)
    return pd.concat([board.table(), _cost_rows("baselines", {"seconds": seconds})], ignore_index=True), board.hourly()


def score_reference(coarse: xr.Dataset, fine: xr.Dataset, hours: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The radar's own spectrum on the scored hours (the reference of the PSD ratios), alone."""
    return _reference_board(coarse, fine, hours, params).table()


def reference_hourly(coarse: xr.Dataset, fine: xr.Dataset, hours: pd.DataFrame, params: dict) -> pd.DataFrame:
    """:func:`score_reference` as per-hour sums (what the bootstrap intervals of the PSD ratios need)."""
    return _reference_board(coarse, fine, hours, params).hourly()


def _reference_board(coarse, fine, hours, params) -> Scoreboard:
    board = _board(params)
    for chunk in methods.iter_chunks(coarse, fine, hours, params["chunk_hours"]):
        board.add_reference("fine", chunk.radar, chunk.hour_keys)
    return board


def _score_chain(coarse, fine, hours, correction, downscaling, params, names: dict, samples: bool = False):
    """Stream the chain; ``names`` maps ``corrected | upsampled | fine | fine_mean`` to method names.

    Returns the tidy table, the per-hour sums and, with ``samples``, the map fields."""
    board, settings, kept = _board(params), ChainSettings.from_params(params["chain"], "evaluation.chain"), []
    chain_s = score_s = 0.0
    members = 1
    for chunk in methods.iter_chunks(coarse, fine, hours, params["chunk_hours"]):
        t0 = time.perf_counter()
        out = methods.chain_fields(chunk, correction, downscaling, settings)
        t1 = time.perf_counter()
        members = out["fine"].shape[1]
        if "corrected" in names:
            board.add(names["corrected"], "coarse", out["corrected"], chunk.radar_coarse, chunk.hour_keys)
        for key in ("upsampled", "fine"):
            if key in names:
                board.add(names[key], "fine", out[key], chunk.radar, chunk.hour_keys, sat=chunk.sat)
        if "fine_mean" in names and members > 1:
            board.add(names["fine_mean"], "fine", ensemble_mean(out["fine"]), chunk.radar, chunk.hour_keys,
                      sat=chunk.sat)
        if samples:
            kept.append(sample_fields(chunk, hours, out, params["figures"], float(params["scores"]["max_rate_mm_h"])))
        chain_s, score_s = chain_s + t1 - t0, score_s + time.perf_counter() - t1
    method = names["fine"]
    cost = {"chain_seconds": chain_s, "score_seconds": score_s, "members": members,
            "seconds_per_member_hour": chain_s / max(len(hours) * members, 1)}
    log.info("evaluation %s: %d hours × %d members, chain %.1f s (%.2f s per member-hour), scores %.1f s",
             method, len(hours), members, chain_s, cost["seconds_per_member_hour"], score_s)
    table = pd.concat([board.table(), _cost_rows(method, cost)], ignore_index=True)
    if samples:
        return table, board.hourly(), xr.concat([k for k in kept if k is not None], dim="sample")
    return table, board.hourly()


def score_regression_chain(coarse, fine, hours, correction: TrainedModel | None, downscaling: TrainedModel | None,
                           params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``regression_correction`` (0.1°) and ``regression_chain`` (1 km): table and per-hour sums;
    empty if a model is disabled."""
    if not (correction and correction.enabled and downscaling and downscaling.enabled):
        log.info("evaluation: a regression model is disabled; regression_chain not evaluated")
        return tidy([]), hourly_table({})
    return _score_chain(coarse, fine, hours, correction, downscaling, params,
                        {"corrected": "regression_correction", "fine": "regression_chain"})


def score_diffusion_chain(coarse, fine, hours, correction: TrainedModel, downscaling: TrainedModel, params: dict):
    """The PrecipDiff ensemble on both grids, its member mean, the correction-only ablation: table,
    per-hour sums and map fields."""
    names = {"corrected": "correction_diffusion", "upsampled": "correction_diffusion_bilinear",
             "fine": "diffusion_chain", "fine_mean": "diffusion_chain_mean"}
    return _score_chain(coarse, fine, hours, correction, downscaling, params, names, samples=True)


def score_downscaling_only(coarse, fine, hours, downscaling: TrainedModel,
                           params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``downscaling_diffusion(_mean)``: the downscaling model applied to the raw satellite upsampled
    (no correction; the ablation of the correction stage)."""
    return _score_chain(coarse, fine, hours, None, downscaling, params,
                        {"fine": "downscaling_diffusion", "fine_mean": "downscaling_diffusion_mean"})


def sample_fields(chunk: methods.Chunk, hours: pd.DataFrame, out: dict, figures: dict,
                  max_rate_mm_h: float) -> xr.Dataset | None:
    """Map fields (mm/h, clipped as scored) of the chunk's ``sample`` box-hours: satellite, corrected,
    two members, member mean, P(≥ ``exceedance_mm_h``), radar; one ``sample`` each, with its own
    cell centres (``lat``/``lon``, ``coarse_lat``/``coarse_lon``: the box-hours may lie in several boxes)."""
    keep = np.isin(chunk.hour_keys, hours.loc[hours["sample"], "hour_key"].values)
    if not keep.any():
        return None
    thr, k = float(figures["exceedance_mm_h"]), int(keep.sum())
    (lat_c, lon_c), (lat, lon) = chunk.coarse_grid, chunk.fine_grid
    out = {name: np.minimum(v[keep], max_rate_mm_h) for name, v in out.items()}
    fine, n = out["fine"], min(2, out["fine"].shape[1])
    coarse_dims, fine_dims = ("sample", "coarse_y", "coarse_x"), ("sample", "y", "x")
    per = lambda axis, dim: (("sample", dim), np.broadcast_to(axis, (k, axis.size)))  # noqa: E731
    return xr.Dataset(
        {"satellite": (coarse_dims, chunk.sat[keep]),
         "corrected": (("sample", "member", "coarse_y", "coarse_x"), out["corrected"][:, :n]),
         "downscaled": (("sample", "member", "y", "x"), fine[:, :n]),
         "ensemble_mean": (fine_dims, ensemble_mean(fine)),
         "exceedance_probability": (fine_dims, exceedance_probability(fine, thr), {"threshold_mm_h": thr}),
         "radar": (fine_dims, chunk.radar[keep])},
        coords={"time": ("sample", chunk.times[keep]), "member": np.arange(n),
                "box": ("sample", hours.set_index("hour_key").loc[np.asarray(chunk.hour_keys)[keep], "box"].to_numpy()),
                "lat": per(lat, "y"), "lon": per(lon, "x"), "coarse_lat": per(lat_c, "coarse_y"),
                "coarse_lon": per(lon_c, "coarse_x")},
        attrs={"units": "mm h-1", "n_members": int(out["fine"].shape[1])},
    ).astype(np.float32)


def score_downscaling_block(coarse, fine, hours, downscaling: TrainedModel, baselines: dict,
                            params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stage ``downscaling_only``: the downscaling model, RainFARM and bilinear from the true radar
    at 0.1° (:func:`.methods.downscaling_only_fields`) on the ``downscaling_only.max_hours``
    wettest evaluated hours (all when null), with the radar reference spectrum."""
    block = params["downscaling_only"]
    if not block.get("enabled", True):
        return tidy([]), hourly_table({})
    cap = block.get("max_hours")
    chosen = hours if cap is None else _subset(hours, int(cap), "wettest")
    board, started = _board(params), time.perf_counter()
    settings = ChainSettings.from_params(params["chain"], "evaluation.chain")
    for chunk in methods.iter_chunks(coarse, fine, chosen, params["chunk_hours"]):
        board.add_reference(BLOCK, chunk.radar, chunk.hour_keys)
        fields = methods.downscaling_only_fields(chunk, downscaling, baselines["rainfarm_alpha"], settings,
                                                 params["baselines"]["rainfarm"].get("kernel_type"))
        for name, f in fields.items():
            board.add(name, BLOCK, f, chunk.radar, chunk.hour_keys)
    seconds = time.perf_counter() - started
    log.info("evaluation: downscaling-only block on %d hours in %.1f s", len(chosen), seconds)
    return pd.concat([board.table(), _cost_rows("ds_diffusion", {"block_seconds": seconds})],
                     ignore_index=True), board.hourly()


# ---- the champion ------------------------------------------------------------------------------
def candidate_versions(champion: dict, correction: TrainedModel, downscaling: TrainedModel) -> dict:
    """Registry versions of the evaluated diffusion models: from the model (same run) or the registry."""
    out = {}
    for stage, model in (("correction", correction), ("downscaling", downscaling)):
        version = (model.registered and model.registered.version) or champion.get("candidate_versions", {}).get(stage)
        out[stage] = None if version is None else str(version)
    return out


def score_selection(coarse, fine, hours: pd.DataFrame, champion: dict, correction: TrainedModel,
                    downscaling: TrainedModel, params: dict) -> pd.DataFrame:
    """The scores the champion is chosen on (grid ``validation``): ``diffusion_chain`` (the evaluated
    pair) and ``champion_chain`` (the registry's alias) through the same chain on the validation
    ``hours`` (:func:`select_validation_hours`), never on the test split.

    Empty when there is nothing to compare (no complete champion, or it is the evaluated pair); the
    champion's score comes from its version tags when it was scored with the same setup
    (:func:`~.selection.setup_fingerprint`; the chain is deterministic; ``selection.reuse_champion_score:
    false`` re-scores anyway).
    """
    versions, models = champion["versions"], champion.get("models")
    if any(v is None for v in versions.values()):
        log.info("evaluation: no complete %s to compare with (%s)", champion["alias"], versions)
        return tidy([])
    if versions == candidate_versions(champion, correction, downscaling) or not models:
        log.info("evaluation: the evaluated models are the %s (%s)", champion["alias"], versions)
        return tidy([])
    metric, fingerprint = params["selection"]["metric"], setup_fingerprint(hours, params)
    tables = [_validation_scores(coarse, fine, hours, correction, downscaling, params, "diffusion_chain")]
    reused = tagged_score(champion.get("tags", {}), versions, fingerprint, metric)
    if reused is not None and params["selection"].get("reuse_champion_score", True):
        log.info("evaluation: %s %s already scored on these validation hours (%s): %s %.4f", champion["alias"],
                 versions, fingerprint, metric, reused)
        tables.append(tidy([{"metric": metric, "value": reused}, {"metric": "score_reused_from_tags", "value": 1.0}],
                           method="champion_chain", grid=VALIDATION))
    else:
        log.info("evaluation: scoring the %s %s on %d validation hours", champion["alias"], versions, len(hours))
        tables.append(_validation_scores(coarse, fine, hours, models["correction"], models["downscaling"], params,
                                         "champion_chain"))
    return pd.concat(tables, ignore_index=True)


def _validation_scores(coarse, fine, hours, correction, downscaling, params, method: str) -> pd.DataFrame:
    """The chain's 1 km scores on the validation ``hours``, as grid ``validation``."""
    table = _score_chain(coarse, fine, hours, correction, downscaling, params, {"fine": method})[0]
    return table[table["grid"] == "fine"].assign(grid=VALIDATION)


# ---- the table -------------------------------------------------------------------------------------
def assemble_metrics(params: dict, *tables: pd.DataFrame) -> pd.DataFrame:
    """All score tables plus the derived rows: PSD ratios and the four artefact flags (``flags``).

    One of the tables must hold the radar reference spectrum (:func:`score_baselines` or
    :func:`score_reference`) for the PSD ratios.
    """
    table = pd.concat([t for t in tables if len(t)], ignore_index=True)
    derived = [flags.psd_ratio_rows(table, params["flags"]["oversmoothing"]),
               flags.bias_amplification_rows(table, params["flags"]["bias_amplification"]),
               flags.bias_growth_rows(table, params["flags"]["bias_growth"]),
               flags.seam_flag_rows(table, params["flags"]["seams"])]
    table = pd.concat([table, *derived], ignore_index=True)
    return table.sort_values(["grid", "method", "metric", "threshold", "scale"], kind="stable").reset_index(drop=True)


def headline_metrics(metrics: pd.DataFrame, params: dict) -> dict:
    """MLflow run metrics (:func:`~precipdiff.datasets.metrics.metric_history`): ``<grid>.<method>.<metric>[_<thr>mm_h]``."""
    out = {}
    for spec in params["headline"]:
        for r in metrics[select(metrics, spec, "evaluation.headline")].itertuples():
            suffix = f"_{r.threshold:g}mm_h" if "threshold" in spec else ""
            suffix += f"_scale{r.scale:g}" if "scale" in spec else ""
            out[f"{r.grid}.{r.method}.{r.metric}{suffix}"] = r.value
    return metric_history(out)


# ---- model selection ----------------------------------------------------------------------------
def select_models(validation: pd.DataFrame, validation_hours: pd.DataFrame, metrics: pd.DataFrame, champion: dict,
                  correction: TrainedModel, downscaling: TrainedModel, params: dict) -> tuple[dict, dict]:
    """The selection decision (:mod:`.selection`) on the ``validation`` scores (the test ``metrics``
    only become tags), twice: for the JSON report and for the registry dataset."""
    decision = selection_decision(validation, candidate_versions(champion, correction, downscaling), champion,
                                  params["selection"], setup_fingerprint(validation_hours, params), reported=metrics)
    log.info("model selection (%s): promote=%s, %s", decision["mode"], decision["promote"], decision["reason"])
    decision["models"] = {m.card.stage: {"residual_base": m.card.residual_base, "sampler": m.card.sampler,
                                         "training_data": m.card.provenance.describe()}
                          for m in (correction, downscaling)}
    return decision, decision


# ---- report ------------------------------------------------------------------------------------------
def _model_summary(selection: dict, chain: ChainSettings) -> str:
    """``correction: input base, Heun 18 steps from σ_max 80 …; downscaling: …`` (the sampler each
    model was scored with: its own, under the chain's overrides)."""
    from precipdiff.reporting.report import describe_sampler

    override = dict(chain.sampler or {})
    parts = [f"{stage}: {m['residual_base']} base, sampler {describe_sampler({**m['sampler'], **override})}"
             for stage, m in selection.get("models", {}).items()]
    return "; ".join(parts) or "samplers of the models"


def _trained_on(selection: dict) -> str:
    """``correction: synthetic data (…), box …, period …; downscaling: …`` (what the models learnt from)."""
    return "; ".join(f"{stage}: {m.get('training_data', 'unknown')}" for stage, m in selection.get("models", {}).items())


def make_report(metrics: pd.DataFrame, intervals: pd.DataFrame, selection: dict, hours: pd.DataFrame, maps, scores,
                coarse_scores, psd, ranks, fss, paired, probability: pd.DataFrame, diagram: pd.DataFrame, reliability,
                params: dict) -> str:
    """The self-contained HTML report (:func:`precipdiff.reporting.report.build_report`)."""
    from precipdiff.pipelines.evaluation.probability import diagram_verdict
    from precipdiff.reporting.report import build_report, describe_versions

    chain = ChainSettings.from_params(params["chain"], "evaluation.chain")
    cap = params["hours"].get("max_hours")
    summary = (f"{len(hours)} test hours ({'all' if cap is None else params['hours'].get('selection', 'wettest')}, "
               f"max_hours {cap}), "
               f"{len(chain.seeds())} members, seed {chain.seed}; evaluated models "
               f"{describe_versions(selection['candidate']['versions'], selection.get('registered_models'))} "
               f"({_model_summary(selection, chain)}). Trained on: {_trained_on(selection)}; the test hours come "
               f"from the same source.")
    figures = {"Sample hours": maps, "Scores at 1 km": scores, "Scores of the correction stage (0.1°)": coarse_scores,
               "Power spectra": psd, "Rank histograms": ranks, "FSS vs scale": fss, "Paired differences": paired,
               "Reliability diagrams": reliability}
    context = {"summary": summary, "fss_scale_px": params["report"]["fss_scale_px"],
               "max_km": params["flags"]["oversmoothing"]["max_km"], "level": float(params["intervals"]["level"])}
    thresholds = params["scores"]["probability"]["thresholds_mm_h"]
    verdicts = {m: diagram_verdict(diagram, m, thresholds, min_count=params["figures"]["reliability_min_count"])
                for m in ("diffusion_chain", "rainfarm") if m in set(diagram["method"])}
    return build_report(metrics, selection, hours, figures, context, intervals, probability, verdicts)
