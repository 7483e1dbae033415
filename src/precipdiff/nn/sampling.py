"""One path from a trained residual model to a residual sample (plain torch + numpy, no Kedro).

Every consumer samples a :class:`~precipdiff.nn.residual.ResidualModel` through
:func:`residual_sampler` (or :func:`sample_members`, its whole-field form): the training-time
validation check and the sampler selection (``pipelines/residual_training.py``), the evaluation
and the inference chain (:mod:`precipdiff.inference.chain`, ``precipdiff downscale``) and the MLflow
pyfunc model (:mod:`precipdiff.serving.pyfunc_model`). So what MLflow serves is what the
evaluation scored: ``tests/serving/test_pyfunc_model.py`` checks the same member for the same seed.

* **Latents**: member ``m`` (seed ``member_seeds[m]``, :func:`precipdiff.seeds.member_seeds`) of
  hour key ``k`` (whole hours since 1970) on grid ``g`` (:data:`COARSE` or :data:`FINE`) is the
  standard-normal :class:`LatentField` keyed ``(seed_m, k, g)``, drawn in fixed 64 × 64 blocks, so
  any member of any hour can be regenerated alone whatever the batching or tiling.
* **Precision**: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32`` or ``bf16`` (autocast
  on any device); the integration itself runs in float64 (float32 on MPS).
* **Batches**: a network call always sees ``batch_size`` samples (the last batch zero-padded), so a
  sample does not depend on how many others share its batch.
* **Sampler**: :func:`~precipdiff.nn.sampler.edm_sampler` (EDM, Karras et al. 2022, Algorithm 2)
  with the keyword arguments of :data:`~precipdiff.nn.sampler.SAMPLER_KEYS`; the churn noise comes
  from one generator per network batch, seeded from ``(churn_seed, batch index)``.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from precipdiff.nn.precond import EDMPrecond
from precipdiff.nn.residual import ResidualModel
from precipdiff.nn.sampler import check_sampler, edm_sampler
from precipdiff.nn.tiling import TiledDenoiser, pad  # noqa: F401  (pad: the batches of every network call)
from precipdiff.sampler_settings import PRECISIONS

COARSE, FINE = 0, 1  # grid ids in the latent keys: 0.1° (correction) and 0.01° (downscaling)
LATENT_BLOCK = 64  # latents are drawn in blocks of this many cells (per axis)

Sampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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

    The ``g``-th shape uses grid id ``g`` (``COARSE``, ``FINE``), as the chain does.
    """
    out = []
    for grid, shape in enumerate(shapes):
        full = latent_field(seeds, hour_keys, shape, grid).full()
        out.append(full.reshape(len(hour_keys), len(seeds), 1, *shape))
    return out


# ---------------------------------------------------------------------------------------- device, precision


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA > MPS > CPU; otherwise ``torch.device(name)``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")



def resolved_precision(device: torch.device | str, precision: str = "auto") -> str:
    """``"bf16"`` or ``"fp32"``: what ``precision`` means on ``device``. ``auto``: bf16 on CUDA and on
    CPUs with native bf16 units (AMX or AVX-512 BF16: bf16 matmuls ~2.5× fp32's there, the same
    validation scores, docs/inference.md *Speed*), fp32 elsewhere (MPS, older CPUs, where bf16
    autocast can be slower than fp32). The evaluation and ``precipdiff downscale`` share the setting."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}; got {precision!r}")
    if precision == "auto":
        kind = torch.device(device).type
        return "bf16" if kind == "cuda" or (kind == "cpu" and native_cpu_bf16()) else "fp32"
    return precision


def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 matrix units (Intel AMX tiles or AVX-512 BF16)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast if :func:`resolved_precision` says so (any device type), else a no-op."""
    if resolved_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------- sampling

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _denoiser(model: ResidualModel, compile_net: bool) -> torch.nn.Module:
    """The model's EDM denoiser, with a ``torch.compile``d U-Net (cached per model) if asked."""
    if not compile_net:
        return model.precond
    if model.precond not in _COMPILED:
        _COMPILED[model.precond] = EDMPrecond(torch.compile(model.precond.net, dynamic=False),
                                              model.precond.sigma_data)
    return _COMPILED[model.precond]


def predict(model: ResidualModel, cond: torch.Tensor, precision: str = "auto",
            tiling: tuple[int, int, int] | None = None) -> torch.Tensor:
    """A regression model's residual ``(B, 1, H, W)`` (model units) for raw ``cond`` ``(B, C, H, W)``
    (``tiling``: on blended windows, as :func:`residual_sampler`)."""
    with torch.inference_mode(), autocast(cond.device, precision):
        net = _tiled(lambda _x, _s, c: model(None, None, c), cond, tiling)
        return net(_blank(cond), 0.0, model.normalise_cond(cond)).float() * model.residual_scale


def residual_sampler(model: ResidualModel, sampler: Mapping, device: torch.device | str = "cpu",
                     precision: str = "auto", compile_net: bool = False, churn_seed: int = 0,
                     tiling: tuple[int, int, int] | None = None) -> Sampler:
    """``fn(cond (B, C, H, W), latents (B, 1, H, W)) -> residual (B, 1, H, W)`` in model units.

    ``"edm"``: :func:`~precipdiff.nn.sampler.edm_sampler` from ``latents`` with the ``sampler``
    setting, plus the CorrDiff residual base μ(c) (Mardani et al. 2024, eq. 4) when the model has
    one; ``"regression"``: the mean residual (``latents`` and ``sampler`` ignored).
    ``tiling`` ``(tile, overlap, batch_size)``: every network (the denoiser at each sampling step,
    the regression, the residual base) runs on overlapping windows of the whole field, blended
    (MultiDiffusion, :class:`~precipdiff.nn.tiling.TiledDenoiser`), each call padded to ``batch_size``.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    if model.objective == "regression":
        return lambda cond, latents: predict(model, cond.to(device), precision, tiling)
    kwargs, denoise, calls = check_sampler(sampler), _denoiser(model, compile_net), itertools.count()

    @torch.inference_mode()
    def fn(cond: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        cond = cond.to(device)
        with autocast(device, precision):
            lat = latents.to(device, torch.float32 if device.type == "mps" else torch.float64)  # MPS: no float64
            gen = None
            if float(kwargs.get("S_churn", 0.0)) > 0:  # churn noise: one generator per batch, reproducible
                gen = torch.Generator().manual_seed(int(np.random.SeedSequence([churn_seed, next(calls)])
                                                        .generate_state(1)[0]))
            x = edm_sampler(_tiled(denoise, cond, tiling), model.normalise_cond(cond), lat, generator=gen, **kwargs)
            base = 0.0 if model.mean is None else _tiled(lambda _x, _s, c: model.mean_residual(c), cond, tiling)(
                _blank(cond), 0.0, cond)  # CorrDiff residual base (0 when the model has none)
        return x.float() * model.residual_scale + base
    return fn


def _tiled(net: Callable, cond: torch.Tensor, tiling: tuple[int, int, int] | None) -> Callable:
    """``net(x, σ, cond)`` on the blended windows of ``cond``'s field (:class:`TiledDenoiser`), or as is."""
    return TiledDenoiser(net, tuple(cond.shape[-2:]), *tiling) if tiling else net


def _blank(cond: torch.Tensor) -> torch.Tensor:
    """The unused ``x`` slot of a deterministic network run through :func:`_tiled`: zeros ``(B, 1, H, W)``."""
    return cond.new_zeros(cond.shape[0], 1, *cond.shape[-2:])


def sample_members(model: ResidualModel, cond: torch.Tensor, sampler: Mapping, seeds: Sequence[int],
                   hour_keys: Sequence[int], grid: int, *, device: torch.device | str = "cpu",
                   precision: str = "auto", batch_size: int = 8, churn_seed: int = 0) -> torch.Tensor:
    """Residual members ``(B, M, 1, H, W)`` (model units) of whole fields ``cond`` ``(B, C, H, W)``.

    Sample ``b`` is hour ``hour_keys[b]``; member ``m`` starts from the :class:`LatentField` keyed
    ``(seeds[m], hour_keys[b], grid)``, exactly as the chain draws it (same batches of
    ``batch_size``, zero-padded), so a field within one chain tile gets the chain's member.
    """
    b, _, h, w = cond.shape
    if len(hour_keys) != b:
        raise ValueError(f"sample_members: {len(hour_keys)} hour keys for {b} conditions (one per sample)")
    latents = torch.from_numpy(latent_field(seeds, hour_keys, (h, w), grid).full())
    cond_m = cond.repeat_interleave(len(seeds), dim=0)  # hour-major (t, m), as the latents
    fn = residual_sampler(model, sampler, device, precision, churn_seed=churn_seed)
    out = []
    for start in range(0, len(cond_m), batch_size):
        n = min(batch_size, len(cond_m) - start)
        part = slice(start, start + n)
        out.append(fn(pad(cond_m[part], batch_size), pad(latents[part], batch_size)).float().cpu()[:n])
    return torch.cat(out).reshape(b, len(seeds), 1, h, w)


def batched(items: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk
