"""The PrecipDiff chain at inference: satellite → correction ensemble → upsample → downscaling per member.

Plain torch + numpy (no Kedro). Shared by the ``evaluation`` and ``inference`` pipelines.

Noise and reproducibility: the latents of member ``m`` of hour ``t`` depend only on
``(member_seeds[m], hour_key(t), grid)`` and the position in the domain (:class:`LatentField`
draws them in fixed 64 × 64 blocks, each from its own generator), so any member of any hour can be
regenerated alone, whatever the batching or tiling. This is exact for the deterministic sampler
(``S_churn = 0``); with churn the extra noise comes from one generator per batch of tiles, seeded
from ``(seed, hours, grid, batch index)``: reproducible for the same settings, not member by member.

Large domains are sampled in overlapping tiles (:func:`tiled_map`) cross-faded with raised-cosine
weights. Tiles of all samples (hours × members) are denoised together ``batch_size`` at a time;
conditions and latents are built per tile, so memory is the tile batch plus the output fields.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from precipdiff.data import transforms
from precipdiff.data.contract import NEST
from precipdiff.nn.precond import EDMPrecond
from precipdiff.nn.sampler import edm_sampler
from precipdiff.seeds import hour_keys, member_seeds  # noqa: F401  (hour_keys: re-exported)
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
    tile: int = 256  # tile side (cells, on either grid); domains up to this size run untiled
    overlap: int = 32  # overlap between neighbouring tiles (cells), the width of the cross-fade
    batch_size: int = 8  # samples (member × hour × tile) denoised together
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


# ---------------------------------------------------------------------------------------- tiling


def blend_window(size_h: int, size_w: int, overlap: int) -> torch.Tensor:
    """Separable weights: 1 inside, a raised-cosine ramp over ``overlap`` cells at each edge (> 0).

    Two tiles overlapping by exactly ``overlap`` cells have ramps summing to 1 (sin² + cos²), a
    cross-fade; :func:`tiled_map` still divides by the summed weights, so any overlap is exact.
    """
    def ramp(n: int) -> torch.Tensor:
        w = torch.ones(n, dtype=torch.float64)
        k = min(overlap, n // 2)
        if k > 0:
            edge = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(k, dtype=torch.float64) + 0.5) / k)
            w[:k], w[n - k:] = edge, edge.flip(0)
        return w
    return ramp(size_h)[:, None] * ramp(size_w)[None, :]


def tile_origins(n: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` cells covering ``n`` with at least ``overlap`` overlap."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


TileInputs = Callable[[int, slice, slice], tuple[torch.Tensor, torch.Tensor]]


def tiled_map(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], tile_inputs: TileInputs, n: int,
              shape: tuple[int, int], tile: int, overlap: int, batch_size: int) -> np.ndarray:
    """Apply ``fn(cond (k, C, h, w), latents (k, 1, h, w)) -> (k, 1, h, w)`` over overlapping tiles.

    ``tile_inputs(b, rows, cols)`` returns sample ``b``'s condition ``(C, h, w)`` and latents
    ``(1, h, w)`` in a window. Jobs run sample-major (all windows of sample 0, then sample 1 …) in
    batches of ``batch_size`` (the last one zero-padded, see :func:`_pad`); a sample is blended
    (float64 weighted mean of its tiles) as soon as its last tile is done, so at most
    ``⌈batch_size / n_tiles⌉ + 1`` float64 accumulators exist.
    A domain within one tile is processed whole (tiled == untiled there, bit for bit).

    Returns ``(n, H, W)`` float32.
    """
    h, w = shape
    windows = [(r, c) for r in tile_origins(h, tile, overlap) for c in tile_origins(w, tile, overlap)]
    th, tw = min(tile, h), min(tile, w)
    win = blend_window(th, tw, overlap).numpy()
    total = np.zeros((h, w))
    for r, c in windows:
        total[r:r + th, c:c + tw] += win
    out = np.empty((n, h, w), np.float32)
    acc: dict[int, np.ndarray] = {}
    for chunk in _batched(((b, r, c) for b in range(n) for r, c in windows), batch_size):
        inputs = [tile_inputs(b, slice(r, r + th), slice(c, c + tw)) for b, r, c in chunk]
        cond, lat = torch.stack([x[0] for x in inputs]), torch.stack([x[1] for x in inputs])
        res = fn(_pad(cond, batch_size), _pad(lat, batch_size)).detach().float().cpu().numpy()[:len(chunk), 0]
        for k, (b, r, c) in enumerate(chunk):
            if len(windows) == 1:
                out[b] = res[k]
                continue
            a = acc.setdefault(b, np.zeros((h, w)))
            a[r:r + th, c:c + tw] += res[k] * win
            if (r, c) == windows[-1]:
                out[b] = a / total
                del acc[b]
    return out


def tiled_apply(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], cond: torch.Tensor,
                latents: torch.Tensor, tile: int, overlap: int, batch_size: int) -> torch.Tensor:
    """:func:`tiled_map` over whole in-memory tensors ``cond (B, C, H, W)``, ``latents (B, 1, H, W)``.

    Returns ``(B, 1, H, W)`` float32.
    """
    b, _, h, w = cond.shape
    out = tiled_map(fn, lambda i, rs, cs: (cond[i, :, rs, cs], latents[i, :, rs, cs]), b, (h, w), tile,
                    overlap, batch_size)
    return torch.from_numpy(out)[:, None]


def _pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the batch axis to ``size``: every network call sees the same batch shape, so a
    sample's result does not depend on how many others share its batch (CPU kernels may differ for
    other shapes), and ``torch.compile`` compiles once."""
    if x.shape[0] >= size:
        return x
    return torch.cat([x, x.new_zeros(size - x.shape[0], *x.shape[1:])])


def _batched(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


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
                     precision: str = "auto", compile_net: bool = False, churn_seed: int = 0):
    """``fn(cond, latents) -> residual`` in model units for a diffusion or a regression model."""
    model = trained.model.to(device).eval()
    kwargs = {**trained.info.get("sampler", {}), **(sampler or {})}
    denoise = _denoiser(trained, compile_net) if model.objective != "regression" else None
    calls = itertools.count()

    @torch.inference_mode()
    def fn(cond: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        cond = cond.to(device)
        with autocast(device, precision):
            if model.objective == "regression":
                return model(None, None, model.normalise_cond(cond)).float() * model.residual_scale
            lat = latents.to(device, torch.float32 if device.type == "mps" else torch.float64)
            gen = None
            if float(kwargs.get("S_churn", 0.0)) > 0:  # churn noise: one generator per batch, reproducible
                gen = torch.Generator().manual_seed(int(np.random.SeedSequence([churn_seed, next(calls)])
                                                        .generate_state(1)[0]))
            x = edm_sampler(denoise, model.normalise_cond(cond), lat, generator=gen, **kwargs)
            base = model.mean_residual(cond)  # CorrDiff residual base (0 when the model has none)
        return x.float() * model.residual_scale + base
    return fn


def apply_model(trained: TrainedModel, base: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                latents: np.ndarray | LatentField | None, settings: ChainSettings, churn_seed: int = 0) -> np.ndarray:
    """``base + residual`` for ``base`` ``(B, H, W)`` (transformed units; the residual as the model
    was trained, :func:`~precipdiff.data.transforms.apply_residual`).

    ``latents``: ``(B, 1, H, W)`` array, a :class:`LatentField` (drawn tile by tile) or ``None``
    (zeros; regression models ignore them). Conditions are built tile by tile.
    """
    device = pick_device(settings.device)
    n, h, w = base.shape
    names = trained.info["channels"][1:]

    def tile_inputs(b: int, rows: slice, cols: slice):
        part = base[b, rows, cols][None]
        cond = transforms.condition(part, names, lat[rows], lon[cols])[0]
        if latents is None:
            z = np.zeros((1, *part.shape[-2:]))
        elif isinstance(latents, LatentField):
            z = latents.window(b, rows, cols)[None]
        else:
            z = latents[b, :, rows, cols]
        return torch.from_numpy(cond), torch.from_numpy(np.ascontiguousarray(z))

    fn = residual_sampler(trained, device, settings.sampler, settings.precision, settings.compile, churn_seed)
    res = tiled_map(fn, tile_inputs, n, (h, w), settings.tile, settings.overlap, settings.batch_size)
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
