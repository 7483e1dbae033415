"""Window layout and the blended (MultiDiffusion) denoiser of large domains."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from precipdiff.nn.tiling import TiledDenoiser, blend_window, tile_layout
from precipdiff.verification import SeamStatistic


def test_tile_layout_never_makes_near_duplicate_windows():
    """Issue #23: 260 cells with 256-cell tiles used to give windows at 0 and 4 (almost the same)."""
    assert tile_layout(260, 256, 32) == (146, [0, 114])  # two windows sharing exactly 32 cells
    assert tile_layout(200, 256, 32) == (200, [0])
    for n, tile, overlap in [(500, 256, 32), (513, 64, 16), (97, 32, 8), (1000, 256, 32), (33, 32, 31)]:
        size, starts = tile_layout(n, tile, overlap)
        assert size <= tile and starts[0] == 0 and starts[-1] + size == n  # inside, covering both ends
        shared = size - np.diff(starts)  # cells two neighbours share
        assert (shared >= overlap).all() and shared.max() - shared.min() <= 1  # all overlaps alike
        assert len(starts) == int(np.ceil((n - overlap) / (tile - overlap)))  # the fewest windows
    with pytest.raises(ValueError, match="overlap < tile"):
        tile_layout(100, 32, 32)


def test_blend_window_is_a_cross_fade():
    w = blend_window(40, 40, 8).numpy()[0] / blend_window(40, 40, 8).numpy()[0].max()
    np.testing.assert_allclose(w[-8:] + w[:8], 1.0)  # ramp down + ramp up over the overlap = 1
    assert (w > 0).all() and w[8:32].min() == 1.0


def test_a_constant_is_blended_exactly_and_every_call_is_padded():
    calls = []

    def const(x, sigma, cond):
        calls.append(x.shape[0])
        return torch.full_like(x, 2.5)

    tiled = TiledDenoiser(const, (50, 70), 24, 6, 4)
    out = tiled(torch.zeros(3, 1, 50, 70, dtype=torch.float64), 1.0, torch.zeros(3, 2, 50, 70))
    assert out.dtype == torch.float64 and out.shape == (3, 1, 50, 70)
    torch.testing.assert_close(out, torch.full_like(out, 2.5), rtol=0, atol=1e-12)
    windows = len(tiled.windows)
    assert windows == 3 * 4 and len(calls) == -(-3 * windows // 4) and set(calls) == {4}


def test_windows_see_their_part_of_the_field_and_condition():
    """The identity denoiser plus the condition: blending the windows gives the field back."""
    x, cond = torch.randn(2, 1, 61, 45, dtype=torch.float64), torch.randn(2, 1, 61, 45)
    out = TiledDenoiser(lambda x, s, c: x + c, (61, 45), 20, 5, 3)(x, 0.5, cond)
    torch.testing.assert_close(out, x + cond.double(), rtol=0, atol=1e-12)


def test_blending_removes_seams_where_windows_disagree():
    """Each window returns its own smooth random field (windows disagreeing everywhere, the worst case):
    hard windows leave jumps at their borders; blended ones keep the gradient at window starts and
    ends at the level inside the windows, and mid-overlap far below a hard seam."""
    def smooth_per_window(x, sigma, cond):
        out = []
        for c in cond:
            noise = np.random.default_rng([int(c[0, 0, 0]), int(c[1, 0, 0])]).standard_normal(c.shape[-2:])
            z = gaussian_filter(noise, 5.0, mode="reflect")
            out.append(torch.from_numpy(z / z.std())[None])
        return torch.stack(out)

    def run(shape, tile, overlap):
        rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        cond = torch.from_numpy(np.stack([rows, cols]).astype(np.float32))[None].repeat(4, 1, 1, 1)
        cond[:, 0] += torch.arange(4)[:, None, None] * 1000  # window identity: its top-left (row + sample, col)
        return TiledDenoiser(smooth_per_window, shape, tile, overlap, 8)(torch.zeros(4, 1, *shape), 1.0, cond)[:, 0]

    def seam(out, block, offset):
        stat = SeamStatistic(block, offset)
        stat.accum(out.numpy())
        return stat.compute()["seam_ratio"]

    hard = run((128, 128), 32, 0)  # windows at 0, 32, 64, 96
    assert seam(hard, 32, 0) > 5.0
    size, starts = tile_layout(104, 32, 8)  # windows start at 0, 24, 48, 72 and end 8 cells into the next step
    assert (size, starts) == (32, [0, 24, 48, 72])
    blended = run((104, 104), 32, 8)
    assert abs(seam(blended, 24, 0) - 1) < 0.1  # window starts
    assert abs(seam(blended, 24, 8) - 1) < 0.1  # window ends
    assert seam(blended, 24, 4) < 2.0  # mid-overlap


def test_auto_precision_is_bf16_only_where_bf16_is_native(monkeypatch):
    """Issue #23: evaluation and inference share one precision; ``auto`` means bf16 on CUDA and on CPUs
    with bf16 units, fp32 on other CPUs and on MPS."""
    from precipdiff.nn import sampling

    monkeypatch.setattr(sampling, "native_cpu_bf16", lambda: True)
    assert sampling.resolved_precision("cpu") == "bf16" and sampling.resolved_precision("cuda") == "bf16"
    assert sampling.resolved_precision("mps") == "fp32" and sampling.resolved_precision("cpu", "fp32") == "fp32"
    monkeypatch.setattr(sampling, "native_cpu_bf16", lambda: False)
    assert sampling.resolved_precision("cpu") == "fp32"
