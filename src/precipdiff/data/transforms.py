"""Grid and intensity transforms shared by preprocessing, training, evaluation and inference.

All functions act on the last two axes ``(..., lat, lon)`` of numpy arrays (or torch tensors
where noted) and are vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from precipdiff.data.contract import NEST

TRANSFORMS = ("log1p", "none")


def forward_transform(rate_mm_h, name: str = "log1p"):
    """Intensity transform of rates in mm/h: ``log1p`` gives ``x = ln(1 + R / 1 mm h-1)``.

    Invertible by :func:`inverse_transform`; NaN stays NaN. Works on numpy arrays and tensors.
    """
    if name == "log1p":
        return np.log1p(rate_mm_h) if isinstance(rate_mm_h, np.ndarray) else torch.log1p(rate_mm_h)
    if name == "none":
        return rate_mm_h
    raise ValueError(f"preprocessing.transform must be one of {TRANSFORMS}, got {name!r}")


def inverse_transform(x, name: str = "log1p"):
    """Inverse of :func:`forward_transform`, clipped at 0 mm/h (rates cannot be negative)."""
    if name == "log1p":
        if isinstance(x, np.ndarray):
            return np.maximum(np.expm1(x), 0.0)
        return torch.clamp(torch.expm1(x), min=0.0)
    if name == "none":
        return np.maximum(x, 0.0) if isinstance(x, np.ndarray) else torch.clamp(x, min=0.0)
    raise ValueError(f"preprocessing.transform must be one of {TRANSFORMS}, got {name!r}")


def pool(values: np.ndarray, method: str = "max", factor: int = NEST, max_missing: float = 0.5) -> np.ndarray:
    """Coarsen ``(..., H, W)`` by ``factor`` with ``max`` (the paper's choice) or ``mean`` pooling.

    A block with more than ``max_missing`` of its cells missing is NaN; otherwise NaN cells are
    ignored (nanmax / nanmean over the valid cells).
    """
    *lead, h, w = values.shape
    if h % factor or w % factor:
        raise ValueError(f"pool: grid {h}x{w} is not a multiple of the factor {factor}")
    blocks = values.reshape(*lead, h // factor, factor, w // factor, factor)
    axes = (-3, -1)
    missing = np.isnan(blocks).mean(axis=axes)
    filled = np.where(np.isnan(blocks), -np.inf if method == "max" else 0.0, blocks)
    if method == "max":
        out = filled.max(axis=axes)
    elif method == "mean":
        out = filled.sum(axis=axes) / np.maximum((~np.isnan(blocks)).sum(axis=axes), 1)
    else:
        raise ValueError(f"preprocessing.pooling must be 'max' or 'mean', got {method!r}")
    return np.where(missing > max_missing, np.nan, out).astype(values.dtype)


def upsample(values, factor: int = NEST, method: str = "nearest"):
    """Upsample ``(..., h, w)`` by ``factor``: ``nearest`` (block copy) or ``bilinear``.

    Bilinear follows cell-centre geometry (``align_corners=False``, edge-replicated), so the
    fine cell centres sit at ``(i + 0.5)/factor - 0.5`` coarse-cell units. Accepts numpy arrays
    or torch tensors and returns the same type. NaN is propagated by nearest and spread by
    bilinear to the neighbouring fine cells.
    """
    is_numpy = isinstance(values, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(values)) if is_numpy else values
    lead = x.shape[:-2]
    x4 = x.reshape(-1, 1, *x.shape[-2:])
    if method == "nearest":
        y = x4.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    elif method == "bilinear":
        y = F.interpolate(x4, scale_factor=factor, mode="bilinear", align_corners=False)
    else:
        raise ValueError(f"upsampling method must be 'nearest' or 'bilinear', got {method!r}")
    y = y.reshape(*lead, *y.shape[-2:])
    return y.numpy() if is_numpy else y


STATIC_CHANNELS = ("lat", "lon")  # what a model's condition may add to its base field (degrees)


def condition(base: np.ndarray, static: Sequence[str], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The model condition ``(T, 1 + len(static), H, W)`` float32: the base field ``(T, H, W)``
    (transformed units) then the static channels named in ``static``, cell-centre latitude / longitude
    in degrees of the axes ``lat`` ``(H,)`` and ``lon`` ``(W,)``, or per sample ``(T, H)``, ``(T, W)``
    (a stack of box-hours, :mod:`precipdiff.data.boxes`).

    The one builder of the condition for training pairs, the sampler selection, evaluation and
    inference: ``static`` is ``<stage>_training.static_channels`` at training, then the model's
    ``info["channels"][1:]``.
    """
    unknown = sorted(set(static) - set(STATIC_CHANNELS))
    if unknown:
        raise ValueError(f"static_channels: unknown {unknown}; expected any of {list(STATIC_CHANNELS)}")
    lat, lon = np.asarray(lat), np.asarray(lon)
    grids = {"lat": lat[..., :, None], "lon": lon[..., None, :]}  # (H, 1) / (T, H, 1) and (1, W) / (T, 1, W)
    out = np.empty((base.shape[0], 1 + len(static), *base.shape[-2:]), np.float32)
    out[:, 0] = base
    for k, name in enumerate(static, start=1):
        out[:, k] = np.broadcast_to(grids[name], out[:, k].shape)
    return out


# ---- residual variants --------------------------------------------------------------------------
# PrecipDiff learns target − condition. Where the difference is taken is a choice (experiment
# "residual"): in the transformed space it is, for log1p, ln((1 + y) / (1 + x)), a relative
# (multiplicative) residual of the rates; in mm/h it is the absolute residual y − x.
RESIDUALS = ("transformed", "absolute")


def _check_residual(kind: str) -> None:
    if kind not in RESIDUALS:
        raise ValueError(f"training.residual must be one of {RESIDUALS}, got {kind!r}")


def make_residual(base: np.ndarray, target: np.ndarray, kind: str = "transformed", name: str = "log1p") -> np.ndarray:
    """Residual of ``target`` over ``base`` (both transformed units): transformed units or mm/h."""
    _check_residual(kind)
    if kind == "transformed":
        return target - base
    return inverse_transform(target, name) - inverse_transform(base, name)


def apply_residual(base: np.ndarray, residual: np.ndarray, kind: str = "transformed", name: str = "log1p") -> np.ndarray:
    """Inverse of :func:`make_residual`: ``base`` (transformed) + residual → transformed units.

    An absolute residual is added in mm/h and the sum clipped at 0 mm/h before transforming back.
    """
    _check_residual(kind)
    if kind == "transformed":
        return base + residual
    return forward_transform(np.maximum(inverse_transform(base, name) + residual, 0.0), name).astype(base.dtype)


def clip_runaway(rate_mm_h: np.ndarray, max_rate_mm_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip rates above a physical bound (a diverging diffusion sample) and count the clipped cells.

    Returns the clipped array (NaN kept; +inf clipped too) and the number of clipped cells per
    index of the first axis (e.g. per hour of a ``(T, M, H, W)`` ensemble).
    """
    x = np.asarray(rate_mm_h)
    over = x > max_rate_mm_h  # NaN compares False
    return np.minimum(x, max_rate_mm_h), over.reshape(x.shape[0], -1).sum(axis=1)
