"""Conditional U-Net ``F(x ⊕ cond, c_noise)`` shared by the EDM denoisers and the regression baselines.

A compact DDPM++-style U-Net (Song et al. 2021, as used by EDM, Karras et al. 2022): residual blocks
whose second GroupNorm is modulated by the noise embedding (FiLM / adaptive GroupNorm, scale and
shift), self-attention at the levels listed in ``attn_levels``, one skip connection per level, and
zero-initialised output layers so that an untrained block is the identity and an untrained network
outputs 0. Inputs of any height and width are padded to a multiple of ``2**(len(channel_mult)-1)``
(reflect, or replicate when the field is too small to reflect) and cropped back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_SKIP_SCALE = math.sqrt(0.5)  # EDM DDPM++ skip_scale: keeps the residual sum at unit variance


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with groups of 4 channels, at most 32 groups (EDM ``GroupNorm`` defaults)."""
    return nn.GroupNorm(num_groups=min(32, channels // 4), num_channels=channels, eps=1e-6)


def _zero(module: nn.Module) -> nn.Module:
    """Zero a layer's weights and bias so the branch it closes starts as a no-op."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class FourierEmbedding(nn.Module):
    """Random Fourier features of the scalar noise label (EDM NCSN++, Tancik et al. 2020).

    ``freqs`` is a buffer, so it travels with the ``state_dict``.
    """

    def __init__(self, num_channels: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, noise_labels: torch.Tensor) -> torch.Tensor:
        phase = noise_labels.float().outer(2 * math.pi * self.freqs)
        return torch.cat([phase.cos(), phase.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the second norm is scaled and shifted by the noise embedding."""

    def __init__(self, in_channels: int, out_channels: int, emb_channels: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = _norm(in_channels), _norm(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(emb_channels, 2 * out_channels)  # (scale, shift) per channel
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm2(h), scale + 1))  # adaptive GroupNorm (FiLM)
        h = self.conv2(self.dropout(h))
        return (self.skip(x) + h) * _SKIP_SCALE


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels (64 channels per head), residual and zero-init."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = max(1, channels // 64)
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return (x + self.proj(out)) * _SKIP_SCALE


class UNet(nn.Module):
    """Conditional U-Net mapping ``(B, in_channels, H, W)`` and noise labels ``(B,)`` to ``(B, out_channels, H, W)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Input channels (the ``x`` slot plus every conditioning channel) and output channels.
    base_channels : int
        Channels at full resolution; level ``i`` has ``base_channels * channel_mult[i]``. Multiple of 4.
    channel_mult : sequence of int
        One entry per resolution level; level ``i`` works at ``1 / 2**i`` of the input resolution.
    num_res_blocks : int
        Residual blocks per level in the encoder (and in the decoder).
    attn_levels : sequence of int
        Levels (indices into ``channel_mult``) that get self-attention; the bottleneck always has it.
    emb_channels : int, optional
        Width of the noise embedding MLP; default ``4 * base_channels``.
    dropout : float
        Dropout probability inside the residual blocks.
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 32,
                 channel_mult=(1, 2, 2), num_res_blocks: int = 1, attn_levels=(2,),
                 emb_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        if base_channels % 4 or base_channels < 4:
            raise ValueError(f"UNet: base_channels must be a positive multiple of 4; got {base_channels}")
        bad = [i for i in attn_levels if not 0 <= i < len(channel_mult)]
        if bad:
            raise ValueError(f"UNet: attn_levels {list(attn_levels)} index into channel_mult "
                             f"{list(channel_mult)}; {bad} out of range")
        chs = [base_channels * m for m in channel_mult]
        emb = emb_channels or 4 * base_channels
        self.multiple = 2 ** (len(chs) - 1)  # inputs are padded to a multiple of this
        self.embed = nn.Sequential(FourierEmbedding(base_channels), nn.Linear(base_channels, emb), nn.SiLU(),
                                   nn.Linear(emb, emb), nn.SiLU())
        self.stem = nn.Conv2d(in_channels, chs[0], 3, padding=1)
        self.encoder, self.decoder = nn.ModuleList(), nn.ModuleList()
        self.downsample, self.upsample = nn.ModuleList(), nn.ModuleList()
        prev = chs[0]
        for i, ch in enumerate(chs):
            level = [ResBlock(prev if j == 0 else ch, ch, emb, dropout) for j in range(num_res_blocks)]
            self.encoder.append(nn.ModuleList(level + ([SelfAttention(ch)] if i in attn_levels else [])))
            last = i == len(chs) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        self.middle = nn.ModuleList([ResBlock(prev, prev, emb, dropout), SelfAttention(prev),
                                     ResBlock(prev, prev, emb, dropout)])
        for i, ch in reversed(list(enumerate(chs))):
            last = i == len(chs) - 1
            self.upsample.append(nn.Identity() if last else nn.Conv2d(prev, prev, 3, padding=1))
            level = [ResBlock(prev + ch if j == 0 else ch, ch, emb, dropout) for j in range(num_res_blocks)]
            self.decoder.append(nn.ModuleList(level + ([SelfAttention(ch)] if i in attn_levels else [])))
            prev = ch
        self.out = nn.Sequential(_norm(prev), nn.SiLU(), _zero(nn.Conv2d(prev, out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, noise_labels: torch.Tensor) -> torch.Tensor:
        """Apply the network; ``noise_labels`` is ``(B,)`` (EDM: ``c_noise = ln(σ)/4``; regression: 0)."""
        height, width = x.shape[-2:]
        x = _pad_to_multiple(x, self.multiple)
        emb = self.embed(noise_labels.reshape(-1).expand(x.shape[0]))
        h, skips = self.stem(x), []
        for level, down in zip(self.encoder, self.downsample):
            h = _run(level, h, emb)
            skips.append(h)
            h = down(h)
        h = _run(self.middle, h, emb)
        for level, up in zip(self.decoder, self.upsample):
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = _run(level, torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)[..., :height, :width]


def _run(blocks: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        h = block(h, emb)
    return h


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right to a multiple of ``multiple``: reflect when possible, else replicate."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
