"""The one template behind ``correction_training`` and ``downscaling_training``.

Both pipelines are ``residual_training_pipeline(stage)``: they differ only in how the (condition,
residual) pairs are made and in their parameters (``conf/base/parameters_training.yml``, ``<stage>_training``); the
``experiments`` pipelines reuse the same template on other data and parameters.

* correction: condition = satellite (0.1°), residual = radar max-pooled to 0.1° − satellite;
* downscaling: condition = radar 0.1° upsampled to 0.01° (at inference: the *corrected* field),
  residual = radar 0.01° − condition.

Conditions are in the transformed intensity space (``log1p``) of ``05_model_input``; the residual
is taken there too (``residual: transformed``, the default) or in mm/h (``residual: absolute``,
:func:`precipdiff.data.transforms.make_residual`). Static channels
(latitude/longitude in degrees) can be appended to the condition so the models learn
location-dependent errors (orography); the models normalise every channel themselves.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
import xarray as xr
from kedro.pipeline import Pipeline, node, pipeline

from precipdiff.data import transforms
from precipdiff.datasets.metrics import metric_history, metric_series
from precipdiff.inference.chain import hour_keys
from precipdiff.model_card import RESIDUAL_BASES, Conditioning, Domain, ModelCard, Provenance, TrainedModel, iso_hour
from precipdiff.nn.residual import with_mean
from precipdiff.nn.sampling import pick_device, predict, residual_sampler, sample_members
from precipdiff.seeds import member_seeds
from precipdiff.training.launch import train_distributed
from precipdiff.training.loop import train
from precipdiff.training.sampler_selection import choose, score_settings, wettest_tiles
from precipdiff.verification import correlation, crps_ensemble, mae, rmse

log = logging.getLogger(__name__)


@dataclass
class TrainingPairs:
    """Condition ``(N, C, H, W)``, base field and residual ``(N, 1, H, W)`` of ``N`` box-hours on one grid.

    ``target = transforms.apply_residual(base, residual, residual_kind, transform)`` (transformed
    units); ``cond[:, 0] == base[:, 0]``. Per sample: ``times``, ``split`` (``held_out`` for the
    box-hours of ``exclude_regions``), ``regions``, cell centres ``lat`` ``(N, H)`` and ``lon`` ``(N, W)``.
    """

    cond: np.ndarray
    base: np.ndarray
    residual: np.ndarray
    times: np.ndarray
    split: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    channels: list[str]
    transform: str
    upsampling: str
    residual_kind: str = "transformed"
    regions: np.ndarray | None = None
    ingestion: dict | None = None  # the ingestion parameters the data came from (the models' provenance)

    def target(self, idx, residual: np.ndarray | None = None) -> np.ndarray:
        """``base + residual`` (transformed units) of the hours ``idx`` (``residual``: another one)."""
        res = self.residual[idx] if residual is None else residual
        return transforms.apply_residual(self.base[idx], res, self.residual_kind, self.transform)


def _pairs(base: np.ndarray, target: np.ndarray, ds: xr.Dataset, params: dict, ingestion: dict | None) -> TrainingPairs:
    names = list(params.get("static_channels", []))
    lat, lon = ds["lat"].values, ds["lon"].values
    kind, name = params.get("residual", "transformed"), ds.attrs["transform"]
    cond = transforms.condition(base, names, lat, lon)
    residual = transforms.make_residual(base, target, kind, name)[:, None].astype(np.float32)
    regions = ds["region"].values.astype(str)
    split = np.where(np.isin(regions, held_out_regions(params, regions)), "held_out", ds["split"].values.astype(str))
    return TrainingPairs(cond=cond, base=base[:, None], residual=residual,
                         times=ds["time"].values, split=split, lat=lat, lon=lon,
                         channels=["base", *names], transform=name, upsampling=ds.attrs["upsampling"],
                         residual_kind=kind, regions=regions, ingestion=ingestion)


def held_out_regions(params: dict, regions: np.ndarray | None = None) -> list[str]:
    """``exclude_regions`` of the stage: regions none of whose box-hours is trained or validated on
    (checked against the data's ``regions`` when given)."""
    excluded = [str(r) for r in params.get("exclude_regions") or []]
    if regions is not None:
        unknown = sorted(set(excluded) - set(np.unique(regions)))
        if unknown:
            raise ValueError(f"{params['stage']}_training.exclude_regions: {unknown} not in the data's regions "
                             f"{sorted(np.unique(regions))}")
        if set(np.unique(regions)) <= set(excluded):
            raise ValueError(f"{params['stage']}_training.exclude_regions {excluded} leaves no region to train on")
    return excluded


def correction_pairs(coarse: xr.Dataset, params: dict, ingestion: dict | None = None) -> TrainingPairs:
    """Satellite → radar pooled to 0.1°: residual = radar − satellite (transformed units)."""
    return _pairs(coarse["satellite"].values, coarse["radar"].values, coarse, params, ingestion)


def downscaling_pairs(coarse: xr.Dataset, fine: xr.Dataset, params: dict, ingestion: dict | None = None) -> TrainingPairs:
    """Radar 0.1° upsampled → radar 0.01°: residual = radar − upsampled (transformed units)."""
    base = transforms.upsample(coarse["radar"].values, 10, fine.attrs["upsampling"])
    return _pairs(base, fine["radar"].values, fine, params, ingestion)


def _patch_table(patches: pd.DataFrame, params: dict, pairs: TrainingPairs) -> pd.DataFrame:
    """Training/validation patches (none of a held-out region) with sampling weight = floor + wet fraction of the patch's
    **condition** (``wet_weight_on: condition``, the default) or of its target (``target``).

    Drawing patches by a property of the condition only changes how often each condition is seen,
    not what the model learns to expect given it; drawing them by the target's wet fraction tilts
    p(target | condition) towards rain (importance sampling on the target without re-weighting the
    loss): the models then rain over a dry satellite (issue #23; docs/models.md, *Patch weights*).
    """
    keep = patches[patches.split.isin(["train", "validation"])
                   & (patches.valid_fraction >= float(params["min_valid_fraction"]))
                   & ~patches["region"].astype(str).isin(held_out_regions(params))]
    on = params.get("wet_weight_on", "condition")
    if on not in ("condition", "target"):
        raise ValueError(f"{params['stage']}_training.wet_weight_on: expected 'condition' or 'target'; got {on!r}")
    wet = keep.wet_fraction.to_numpy() if on == "target" else condition_wet_fraction(pairs, keep)
    return keep.assign(weight=float(params["wet_weight_floor"]) + wet)


def condition_wet_fraction(pairs: TrainingPairs, patches: pd.DataFrame, wet_mm_h: float = 0.1) -> np.ndarray:
    """Share of each patch's base-condition cells at or above ``wet_mm_h`` (summed-area tables, vectorised,
    ``chunk`` samples at a time so a large domain's tables never exist all at once)."""
    thr = transforms.forward_transform(np.array(wet_mm_h, dtype=np.float32), pairs.transform)
    t, r, c = (patches[k].to_numpy(np.int64) for k in ("sample_index", "row", "col"))
    size = patches["size"].to_numpy(np.int64)
    total, chunk = np.zeros(len(patches)), 256
    _, h, w = pairs.cond[:, 0].shape
    for start in range(0, len(pairs.cond), chunk):
        rows = np.flatnonzero((t >= start) & (t < start + chunk))
        if not rows.size:
            continue
        wet = np.nan_to_num(pairs.cond[start:start + chunk, 0]) >= thr
        table = np.zeros((len(wet), h + 1, w + 1), np.int32)
        table[:, 1:, 1:] = wet.cumsum(1, dtype=np.int32).cumsum(2, dtype=np.int32)
        k, rr, cc, n = t[rows] - start, r[rows], c[rows], size[rows]
        total[rows] = table[k, rr + n, cc + n] - table[k, rr, cc + n] - table[k, rr + n, cc] + table[k, rr, cc]
    return total / (size * size).astype(np.float64)


def data_fingerprint(pairs: TrainingPairs) -> str:
    """SHA-256 (first 16 hex digits) of the training arrays, times and split: the data version."""
    digest = hashlib.sha256()
    for arr in (pairs.cond, pairs.residual, pairs.times.astype("datetime64[s]"), pairs.split):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:16]


def model_card(pairs: TrainingPairs, params: dict, objective: str, train_seconds: float | None = None) -> ModelCard:
    """The card of a model trained on ``pairs`` with the stage's ``params`` (:mod:`precipdiff.model_card`)."""
    train = pairs.times[pairs.split == "train"]
    ingestion = pairs.ingestion or {}
    regions = tuple(sorted(set(np.unique(pairs.regions[pairs.split == "train"]).tolist()) - {"box"}))
    provenance = Provenance(  # source: the ingestion parameters the data came from (#23); regions: the data's (#21)
        source=ingestion.get("source"), regions=regions, held_out_regions=tuple(held_out_regions(params)),
        domain=Domain(float(pairs.lat.min()), float(pairs.lat.max()), float(pairs.lon.min()), float(pairs.lon.max())),
        period=(iso_hour(train.min()), iso_hour(train.max())), data_fingerprint=data_fingerprint(pairs))
    sampler = dict(params.get("sampler", {}))
    return ModelCard(stage=params["stage"], objective=objective, transform=pairs.transform,
                     residual=pairs.residual_kind, upsampling=pairs.upsampling,
                     residual_base=residual_base(params) if objective == "edm" else None,
                     sampler=sampler, sampler_training=sampler,
                     conditioning=Conditioning(tuple(pairs.channels[1:])), provenance=provenance,
                     train_seconds=train_seconds)


def _fit(pairs: TrainingPairs, patches: pd.DataFrame, params: dict, objective: str):
    key = "diffusion" if objective == "edm" else "regression"
    cfg = {k: v for k, v in params[key].items() if k != "enabled"}
    cfg["patch_size"] = int(patches["size"].iloc[0])  # one source of truth: preprocessing.patches
    ckpt = params.get("checkpoint_dir")
    kwargs = {"objective": objective, "checkpoint_dir": f"{ckpt}/{key}" if ckpt else None,
              "seed": int(params["seed"])}
    nproc = int(params.get("nproc_per_node", 1))
    if nproc > 1:  # DDP: torchrun workers run the same train(); this process keeps Kedro + MLflow
        result = train_distributed(pairs.cond, pairs.residual, _patch_table(patches, params, pairs), cfg,
                                   nproc_per_node=nproc, **kwargs)
    else:
        result = train(pairs.cond, pairs.residual, _patch_table(patches, params, pairs), cfg, **kwargs)
    # wall seconds of all epochs, restored with the history on resume (so a resumed run counts them all)
    card = model_card(pairs, params, objective, round(float(result.history["seconds"].sum()), 1))
    model = TrainedModel(result.model_config, result.model.cpu().eval(), card)
    return model, history_metrics(result.history, key)


def history_metrics(history: pd.DataFrame, prefix: str) -> dict:
    """Per-epoch losses as kedro-mlflow metric histories ``{name: [{"value", "step"}]}``."""
    out = {}
    for col in ("train_loss", "val_loss", "lr", "samples_per_s"):
        if col in history:
            out[f"{prefix}_{col}"] = metric_series(history[col], history["epoch"])
    return out


def residual_base(params: dict) -> str:
    """``residual_base`` of the stage's parameters, checked: ``input`` (the diffusion model learns
    target − condition) or ``regression`` (CorrDiff: target − the regression U-Net's prediction)."""
    base = params.get("residual_base", "input")
    if base not in RESIDUAL_BASES:
        raise ValueError(f"{params['stage']}_training.residual_base: expected one of {RESIDUAL_BASES}; got {base!r}")
    if base == "regression" and not params["regression"].get("enabled", True):
        raise ValueError(f"{params['stage']}_training.residual_base is 'regression' but regression.enabled is "
                         "false: the regression U-Net is the base, enable it")
    return base


def predict_residual(regression: TrainedModel, cond: np.ndarray, batch: int = 8,
                     where: np.ndarray | None = None) -> np.ndarray:
    """The regression's mean residual ``(T, 1, H, W)`` (transformed units) of every hour of ``cond``
    (only the hours ``where`` is true, NaN elsewhere), ``batch`` hours at a time (bf16 on CPU and CUDA)."""
    device = pick_device("auto")
    precision = "bf16" if device.type in ("cpu", "cuda") else "fp32"
    model, out = regression.model.to(device), np.full((len(cond), 1, *cond.shape[2:]), np.nan, np.float32)
    hours = np.arange(len(cond)) if where is None else np.flatnonzero(where)
    for start in range(0, len(hours), batch):
        idx = hours[start:start + batch]
        chunk = torch.from_numpy(np.ascontiguousarray(cond[idx])).to(device)
        out[idx] = predict(model, chunk, precision).cpu().numpy()
    regression.model.cpu()
    return out


def train_diffusion(pairs: TrainingPairs, patches: pd.DataFrame, params: dict, regression: TrainedModel):
    """EDM diffusion model of the residual (EMA weights) and its loss curves.

    With ``residual_base: regression`` (CorrDiff, Mardani et al. 2024) it learns the residual left by
    ``regression`` and carries that model as its ``mean``, so its samples are whole residuals.
    """
    if residual_base(params) == "input":
        return _fit(pairs, patches, params, "edm")
    # what training and the sampler selection read: the test (and held-out) box-hours are never
    # predicted (a third of the cost on the real-radar benchmark), NaN there
    fitted = np.isin(pairs.split, ("train", "validation"))
    left = replace(pairs, residual=pairs.residual - predict_residual(regression, pairs.cond, where=fitted))
    trained, history = _fit(left, patches, params, "edm")
    model, config = with_mean(trained.model, trained.config, regression.model, regression.config)
    provenance = replace(trained.card.provenance, mean_fingerprint=regression.card.provenance.data_fingerprint)
    return TrainedModel(config, model.eval(), replace(trained.card, provenance=provenance)), history


def train_regression(pairs: TrainingPairs, patches: pd.DataFrame, params: dict):
    """Deterministic U-Net (MSE) of the residual — the CorrDiff-style baseline (a disabled stand-in
    when ``regression.enabled`` is false)."""
    if not params["regression"].get("enabled", True):
        log.info("%s: regression baseline disabled (regression.enabled: false)", params["stage"])
        return TrainedModel.disabled(params["stage"], "regression"), {}
    return _fit(pairs, patches, params, "regression")


def train_base_regression(pairs: TrainingPairs, patches: pd.DataFrame, params: dict):
    """:func:`train_regression` only when it is the diffusion model's residual base (pipelines without
    the regression baseline); a disabled stand-in otherwise."""
    if residual_base(params) == "input":
        return TrainedModel.disabled(params["stage"], "regression"), {}
    return train_regression(pairs, patches, params)


def validation_skill(diffusion: TrainedModel, regression: TrainedModel, pairs: TrainingPairs,
                     params: dict) -> dict:
    """Quick skill check on the wettest ``validation_hours`` validation hours (mm/h, whole fields).

    RMSE of the condition as is, of one diffusion member, of the mean of ``validation_members``
    members and of the regression; MAE and correlation of the condition and of one member; fair
    CRPS (Ferro 2014) of the members against the MAE of the condition (the CRPS of a deterministic
    field). A calibrated ensemble has one-member RMSE ≈ √2 × the RMSE of the conditional mean, so
    the one-member figure is not expected to beat the others.
    The members are drawn by the project's one sampling path (:func:`precipdiff.nn.sampling.sample_members`)
    with the model's sampler (chosen by :func:`select_sampler`) and the chain's latents: member ``m``
    of an hour is the one the evaluation and inference would draw for ``seed``. The full comparison
    is the ``evaluation`` pipeline's.
    """
    val = np.flatnonzero(pairs.split == "validation")
    wet = np.nan_to_num(pairs.target(val)).mean(axis=(1, 2, 3))
    idx = np.sort(val[np.argsort(wet)[::-1][: int(params["validation_hours"])]])
    cond, base = torch.from_numpy(pairs.cond[idx]), pairs.base[idx]
    mm_h = lambda x: transforms.inverse_transform(x, pairs.transform)  # noqa: E731
    target = mm_h(pairs.target(idx))[:, 0]
    members = int(params.get("validation_members", 1))
    res = sample_members(diffusion.model, cond, diffusion.card.sampler_setting(),  # the selected sampler
                         member_seeds(int(params["seed"]), members), hour_keys(pairs.times[idx]),
                         diffusion.card.grid).numpy()  # (T, M, 1, H, W)
    ens = mm_h(pairs.target(idx, res.swapaxes(0, 1)).swapaxes(0, 1))[:, :, 0]
    out = {"val_rmse_condition_mm_h": rmse(mm_h(base)[:, 0], target),
           "val_rmse_diffusion_member_mm_h": rmse(ens[:, 0], target),
           "val_rmse_diffusion_mean_mm_h": rmse(ens.mean(axis=1), target),
           "val_mae_condition_mm_h": mae(mm_h(base)[:, 0], target),
           "val_mae_diffusion_member_mm_h": mae(ens[:, 0], target),
           "val_corr_condition": correlation(mm_h(base)[:, 0], target),
           "val_corr_diffusion_member": correlation(ens[:, 0], target)}
    if members > 1:
        out["val_crps_fair_diffusion_mm_h"] = float(np.nanmean(crps_ensemble(ens, target, fair=True)))
    if regression.enabled:
        out["val_rmse_regression_mm_h"] = rmse(mm_h(pairs.target(idx, predict(regression.model, cond).numpy()))[:, 0],
                                               target)
    log.info("%s validation skill (mm/h): %s", params["stage"], {k: round(v, 3) for k, v in out.items()})
    return metric_history(out)


def validation_tiles(pairs: TrainingPairs, sel: dict) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The ``n_tiles`` wettest ``tile``-cell windows of the validation hours: condition ``(N, C, t, t)``,
    base and target ``(N, t, t)`` in transformed units (what the sampler selection scores on)."""
    val = np.flatnonzero(pairs.split == "validation")
    if val.size == 0:
        raise ValueError(f"{sel.get('stage', 'training')}.sampler_selection: no validation hour "
                         "(preprocessing.split.fractions.validation)")
    target = pairs.target(val)[:, 0]
    tiles = wettest_tiles(target, int(sel["tile"]), int(sel["n_tiles"]))
    size = min(int(sel["tile"]), target.shape[1]), min(int(sel["tile"]), target.shape[2])
    win = [(val[k], slice(r, r + size[0]), slice(c, c + size[1])) for k, r, c in tiles]
    cond = np.stack([pairs.cond[t, :, rs, cs] for t, rs, cs in win])
    base = np.stack([pairs.base[t, 0, rs, cs] for t, rs, cs in win])
    truth = np.stack([target[np.searchsorted(val, t), rs, cs] for t, rs, cs in win])
    return torch.from_numpy(np.ascontiguousarray(cond)), base, truth


def select_sampler(diffusion: TrainedModel, pairs: TrainingPairs, params: dict) -> tuple[TrainedModel, pd.DataFrame]:
    """The diffusion model with the sampler chosen on validation tiles (``sampler_selection``), and
    the scores of every candidate (:mod:`precipdiff.training.sampler_selection`).

    The chosen setting becomes the model card's ``sampler``, registered with it in MLflow, so the
    evaluation and the inference (whose ``sampler`` parameters are null: the model's own) sample
    with it. ``enabled: false`` keeps the training ``sampler``.
    """
    sel, base_sampler = params["sampler_selection"], dict(params.get("sampler", {}))
    if not sel.get("enabled", True):
        return diffusion, pd.DataFrame()
    cond, base, target = validation_tiles(pairs, {**sel, "stage": params["stage"]})
    settings = [{**base_sampler, **g} for g in sel["grid"]]
    device = pick_device(sel.get("device", "auto"))
    precision = sel.get("precision", "auto")
    card = diffusion.card
    table = score_settings(lambda s, c, z: residual_sampler(diffusion.model, card.sampler_setting(s), device,
                                                            precision)(c, z),
                           settings, cond, base, target, card.transform, card.residual, members=int(sel["members"]),
                           seed=int(sel["seed"]), pixel_km=float(sel["pixel_km"]), psd_bands_km=sel["psd_bands_km"])
    bands = list(sel["psd_bands_km"])
    best = choose(table, sel["bounds"]["spread_skill_ratio"], sel["bounds"]["psd_ratio"], bands)
    table["chosen"] = table.index == best
    chosen = {k: float(table.loc[best, k]) for k in ("crps_fair", "spread_skill_ratio", "psd_ratio", *bands)}
    card = replace(card, sampler=settings[best], sampler_training=base_sampler, sampler_selection=chosen)
    log.info("%s: sampler %s chosen on %d validation tiles: %s", params["stage"], settings[best], len(target),
             ", ".join(f"{k} {v:.4g}" for k, v in chosen.items()))
    return TrainedModel(diffusion.config, diffusion.model.cpu().eval(), card), table  # sampled on `device`


PAIRS = {"correction": (correction_pairs, ["coarse_model_input"]),
         "downscaling": (downscaling_pairs, ["coarse_model_input", "fine_model_input"])}
PATCHES = {"correction": "coarse_patches", "downscaling": "fine_patches"}


def residual_training_pipeline(stage: str, *, namespace: str | None = None, params: str | None = None,
                               data: dict[str, str] | None = None, diffusion_only: bool = False) -> Pipeline:
    """The shared template of ``stage`` (``correction`` | ``downscaling``), namespaced ``namespace``
    (default: the stage).

    ``params``: the dataset holding the training parameters (default ``params:<stage>_training``);
    ``data``: other datasets for the template's ``coarse_model_input``, ``fine_model_input``,
    ``patches`` and ``ingestion`` (the parameters the data were ingested with, default
    ``params:ingestion``: the models' provenance) (the experiments train on other data with
    overridden parameters);
    ``diffusion_only``: leave out the regression baseline and the validation check (the regression
    is then trained only when it is the diffusion model's ``residual_base``).

    The products other pipelines read leave the namespace under plain names (Kedro keeps dots for
    namespaces): ``<namespace>_diffusion_model`` (``correction_diffusion_model``,
    ``retrained_correction_diffusion_model``) and, unless ``diffusion_only``, ``<namespace>_regression_model``.
    """
    make_pairs, data_inputs = PAIRS[stage]
    regression = train_base_regression if diffusion_only else train_regression
    nodes = [node(make_pairs, [*data_inputs, "training", "ingestion"], "training_pairs", name="make_training_pairs"),
             node(regression, ["training_pairs", "patches", "training"],
                  ["regression_model", "regression_history"], name="train_regression"),
             node(train_diffusion, ["training_pairs", "patches", "training", "regression_model"],
                  ["trained_diffusion_model", "diffusion_history"], name="train_diffusion"),
             node(select_sampler, ["trained_diffusion_model", "training_pairs", "training"],
                  ["diffusion_model", "sampler_selection"], name="select_sampler")]
    if not diffusion_only:
        nodes += [node(validation_skill, ["diffusion_model", "regression_model", "training_pairs", "training"],
                       "validation_skill", name="validation_skill")]
    inputs = {**{name: name for name in data_inputs}, "patches": PATCHES[stage],
              "training": params or f"params:{stage}_training", "ingestion": "params:ingestion", **(data or {})}
    space = namespace or stage
    exposed = ["diffusion_model"] if diffusion_only else ["diffusion_model", "regression_model"]
    outputs = {name: f"{space.replace('.', '_')}_{name}" for name in exposed}
    return pipeline(Pipeline(nodes), namespace=space, inputs=inputs, outputs=outputs)
