"""The PrecipDiff chain at inference: satellite → correction ensemble → upsample → downscaling per member.

Plain torch + numpy (no Kedro). Shared by the ``evaluation`` and ``inference`` pipelines.

Noise and reproducibility: the latents of member ``m`` of hour ``t`` depend only on
``(member_seeds[m], hour_key(t), grid)`` and the position in the domain (:class:`LatentField`
draws them in fixed 64 × 64 blocks, each from its own generator), so any member of any hour can be
regenerated alone, whatever the batching or tiling. This is exact for the deterministic sampler
(``S_churn = 0``); with churn the extra noise comes from one generator per batch of tiles, seeded
from ``(seed, hours, grid, batch index)``: reproducible for the same settings, not member by member.

Large domains: each sample is integrated as ONE latent field over the whole domain, and at every
sampling step the denoiser runs on overlapping windows of the current field whose outputs are
blended (MultiDiffusion, :class:`~precipdiff.nn.tiling.TiledDenoiser`), so overlaps keep the
ensemble's statistics (no average of two independent samples). Windows (of every sample in a group
of ``batch_size // windows`` samples) are denoised ``batch_size`` at a time; memory is the group's
whole-domain fields plus one batch of windows.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch

from precipdiff.data import transforms
from precipdiff.data.contract import NEST
from precipdiff.nn.precond import EDMPrecond
from precipdiff.nn.sampler import edm_sampler
from precipdiff.nn.tiling import TiledDenoiser, blend_window, tile_layout  # noqa: F401  (blend_window: tests)
from precipdiff.seeds import member_seeds
from precipdiff.training.artifact import TrainedModel
from precipdiff.training.distributed import pick_device  # noqa: F401  (also used by the inference nodes)

COARSE, FINE = 0, 1  # grid ids in the latent keys
LATENT_BLOCK = 64  # latents are drawn in blocks of this many cells (per axis)
PRECISIONS = ("auto", "fp32", "bf16")


# keyword arguments of nn.sampler.edm_sampler a setting may override (the first six: those the models record)
SAMPLER_KEYS = ("num_steps", "solver", "S_churn", "sigma_min", "sigma_max", "rho", "S_min", "S_max", "S_noise")
SOLVERS = ("heun", "euler")


class ChainSettingError(ValueError):
    """A chain setting that cannot work; the message names it (``<where>.<key>``), what was expected and found."""

    def __init__(self, key: str, value, expected: str, where: str = "ChainSettings"):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{where}.{key}: expected {expected}; got {value!r}")

    def at(self, where: str) -> "ChainSettingError":
        """The same error named under the parameter block ``where`` (e.g. ``inference.chain``)."""
        return ChainSettingError(self.key, self.value, self.expected, where)


@dataclass(frozen=True)
class ChainSettings:
    """How the chain samples: ``evaluation.chain`` and ``inference.chain`` (:meth:`from_params`, same keys)."""

    n_members: int = 8
    seed: int = 0
    sampler: dict | None = None  # edm_sampler keyword overrides (SAMPLER_KEYS); None / {} = each model's own
    tile: int = 256  # largest window side (cells, on either grid); domains up to this size run untiled
    overlap: int = 32  # least overlap between neighbouring windows (cells), the width of the blending ramp
    batch_size: int = 8  # windows (of members × hours) denoised together per network call
    device: str = "auto"
    member_seeds: tuple[int, ...] | None = None  # explicit per-member seeds; override seed and n_members
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere | fp32 | bf16 (autocast on any device)
    compile: bool = False  # torch.compile the U-Net (worth it on CUDA for long runs)

    def __post_init__(self):
        def bad(key: str, value, expected: str):
            raise ChainSettingError(key, value, expected)

        if self.member_seeds is None and self.n_members < 1:
            bad("n_members", self.n_members, "a number of members >= 1 (or member_seeds)")
        if self.member_seeds is not None and len(self.member_seeds) < 1:
            bad("member_seeds", self.member_seeds, "a non-empty list of seeds (or null)")
        if self.precision not in PRECISIONS:
            bad("precision", self.precision, f"one of {PRECISIONS}")
        if not 0 <= self.overlap < self.tile:
            bad("overlap", self.overlap, f"0 <= overlap < tile (tile = {self.tile} cells)")
        if self.batch_size < 1:
            bad("batch_size", self.batch_size, "an integer >= 1")
        _check_sampler(self.sampler or {})

    @classmethod
    def from_params(cls, params: Mapping | None, where: str = "chain") -> "ChainSettings":
        """The one builder from parameters (``evaluation.chain``, ``inference.chain``): the keys are the
        field names, all optional (the defaults above); ``null`` sampler keys mean the model's own.

        Raises ``ValueError`` naming ``<where>.<key>`` for an unknown key or a value that cannot work.
        """
        given = dict(params or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {names}")
        sampler = {k: v for k, v in (given.get("sampler") or {}).items() if v is not None}
        seeds = given.get("member_seeds")
        casts = {"n_members": int, "seed": int, "tile": int, "overlap": int, "batch_size": int, "device": str,
                 "precision": str, "compile": bool}
        kwargs = {k: casts[k](v) for k, v in given.items() if k in casts and v is not None}
        try:
            return cls(**kwargs, sampler=sampler, member_seeds=None if seeds is None else tuple(int(s) for s in seeds))
        except ChainSettingError as exc:
            raise exc.at(where) from None

    def seeds(self) -> list[int]:
        """The per-member seeds: ``member_seeds`` if given, else derived from ``seed``."""
        if self.member_seeds is not None:
            return [int(s) for s in self.member_seeds]
        return member_seeds(self.seed, self.n_members)


def _check_sampler(sampler: Mapping) -> None:
    unknown = sorted(set(sampler) - set(SAMPLER_KEYS))
    if unknown:
        raise ChainSettingError("sampler", dict(sampler), f"keys among {list(SAMPLER_KEYS)} (unknown: {unknown})")
    if "num_steps" in sampler and int(sampler["num_steps"]) < 1:
        raise ChainSettingError("sampler.num_steps", sampler["num_steps"], "an integer >= 1")
    if "solver" in sampler and sampler["solver"] not in SOLVERS:
        raise ChainSettingError("sampler.solver", sampler["solver"], " or ".join(repr(s) for s in SOLVERS))
    if "S_churn" in sampler and float(sampler["S_churn"]) < 0:
        raise ChainSettingError("sampler.S_churn", sampler["S_churn"], "a number >= 0")


def hour_keys(times) -> list[int]:
    """Integer key of each hour for the latents: whole hours since 1970-01-01T00 UTC."""
    hours = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).asi8 // 3_600_000_000_000
    return [int(h) for h in hours]


@dataclass(frozen=True)
class LatentField:
    """Standard-normal latents of ``len(keys)`` samples on an ``(H, W)`` grid, drawable window by window.

    Block ``(i, j)`` of sample ``b`` (cells ``[i·block, (i+1)·block) × [j·block, (j+1)·block)``) is
    ``default_rng([*keys[b], i, j]).standard_normal((block, block))``, cropped at the domain edge:
    a window's latents never depend on how the domain is tiled or batched.
    """

    keys: tuple[tuple[int, ...], ...]
    shape: tuple[int, int]
    block: int = LATENT_BLOCK

    def window(self, b: int, rows: slice, cols: slice) -> np.ndarray:
        """Latents of sample ``b`` in ``[rows, cols]`` (steps of 1), float64 ``(h, w)``."""
        r0, r1 = rows.start or 0, self.shape[0] if rows.stop is None else rows.stop
        c0, c1 = cols.start or 0, self.shape[1] if cols.stop is None else cols.stop
        k = self.block
        out = np.empty((r1 - r0, c1 - c0))
        for i in range(r0 // k, (r1 - 1) // k + 1):
            for j in range(c0 // k, (c1 - 1) // k + 1):
                z = np.random.default_rng([*self.keys[b], i, j]).standard_normal((k, k))
                rs, re = max(r0, i * k), min(r1, (i + 1) * k)
                cs, ce = max(c0, j * k), min(c1, (j + 1) * k)
                out[rs - r0:re - r0, cs - c0:ce - c0] = z[rs - i * k:re - i * k, cs - j * k:ce - j * k]
        return out

    def full(self) -> np.ndarray:
        """All latents, ``(B, 1, H, W)`` float64 (the whole field in memory: small domains only)."""
        whole = (slice(0, self.shape[0]), slice(0, self.shape[1]))
        return np.stack([self.window(b, *whole)[None] for b in range(len(self.keys))])


def latent_field(seeds: Sequence[int], keys: Sequence[int], shape: tuple[int, int], grid: int) -> LatentField:
    """Latents of samples ordered hour-major ``(t, m)`` on one grid (``COARSE`` or ``FINE``)."""
    return LatentField(tuple((int(s), int(k), grid) for k in keys for s in seeds), tuple(shape))


def member_latents(seeds: Sequence[int], hour_keys: Sequence[int], shapes: Sequence[tuple[int, int]]):
    """Standard-normal latents per (hour, member), one float64 array ``(T, M, 1, H, W)`` per shape.

    The ``g``-th shape uses grid id ``g`` (``COARSE``, ``FINE``), as :func:`run_chain` does.
    """
    out = []
    for grid, shape in enumerate(shapes):
        full = latent_field(seeds, hour_keys, shape, grid).full()
        out.append(full.reshape(len(hour_keys), len(seeds), 1, *shape))
    return out


# ---------------------------------------------------------------------------------------- models


def resolved_precision(device: torch.device | str, precision: str = "auto") -> str:
    """``"bf16"`` or ``"fp32"``: what ``precision`` means on ``device`` (``auto``: bf16 on CUDA only)."""
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast if :func:`resolved_precision` says so (any device type), else a no-op."""
    if resolved_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _denoiser(trained: TrainedModel, compile_net: bool) -> torch.nn.Module:
    """The model's EDM denoiser, with a ``torch.compile``d U-Net (cached per model) if asked."""
    precond = trained.model.precond
    if not compile_net:
        return precond
    if precond not in _COMPILED:
        _COMPILED[precond] = EDMPrecond(torch.compile(precond.net, dynamic=False), precond.sigma_data)
    return _COMPILED[precond]


def residual_sampler(trained: TrainedModel, device: torch.device, sampler: dict | None,
                     precision: str = "auto", compile_net: bool = False, churn_seed: int = 0,
                     tiling: tuple[int, int, int] | None = None):
    """``fn(cond, latents) -> residual`` in model units for a diffusion or a regression model.

    ``tiling`` ``(tile, overlap, batch_size)``: every network (the denoiser at each sampling step,
    the regression, the residual base) runs on overlapping windows of the whole field, blended
    (:class:`~precipdiff.nn.tiling.TiledDenoiser`), each call padded to ``batch_size``; None: whole
    fields in one call.
    """
    model = trained.model.to(device).eval()
    kwargs = {**trained.info.get("sampler", {}), **(sampler or {})}
    denoise = _denoiser(trained, compile_net) if model.objective != "regression" else None
    calls = itertools.count()

    @torch.inference_mode()
    def fn(cond: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        cond = cond.to(device)
        tiled = (lambda d: TiledDenoiser(d, tuple(cond.shape[-2:]), *tiling)) if tiling else (lambda d: d)  # noqa: E731
        blank = cond.new_zeros(cond.shape[0], 1, *cond.shape[-2:])
        with autocast(device, precision):
            if model.objective == "regression":
                out = tiled(lambda _x, _s, c: model(None, None, c))(blank, 0.0, model.normalise_cond(cond))
                return out.float() * model.residual_scale
            lat = latents.to(device, torch.float32 if device.type == "mps" else torch.float64)
            gen = None
            if float(kwargs.get("S_churn", 0.0)) > 0:  # churn noise: one generator per batch, reproducible
                gen = torch.Generator().manual_seed(int(np.random.SeedSequence([churn_seed, next(calls)])
                                                        .generate_state(1)[0]))
            x = edm_sampler(tiled(denoise), model.normalise_cond(cond), lat, generator=gen, **kwargs)
            base = 0.0 if model.mean is None else tiled(lambda _x, _s, c: model.mean_residual(c))(blank, 0.0, cond)
        return x.float() * model.residual_scale + base  # base: the CorrDiff residual base (0 without one)
    return fn


def apply_model(trained: TrainedModel, base: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                latents: np.ndarray | LatentField | None, settings: ChainSettings, churn_seed: int = 0) -> np.ndarray:
    """``base + residual`` for ``base`` ``(B, H, W)`` (transformed units; the residual as the model
    was trained, :func:`~precipdiff.data.transforms.apply_residual`).

    ``latents``: ``(B, 1, H, W)`` array, a :class:`LatentField` or ``None`` (zeros; regression
    models ignore them). Samples go through :func:`residual_sampler` in groups of
    ``batch_size // windows`` (at least 1), each as one whole-domain field tiled inside
    (``settings.tile``, ``overlap``): a domain within one tile is one window, sampled whole.
    """
    device = pick_device(settings.device)
    n, h, w = base.shape
    names = trained.info["channels"][1:]
    windows = len(tile_layout(h, settings.tile, settings.overlap)[1]) * len(tile_layout(w, settings.tile,
                                                                                         settings.overlap)[1])
    group = max(1, settings.batch_size // windows)
    fn = residual_sampler(trained, device, settings.sampler, settings.precision, settings.compile, churn_seed,
                          tiling=(settings.tile, settings.overlap, settings.batch_size))
    res = np.empty((n, h, w), np.float32)
    for start in range(0, n, group):
        idx = np.arange(start, min(n, start + group))
        cond = transforms.condition(base[idx], names, lat, lon)
        if latents is None:
            z = np.zeros((idx.size, 1, h, w))
        elif isinstance(latents, LatentField):
            z = np.stack([latents.window(b, slice(0, h), slice(0, w))[None] for b in idx])
        else:
            z = latents[idx]
        res[idx] = fn(torch.from_numpy(cond), torch.from_numpy(np.ascontiguousarray(z)))[:, 0].detach().cpu().numpy()
    return transforms.apply_residual(base, res, trained.info.get("residual", "transformed"),
                                     trained.info.get("transform", "log1p"))


def run_chain(sat_t: np.ndarray, coarse_grid: tuple[np.ndarray, np.ndarray], fine_grid: tuple[np.ndarray, np.ndarray],
              hour_keys: Sequence[int], correction: TrainedModel | None, downscaling: TrainedModel | None,
              settings: ChainSettings) -> tuple[np.ndarray, np.ndarray]:
    """Satellite ``(T, h, w)`` (transformed) → ``(corrected (T, M, h, w), fine (T, M, H, W))``.

    ``correction=None`` skips the correction (downscaling-only ablation); ``downscaling=None``
    returns the upsampled corrected field (correction-only ablation). Regression models give
    one deterministic "member" (M = 1). ``hour_keys`` (see :func:`hour_keys`) seed the latents.
    """
    deterministic = all(m is None or m.model.objective == "regression" for m in (correction, downscaling))
    seeds = settings.seeds()[:1] if deterministic else settings.seeds()
    n = len(seeds)
    t, h, w = sat_t.shape
    upsampling = (downscaling or correction).info.get("upsampling", "bilinear")
    lat_c, lon_c = coarse_grid
    lat_f, lon_f = fine_grid
    churn = [settings.seed, *hour_keys]
    base_c = np.repeat(sat_t[:, None], n, axis=1).reshape(t * n, h, w).astype(np.float32)
    corrected = base_c if correction is None else apply_model(
        correction, base_c, lat_c, lon_c, latent_field(seeds, hour_keys, (h, w), COARSE), settings,
        _seed([*churn, COARSE]))
    up = transforms.upsample(corrected.astype(np.float32), NEST, upsampling)
    fine = up if downscaling is None else apply_model(
        downscaling, up, lat_f, lon_f, latent_field(seeds, hour_keys, (NEST * h, NEST * w), FINE), settings,
        _seed([*churn, FINE]))
    return corrected.reshape(t, n, h, w), fine.reshape(t, n, NEST * h, NEST * w)


def _seed(entropy: Sequence[int]) -> int:
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0])
