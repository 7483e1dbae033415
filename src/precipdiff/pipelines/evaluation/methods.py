"""The evaluated methods, one chunk of test hours at a time (numpy/torch, no Kedro).

Every method turns the same satellite hours into rates in mm/h on the radar's 0.01° (≈ 1 km)
grid, over the same pixels; a few also have a 0.1° output scored against the max-pooled radar
(the correction stage).

==============================  ==========  ========================================================
method                          grid        how
==============================  ==========  ========================================================
satellite_nearest               0.01°       satellite rates, each 0.1° cell copied to its 10 × 10 cells
satellite_bilinear              0.01°       satellite rates, bilinear in mm/h (cell-centre geometry)
qm_bilinear                     0.01°       satellite quantile-mapped to the 1 km radar distribution, then bilinear
rainfarm                        0.01°       RainFARM ensemble of the quantile-mapped satellite (alpha fitted on training radar)
regression_chain                both        regression correction → upsampling → regression downscaling
correction_diffusion_bilinear   0.01°       diffusion correction ensemble upsampled (the chain's upsampling), no downscaling model
diffusion_chain(_mean)          both        the PrecipDiff chain (ensemble) and its member mean
downscaling_diffusion(_mean)    0.01°       downscaling model on the raw upsampled satellite (experiment ablation only)
satellite, qm                   0.1°        satellite as is / quantile-mapped to the max-pooled radar distribution
ds_diffusion, ds_rainfarm,      0.01°       block ``downscaling_only`` (stage of that name): the downscaling stage
ds_bilinear                                 alone from the TRUE radar at 0.1° (model: max-pooled; RainFARM and
                                            bilinear: mean-pooled), on the ``downscaling_only.max_hours`` wettest hours
==============================  ==========  ========================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from precipdiff.baselines import QuantileMapping, rainfarm_ensemble
from precipdiff.data import boxes as bx
from precipdiff.data import transforms
from precipdiff.data.contract import NEST
from precipdiff.inference.chain import ChainSettings, run_chain
from precipdiff.model_card import TrainedModel
from precipdiff.seeds import sample_keys


@dataclass
class Chunk:
    """A few evaluated hours: inputs and truth in mm/h, the satellite also in transformed units."""

    times: np.ndarray  # (T,) datetime64
    hour_keys: list[int]  # (T,) box-hour keys (seeds.sample_keys): the noise key, independent of the selection
    sat_t: np.ndarray  # (T, h, w) satellite, transformed units
    sat: np.ndarray  # (T, h, w) satellite, mm/h
    radar_coarse: np.ndarray  # (T, h, w) radar max-pooled to 0.1°, mm/h
    radar: np.ndarray  # (T, H, W) radar at 0.01°, mm/h
    coarse_grid: tuple[np.ndarray, np.ndarray]  # (lat, lon) of the 0.1° cells, degrees
    fine_grid: tuple[np.ndarray, np.ndarray]  # (lat, lon) of the 0.01° cells, degrees
    transform: str


def iter_chunks(coarse: xr.Dataset, fine: xr.Dataset, hours: pd.DataFrame, chunk_hours: int) -> Iterator[Chunk]:
    """The selected box-hours (column ``sample_index``) in chunks of at most ``chunk_hours``, box by box
    (a chunk holds one box, so one grid), each box's hours in time order."""
    name = coarse.attrs["transform"]
    index = np.sort(hours["sample_index"].to_numpy())
    numbers = coarse["box_number"].values[index]
    step = max(int(chunk_hours), 1)
    for number in np.unique(numbers):  # sample order is (time, box): each box's hours stay in time order
        of_box = index[numbers == number]
        for start in range(0, of_box.size, step):
            idx = of_box[start:start + step]
            sat_t = coarse["satellite"].values[idx]
            times = coarse["time"].values[idx]
            yield Chunk(times=times, hour_keys=sample_keys(times, coarse["box_number"].values[idx]), sat_t=sat_t,
                        sat=transforms.inverse_transform(sat_t, name),
                        radar_coarse=transforms.inverse_transform(coarse["radar"].values[idx], name),
                        radar=transforms.inverse_transform(fine["radar"].values[idx], name),
                        coarse_grid=bx.sample_grid(coarse, idx[0]), fine_grid=bx.sample_grid(fine, idx[0]),
                        transform=name)


def satellite_fields(chunk: Chunk) -> dict[str, np.ndarray]:
    """``satellite_nearest`` and ``satellite_bilinear`` (T, H, W), mm/h."""
    return {f"satellite_{m}": transforms.upsample(chunk.sat, NEST, m) for m in ("nearest", "bilinear")}


def qm_fields(chunk: Chunk, qm_fine: QuantileMapping) -> dict[str, np.ndarray]:
    """``qm_bilinear`` (T, H, W), mm/h: the 10 km satellite mapped to the 1 km radar distribution, bilinear."""
    return {"qm_bilinear": transforms.upsample(qm_fine.apply(chunk.sat), NEST, "bilinear")}


def rainfarm_fields(chunk: Chunk, qm_fine: QuantileMapping, alpha: float, n_members: int, seed: int,
                    kernel_type: str | None = None) -> dict[str, np.ndarray]:
    """``rainfarm`` (T, M, H, W), mm/h: RainFARM members of the quantile-mapped satellite.

    Each hour is drawn with ``t0 = hour key``, so a member of an hour does not depend on which other
    hours are evaluated nor on the chunking.
    """
    qm = qm_fine.apply(chunk.sat)
    members = [rainfarm_ensemble(qm[t][None], NEST, n_members, seed, alpha=alpha, kernel_type=kernel_type,
                                 t0=int(key))[0] for t, key in enumerate(chunk.hour_keys)]
    return {"rainfarm": np.stack(members)}


def downscaling_only_fields(chunk: Chunk, downscaling: TrainedModel, alpha: float, settings: ChainSettings,
                            kernel_type: str | None = None) -> dict[str, np.ndarray]:
    """The downscaling stage alone, from the TRUE radar at 0.1° (no satellite, no correction), mm/h:

    * ``ds_diffusion`` (T, M, H, W): the downscaling model on the radar max-pooled to 0.1° (its
      training condition), upsampled as at training;
    * ``ds_rainfarm`` (T, M, H, W): RainFARM (alpha fitted on training radar) of the radar
      mean-pooled to 0.1° (RainFARM preserves block means);
    * ``ds_bilinear`` (T, H, W): bilinear interpolation of the mean-pooled radar.
    """
    check_model(downscaling, "downscaling", chunk.transform)
    pooled = transforms.forward_transform(chunk.radar_coarse, chunk.transform)
    _, fine = run_chain(pooled, chunk.coarse_grid, chunk.fine_grid, chunk.hour_keys, None, downscaling, settings)
    mean = transforms.pool(chunk.radar, "mean")
    rf = [rainfarm_ensemble(mean[t][None], NEST, settings.n_members, settings.seed, alpha=alpha,
                            kernel_type=kernel_type, t0=int(key))[0] for t, key in enumerate(chunk.hour_keys)]
    return {"ds_diffusion": transforms.inverse_transform(fine, chunk.transform), "ds_rainfarm": np.stack(rf),
            "ds_bilinear": transforms.upsample(mean, NEST, "bilinear")}


def check_model(model: TrainedModel | None, stage: str, transform: str) -> None:
    """Refuse a model trained on another intensity transform than the data's."""
    if model is not None and model.card.transform != transform:
        raise ValueError(f"evaluation: the {stage} model ({model.name}) was trained on transform "
                         f"{model.card.transform!r} but the model inputs use {transform!r}")


def chain_fields(chunk: Chunk, correction: TrainedModel | None, downscaling: TrainedModel | None,
                 settings: ChainSettings) -> dict[str, np.ndarray]:
    """The chain in transformed units → ``corrected`` (T, M, h, w), ``upsampled`` and ``fine`` (T, M, H, W), mm/h.

    ``upsampled`` is the corrected ensemble upsampled exactly as the chain does before its
    downscaling model (``run_chain(..., downscaling=None)`` with the same noise), so the
    correction-only ablation costs nothing extra.
    """
    check_model(correction, "correction", chunk.transform)
    check_model(downscaling, "downscaling", chunk.transform)
    corrected, fine = run_chain(chunk.sat_t, chunk.coarse_grid, chunk.fine_grid, chunk.hour_keys,
                                correction, downscaling, settings)
    upsampling = (downscaling or correction).card.upsampling
    upsampled = transforms.upsample(corrected.astype(np.float32), NEST, upsampling)
    inv = transforms.inverse_transform
    return {"corrected": inv(corrected, chunk.transform), "upsampled": inv(upsampled, chunk.transform),
            "fine": inv(fine, chunk.transform)}
