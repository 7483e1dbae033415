"""Large domains: a denoiser applied tile by tile and blended at every sampling step (MultiDiffusion).

Sampling each tile independently and cross-fading the finished samples averages two independent
draws in every overlap: the ensemble loses up to half its variance there and the texture jumps
where one tile takes over. Instead the sampler integrates **one** latent field for the whole
domain, and at every step the denoiser ``D(x; σ)`` is evaluated on overlapping windows of the
current ``x`` and the window outputs are blended (MultiDiffusion, Bar-Tal et al. 2023, eq. 5:
the blended estimate is the weighted least-squares fit ``Σ_i w_i D_i / Σ_i w_i`` of the window
estimates). Every window denoises the same field, so neighbours agree up to what their context
differs, and the overlap keeps the ensemble's statistics.

Plain torch: :class:`TiledDenoiser` wraps any ``denoise(x, σ, cond)`` (e.g.
:class:`~precipdiff.nn.precond.EDMPrecond`) and is passed to
:func:`~precipdiff.nn.sampler.edm_sampler` in its place; :func:`tile_layout` places the windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def tile_layout(n: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """``(size, starts)`` of the fewest windows of at most ``tile`` cells covering ``n`` cells with
    neighbours sharing at least ``overlap`` cells.

    ``k = ⌈(n − overlap) / (tile − overlap)⌉`` windows of one size ``⌈(n + (k − 1)·overlap) / k⌉``
    (≤ ``tile``), starts evenly spaced from 0 to ``n − size``: the overlaps are equal to within a
    cell, never near-duplicate windows (a 260-cell axis with 256-cell tiles and 32 overlap gives
    two 146-cell windows at 0 and 114, not two 256-cell ones at 0 and 4). ``n ≤ tile``: one window.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"tile_layout: need 0 <= overlap < tile; got tile={tile}, overlap={overlap}")
    if n <= tile:
        return n, [0]
    k = math.ceil((n - overlap) / (tile - overlap))
    size = min(tile, math.ceil((n + (k - 1) * overlap) / k))
    return size, [round(i * (n - size) / (k - 1)) for i in range(k)]


def blend_window(size_h: int, size_w: int, overlap: int) -> torch.Tensor:
    """Separable weights ``(size_h, size_w)``: 1 inside, a raised-cosine ramp over ``overlap`` cells at
    each edge (never 0). Two windows overlapping by exactly ``overlap`` cells have ramps summing to 1
    (sin² + cos²); blending divides by the summed weights, so any overlap is exact."""
    def ramp(n: int) -> torch.Tensor:
        w = torch.ones(n, dtype=torch.float64)
        k = min(overlap, n // 2)
        if k > 0:
            edge = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(k, dtype=torch.float64) + 0.5) / k)
            w[:k], w[n - k:] = edge, edge.flip(0)
        return w
    return ramp(size_h)[:, None] * ramp(size_w)[None, :]


class TiledDenoiser:
    """``D(x; σ, cond)`` on ``(B, C, H, W)`` from ``denoise`` applied to overlapping windows.

    Parameters
    ----------
    denoise : callable
        ``denoise(x (k, C, h, w), σ, cond (k, C', h, w)) -> (k, C, h, w)``.
    shape : (H, W)
        The domain (cells).
    tile, overlap : int
        Largest window side and least overlap of neighbours (cells), :func:`tile_layout`.
    batch_size : int
        Windows per call of ``denoise``; every call is zero-padded to it (the same batch shape for
        every call, so results do not depend on how windows share a batch, and ``torch.compile``
        compiles once).
    """

    def __init__(self, denoise: Callable, shape: tuple[int, int], tile: int, overlap: int, batch_size: int):
        (self.th, rows), (self.tw, cols) = tile_layout(shape[0], tile, overlap), tile_layout(shape[1], tile, overlap)
        self.denoise, self.shape, self.batch_size = denoise, tuple(shape), int(batch_size)
        self.windows = [(r, c) for r in rows for c in cols]
        self.weight = blend_window(self.th, self.tw, overlap)
        total = torch.zeros(shape, dtype=torch.float64)
        for r, c in self.windows:
            total[r:r + self.th, c:c + self.tw] += self.weight
        self.total = total

    def __call__(self, x: torch.Tensor, sigma, cond: torch.Tensor) -> torch.Tensor:
        if len(self.windows) == 1:  # the whole domain in one window: the denoiser itself
            return _padded_calls(self.denoise, x, sigma, cond, self.batch_size)
        jobs = [(b, r, c) for b in range(x.shape[0]) for r, c in self.windows]
        views = [(b, slice(r, r + self.th), slice(c, c + self.tw)) for b, r, c in jobs]
        xs = torch.stack([x[b, :, rs, cs] for b, rs, cs in views])
        conds = torch.stack([cond[b, :, rs, cs] for b, rs, cs in views])
        out = _padded_calls(self.denoise, xs, sigma, conds, self.batch_size)
        acc = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        weight = self.weight.to(x.device)
        for (b, rs, cs), d in zip(views, out):
            acc[b, :, rs, cs] += d.double() * weight
        return (acc / self.total.to(x.device)).to(x.dtype)


def _padded_calls(denoise: Callable, x: torch.Tensor, sigma, cond: torch.Tensor, size: int) -> torch.Tensor:
    """``denoise`` over ``x`` / ``cond`` (batch axis 0) ``size`` at a time, each call zero-padded to ``size``."""
    parts = []
    for start in range(0, x.shape[0], size):
        xb, cb = x[start:start + size], cond[start:start + size]
        parts.append(denoise(pad(xb, size), sigma, pad(cb, size))[:xb.shape[0]])
    return torch.cat(parts)


def pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the batch axis to ``size``: every network call sees the same batch shape, so a
    sample's result does not depend on how many others share its batch (CPU kernels may differ for
    other shapes), and ``torch.compile`` compiles once."""
    if x.shape[0] >= size:
        return x
    return torch.cat([x, x.new_zeros(size - x.shape[0], *x.shape[1:])])
