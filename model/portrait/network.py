"""The portrait network: a 2-D U-Net built from the joint model's own blocks (``ResBlock`` with
AdaGN, Eq. 9), with self-attention at the coarse levels so the two halves of a face agree.

image ``[B, 3, S, S]`` in [-1, 1], t long ``[B]``, caption long ``[B]`` (0 = null) or, for a model
with ``attribute_slots``, a description vector float ``[B, slots]`` (all blocks at "not said" = null)
-> ``[B, 3, S, S]`` (eps or v, as ``PortraitConfig.prediction`` says). The vector enters AdaGN
through one linear map, as the caption index enters through its embedding table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.unet import ResBlock, group_norm, merge_heads, split_heads, timestep_embedding, zero_module
from model.portrait.config import PortraitConfig


def _conv(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, 3, padding=1)


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the positions of ``[B, C, H, W]``, zero-initialised output."""

    def __init__(self, channels: int, head_channels: int, groups: int) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(tokens).chunk(3, dim=-1))
        out = self.out(merge_heads(F.scaled_dot_product_attention(q, k, v)))  # [B, HW, C]
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class _Down(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.conv(x)


class _Up(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _conv(channels, channels)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Seq(nn.ModuleList):
    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        for layer in self:
            x = layer(x, emb)
        return x


class PortraitUNet(nn.Module):
    def __init__(self, cfg: PortraitConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, g = cfg.emb_channels, cfg.norm_groups
        self.time = nn.Sequential(nn.Linear(cfg.base_channels, e), nn.SiLU(), nn.Linear(e, e))
        if cfg.describes:
            self.condition = nn.Linear(cfg.attribute_slots, e, bias=False)
        else:
            self.caption = nn.Embedding(len(cfg.captions), e)

        def res(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, cout, e, _conv, 2, g, cfg.dropout)

        def attn(ch: int) -> SelfAttention2d:
            return SelfAttention2d(ch, cfg.head_channels, g)

        ch = cfg.channels(0)
        self.stem = nn.Conv2d(3 * cfg.patch**2, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        levels = len(cfg.channel_mult)
        for level in range(levels):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [res(ch, cfg.channels(level))]
                ch = cfg.channels(level)
                if level in cfg.attention_levels:
                    layers.append(attn(ch))
                self.down.append(_Seq(layers))
                skips.append(ch)
            if level < levels - 1:
                self.down.append(_Seq([_Down(ch)]))
                skips.append(ch)
        self.middle = _Seq([res(ch, ch), attn(ch), res(ch, ch)])
        self.up = nn.ModuleList()
        for level in reversed(range(levels)):
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skips.pop(), cfg.channels(level))]
                ch = cfg.channels(level)
                if level in cfg.attention_levels:
                    layers.append(attn(ch))
                if level > 0 and i == cfg.num_res_blocks:
                    layers.append(_Up(ch))
                self.up.append(_Seq(layers))
        self.head = nn.Sequential(group_norm(ch, g), nn.SiLU(), zero_module(nn.Conv2d(ch, 3 * cfg.patch**2, 3, padding=1)))

    def forward(self, x: Tensor, t: Tensor, caption: Tensor) -> Tensor:
        cfg = self.cfg
        cond = self.condition(caption.to(self.condition.weight.dtype)) if cfg.describes else self.caption(caption)
        emb = self.time(timestep_embedding(t, cfg.base_channels)) + cond  # [B, E]
        h = self.stem(F.pixel_unshuffle(x, cfg.patch) if cfg.patch > 1 else x)  # [B, C0, S/p, S/p]
        skips = [h]
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        out = self.head(h)
        return F.pixel_shuffle(out, cfg.patch) if cfg.patch > 1 else out


def describing_from_caption_model(state: dict[str, Tensor], config: PortraitConfig) -> tuple[dict[str, Tensor], PortraitConfig]:
    """A caption-index model's weights -> a description-vector model that draws exactly what it drew.

    The linear map's columns for the gender block's slots (not said, male, female) are the caption
    table's rows (null, man, woman); every other column starts at zero, so until it is trained the
    new model ignores the other attributes and equals the old one on every gender caption."""
    import dataclasses

    from model.describe.attributes import SLOTS
    from model.describe.conditioning import condition_from_caption_table

    if config.describes:
        raise ValueError("these weights already read a description vector")
    out = {k: v for k, v in state.items() if k != "caption.weight"}
    out["condition.weight"] = condition_from_caption_table(state["caption.weight"], config.caption_index)
    return out, dataclasses.replace(config, attribute_slots=SLOTS)
