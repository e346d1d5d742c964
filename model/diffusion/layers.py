"""Single-tensor building blocks of the U-Net (and of the portrait and restorer networks).

Nothing here knows about the two branches: ``conv_nd(dims, ...)`` serves 1-D audio and 3-D video
alike (guided-diffusion's idiom), and the boundary reshapes (``patch_*`` / ``unpatch_*``) are lossless.
The two-branch layers built from these live in ``blocks.py``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_nd(dims: int, *args, **kwargs) -> nn.Module:
    """A 1-D (audio) or 3-D (video, ``[B, C, F, H, W]``) convolution."""
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](*args, **kwargs)


def zero_module(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps ``[B]`` -> ``[B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class VideoConv(nn.Module):
    """(2+1)D convolution on ``[B, C, F, H, W]``: 1x3x3 per frame, then 3x1x1 across frames."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.spatial = conv_nd(3, cin, cout, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = conv_nd(3, cout, cout, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.spatial(x))


class AudioConv(nn.Module):
    """Dilated 1-D convolution on ``[B, C, L]`` (length preserved)."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = conv_nd(1, cin, cout, 3, padding=dilation, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ResBlock(nn.Module):
    """GN-Swish-conv, AdaGN(emb), Swish-dropout-conv, plus a skip; ``conv`` makes the modality's conv.

    x ``[B, cin, ...]``, emb ``[B, E]`` -> ``[B, cout, ...]`` (the ``...`` is unchanged).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        emb_channels: int,
        conv: Callable[[int, int], nn.Module],
        dims: int,
        groups: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm_in = group_norm(cin, groups)
        self.conv_in = conv(cin, cout)
        self.emb = nn.Linear(emb_channels, 2 * cout)  # -> [y_s, y_b] of AdaGN
        self.norm_out = group_norm(cout, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = zero_module(conv(cout, cout))
        self.skip = nn.Identity() if cin == cout else conv_nd(dims, cin, cout, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv_in(F.silu(self.norm_in(x)))
        scale, shift = self.emb(F.silu(emb)).chunk(2, dim=1)  # [B, cout] each
        shape = (*scale.shape, *([1] * (h.ndim - 2)))
        h = self.norm_out(h) * (1 + scale.reshape(shape)) + shift.reshape(shape)  # AdaGN, Eq. 9
        h = self.conv_out(self.dropout(F.silu(h)))
        return self.skip(x) + h


# -- attention helpers -------------------------------------------------------------------------------
def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[..., N, C]`` -> ``[..., heads, N, C / heads]``, the layout attention takes."""
    return x.unflatten(-1, (heads, -1)).transpose(-3, -2)


def merge_heads(x: Tensor) -> Tensor:
    """``[..., heads, N, C / heads]`` -> ``[..., N, C]``: the inverse of ``split_heads``."""
    return x.transpose(-3, -2).flatten(-2)


def rotate_positions(x: Tensor) -> Tensor:
    """Rotary position embedding on ``[..., L, D]`` (D even): pair i of token p turns by p * 10000^(-2i/D).

    Dot products of rotated queries and keys then depend on the tokens' distance, not their place,
    so attention trained on one chunk length applies to another.
    """
    length, dim = x.shape[-2], x.shape[-1]
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angle = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * freqs[None]  # [L, D/2]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


# -- patching: lossless reshapes at the network's boundary ------------------------------------------
def patch_video(video: Tensor, p: int) -> Tensor:
    """``[B, F, C, H, W]`` -> ``[B, C*p*p, F, H/p, W/p]`` (pixel-unshuffle per frame)."""
    b, f, c, h, w = video.shape
    x = F.pixel_unshuffle(video.reshape(b * f, c, h, w), p) if p > 1 else video.reshape(b * f, c, h, w)
    return x.reshape(b, f, c * p * p, h // p, w // p).transpose(1, 2)


def unpatch_video(x: Tensor, p: int) -> Tensor:
    """``[B, C*p*p, F, h, w]`` -> ``[B, F, C, h*p, w*p]``."""
    b, cp, f, h, w = x.shape
    x = x.transpose(1, 2).reshape(b * f, cp, h, w)
    x = F.pixel_shuffle(x, p) if p > 1 else x
    return x.reshape(b, f, cp // (p * p), h * p, w * p)


def patch_audio(audio: Tensor, p: int) -> Tensor:
    """``[B, C, S]`` -> ``[B, C*p, S/p]`` (consecutive positions become channels)."""
    if p == 1:
        return audio
    b, c, s = audio.shape
    return audio.reshape(b, c, s // p, p).permute(0, 1, 3, 2).reshape(b, c * p, s // p)


def unpatch_audio(x: Tensor, p: int) -> Tensor:
    """``[B, C*p, L]`` -> ``[B, C, L*p]``."""
    if p == 1:
        return x
    b, cp, length = x.shape
    return x.reshape(b, cp // p, p, length).permute(0, 1, 3, 2).reshape(b, cp // p, length * p)
