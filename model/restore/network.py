"""The restorer network: ``(frame [B, 3, S, S], reference [B, 3, S, S]) -> frame [B, 3, S, S]``, all in [-1, 1].

A small two-level residual CNN on the pixel-unshuffled pair (``patch`` x ``patch`` -> channels), with a
global skip: it outputs a correction to the input frame, zero at the start. At the lower level the
frame's features also attend to the reference's own features (``attention``), so detail is fetched
from where it is in the reference, whatever the head's pose in the frame.

With ``scale`` > 1 the same network is the super-resolution stage (the upscaler, issue 24):
``(frame [B, 3, S, S], reference [B, 3, kS, kS]) -> frame [B, 3, kS, kS]``. The reference comes in at
the output's size; it is read at the frame's grid as its area-downsampled self plus its pixels
unshuffled (``k x k`` -> channels), so each grid cell carries the reference's full detail, and the
correction is added to the bicubic-upsampled frame through a pixel-shuffle tail. A reference of all
zeros means none (the trainer drops references at random so that a face alone can be upscaled).
A batch of frames may share one reference (batch 1): its features are computed once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.unet import group_norm, zero_module


@dataclass(frozen=True)
class RestoreConfig:
    image_size: int = 64
    patch: int = 2
    width: int = 64
    blocks: int = 3  # residual blocks at S / patch
    mid_blocks: int = 4  # residual blocks at S / patch / 2
    groups: int = 16
    attention: bool = True  # cross-attention from the frame to the reference at the lower level
    head_channels: int = 32
    name: str = "restore"
    scale: int = 1  # output side / input side: 1 the restorer, 4 the upscaler (64 -> 256)
    align: bool = False  # the reference is warped onto each frame's pose first (model/restore/align.py)

    def __post_init__(self) -> None:
        if self.image_size % (2 * self.patch) or self.width % self.groups or min(self.blocks, self.mid_blocks) < 1:
            raise ValueError("image_size must be divisible by 2 * patch, width by groups, and blocks >= 1")
        if self.scale not in (1, 2, 4):
            raise ValueError("scale must be 1, 2 or 4")

    @property
    def output_size(self) -> int:
        return self.image_size * self.scale

    def to_dict(self) -> dict:
        return {"kind": "restore", **dataclasses.asdict(self)}

    @classmethod
    def load(cls, path: str | Path) -> RestoreConfig:
        path = Path(path)
        data = json.loads((path / "config.json" if path.is_dir() else path).read_text())
        if data.pop("kind", None) != "restore":
            raise ValueError(f"{path} is not a restorer's config")
        data.setdefault("scale", 1)
        data.setdefault("align", False)
        return cls(**data)


class _Block(nn.Module):
    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(group_norm(ch, groups), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  group_norm(ch, groups), nn.SiLU(), zero_module(nn.Conv2d(ch, ch, 3, padding=1)))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _CrossAttention(nn.Module):
    """Frame features ``[B, C, H, W]`` attend to reference features of the same shape; zero-initialised out."""

    def __init__(self, ch: int, head_channels: int, groups: int) -> None:
        super().__init__()
        self.heads = max(1, ch // head_channels)
        self.norm_q, self.norm_kv = group_norm(ch, groups), group_norm(ch, groups)
        self.q, self.kv = nn.Linear(ch, ch), nn.Linear(ch, 2 * ch)
        self.out = zero_module(nn.Linear(ch, ch))

    def forward(self, x: Tensor, ref: Tensor) -> Tensor:
        from model.diffusion.unet import merge_heads, split_heads

        b, c, h, w = x.shape
        q = split_heads(self.q(self.norm_q(x).flatten(2).transpose(1, 2)), self.heads)
        k, v = (split_heads(t, self.heads) for t in self.kv(self.norm_kv(ref).flatten(2).transpose(1, 2)).chunk(2, dim=-1))
        return x + self.out(merge_heads(F.scaled_dot_product_attention(q, k, v))).transpose(1, 2).reshape(b, c, h, w)


class RestoreNet(nn.Module):
    def __init__(self, cfg: RestoreConfig = RestoreConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        w, p, k = cfg.width, cfg.patch, cfg.scale
        ref_ch = 3 * p * p * (1 + k * k if k > 1 else 1)  # the reference at the frame's grid (+ its unshuffled detail)
        self.stem = nn.Conv2d(3 * p * p + ref_ch, w, 3, padding=1)
        self.high = nn.Sequential(*[_Block(w, cfg.groups) for _ in range(cfg.blocks)])
        self.down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([_Block(2 * w, cfg.groups) for _ in range(cfg.mid_blocks)])
        if cfg.attention:  # the reference's own features at the lower level, for the frame to attend to
            self.ref_stem = nn.Conv2d(ref_ch, w, 3, padding=1)
            self.ref_high = _Block(w, cfg.groups)
            self.ref_down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
            self.ref_mid = _Block(2 * w, cfg.groups)
            self.attend = nn.ModuleList([_CrossAttention(2 * w, cfg.head_channels, cfg.groups) for _ in range(min(2, cfg.mid_blocks))])
        self.up = nn.Conv2d(2 * w, w, 3, padding=1)
        self.out = nn.Sequential(*[_Block(w, cfg.groups) for _ in range(cfg.blocks)], group_norm(w, cfg.groups), nn.SiLU(),
                                 zero_module(nn.Conv2d(w, 3 * (p * k) ** 2, 3, padding=1)))

    def read_reference(self, reference: Tensor, size: int | None = None) -> Tensor:
        """The reference at the frame's grid (``size``: the frame's side, default ``image_size``): itself
        (restorer), or area-downsampled + unshuffled (upscaler)."""
        k, s = self.cfg.scale, size or self.cfg.image_size
        if reference.shape[-1] != s * k:
            raise ValueError(f"the reference must be {s * k}x{s * k}, got {tuple(reference.shape[-2:])}")
        if k == 1:
            return reference
        return torch.cat([F.interpolate(reference, size=(s, s), mode="area"), F.pixel_unshuffle(reference, k)], dim=1)

    def forward(self, frame: Tensor, reference: Tensor) -> Tensor:
        p, k = self.cfg.patch, self.cfg.scale
        r_in = self.read_reference(reference, frame.shape[-1])
        r = None
        if self.cfg.attention:
            r = self.ref_mid(self.ref_down(self.ref_high(self.ref_stem(F.pixel_unshuffle(r_in, p)))))
        if r_in.shape[0] == 1 and frame.shape[0] > 1:  # one reference for the batch: its features once
            r_in = r_in.expand(frame.shape[0], -1, -1, -1)
            r = r.expand(frame.shape[0], -1, -1, -1) if r is not None else None
        x = F.pixel_unshuffle(torch.cat([frame, r_in], dim=1), p)
        h = self.high(self.stem(x))
        m = self.down(h)
        for i, block in enumerate(self.mid):
            m = block(m)
            if r is not None and i < len(self.attend):  # after the first blocks: attend, then refine
                m = self.attend[i](m, r)
        h = h + self.up(F.interpolate(m, scale_factor=2, mode="nearest"))
        base = frame if k == 1 else F.interpolate(frame, scale_factor=k, mode="bicubic", align_corners=False)
        return base + F.pixel_shuffle(self.out(h), p * k)
