"""The two-branch layers of the U-Net: each maps ``AV -> AV`` in the network's internal layouts.

Internal layouts: video ``[B, C, F, H, W]``, audio ``[B, C, L]``. Every ``AV`` layer here is called
as ``layer(x, emb, branches_apart=False)`` (``emb`` ``[B, E]``: the time + caption embedding) and has
one forward for every use:

- ``x.video`` is None: the audio branch alone, as if the clip had no video (``AVUNet.forward_audio``;
  the cross-attention then adds nothing to the audio, its self-attention still runs);
- ``branches_apart``: each cross-attention reads the other branch's tokens as constants, so a loss
  on the audio output reaches no video weight (the audio branch trained alone; layers without a
  cross-attention ignore it).

And every ``AV`` layer names its own audio branch: ``audio_parameters()`` yields the parameters that shape
only its audio output (the audio half of a block, the audio-queries-video half of a cross-attention),
so the U-Net collects its audio branch from its structure, not from parameter names.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.av import AV
from model.diffusion.layers import (
    AudioConv,
    ResBlock,
    VideoConv,
    conv_nd,
    group_norm,
    merge_heads,
    rotate_positions,
    split_heads,
    zero_module,
)
from model.diffusion.unet_config import UNetConfig


def on_video(fn: Callable[..., Tensor], video: Tensor | None, *args) -> Tensor | None:
    """``fn(video, *args)``, or None where there is no video (the audio branch alone)."""
    return None if video is None else fn(video, *args)


def cat_skip(x: AV, skip: AV) -> AV:
    """A decoder block's input: ``x`` and the encoder's skip features side by side on the channels."""
    return AV(on_video(lambda v: torch.cat([v, skip.video], dim=1), x.video), torch.cat([x.audio, skip.audio], dim=1))


class AVResBlock(nn.Module):
    """One video (2+1)D residual block and one dilated audio residual block, side by side."""

    def __init__(self, cin: int, cout: int, cfg: UNetConfig, dilation: int) -> None:
        super().__init__()
        e, g = cfg.emb_channels, cfg.norm_groups
        self.video = ResBlock(cin, cout, e, VideoConv, 3, g, cfg.dropout)
        self.audio = ResBlock(cin, cout, e, lambda i, o: AudioConv(i, o, dilation), 1, g, cfg.dropout)

    def forward(self, x: AV, emb: Tensor, branches_apart: bool = False) -> AV:
        return AV(on_video(self.video, x.video, emb), self.audio(x.audio, emb))

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        return self.audio.parameters()


class AVDownsample(nn.Module):
    """Video: H, W halved by a strided 1x3x3 conv (frames kept). Audio: length / ``stride``."""

    def __init__(self, channels: int, audio_stride: int) -> None:
        super().__init__()
        self.video = conv_nd(3, channels, channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        s = audio_stride
        self.audio = nn.Identity() if s == 1 else conv_nd(1, channels, channels, 2 * s, stride=s, padding=s // 2)

    def forward(self, x: AV, emb: Tensor | None = None, branches_apart: bool = False) -> AV:
        return AV(on_video(self.video, x.video), self.audio(x.audio))

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        return self.audio.parameters()


class AVUpsample(nn.Module):
    """Nearest upsampling (video H, W x2; audio x ``stride``), then a convolution."""

    def __init__(self, channels: int, audio_stride: int) -> None:
        super().__init__()
        self.stride = audio_stride
        self.video = conv_nd(3, channels, channels, (1, 3, 3), padding=(0, 1, 1))
        self.audio = conv_nd(1, channels, channels, 3, padding=1)

    def forward(self, x: AV, emb: Tensor | None = None, branches_apart: bool = False) -> AV:
        video = on_video(lambda v: self.video(F.interpolate(v, scale_factor=(1, 2, 2), mode="nearest")), x.video)
        audio = F.interpolate(x.audio, scale_factor=self.stride, mode="nearest") if self.stride > 1 else x.audio
        return AV(video, self.audio(audio))

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        return self.audio.parameters()


class CrossModalAttention(nn.Module):
    """Cross-attention between the branches in both directions (Eq. 6-7), local in time.

    Tokens: each frame's features are pooled to a ``grid`` x ``grid`` spatial grid (``grid**2``
    video tokens per frame) and the audio is pooled to ``audio_tokens`` tokens per frame. Video
    tokens of frame f attend to the audio tokens of frames f-w..f+w, and audio tokens of frame f to
    the video tokens of the same window (frame indices clamped at the clip's ends). This follows
    MM-Diffusion's idea (video frames <-> aligned audio windows) at a cost that does not grow with
    the resolution: the attention outputs are projected (zero-initialised, so a new block starts
    as the identity), upsampled back by nearest neighbour and added to each branch.

    video ``[B, C, F, H, W]``, audio ``[B, C, L]`` -> same shapes. With no video (``x.video`` None)
    only the audio self-attention runs. ``branches_apart``: each branch reads the other's tokens as
    constants, so the audio loss reaches no video weight and the video needs no backward.
    """

    def __init__(self, channels: int, cfg: UNetConfig) -> None:
        super().__init__()
        self.heads = cfg.heads(channels)
        self.grid, self.audio_tokens, self.window = cfg.cross_grid, cfg.cross_audio_tokens, cfg.cross_window
        self.norm_video = group_norm(channels, cfg.norm_groups)
        self.norm_audio = group_norm(channels, cfg.norm_groups)
        self.q_video = nn.Linear(channels, channels)  # video queries audio: A(v_t, a_t)
        self.kv_audio = nn.Linear(channels, 2 * channels)
        self.out_video = zero_module(nn.Linear(channels, channels))
        self.q_audio = nn.Linear(channels, channels)  # audio queries video: A(a_t, v_t), Eq. 6
        self.kv_video = nn.Linear(channels, 2 * channels)  # K_v = linear(flatten(v_t)), Eq. 7
        self.out_audio = zero_module(nn.Linear(channels, channels))
        self.audio_self = AudioSelfAttention(channels, cfg) if cfg.audio_self_attention else None

    def forward(self, x: AV, emb: Tensor | None = None, branches_apart: bool = False) -> AV:
        a = x.audio if self.audio_self is None else self.audio_self(x.audio)
        if x.video is None:  # nothing to attend to
            return AV(None, a)
        v = x.video
        b, c, f, h, w = v.shape
        g = min(self.grid, h, w)
        n = self.audio_tokens
        v_tok = F.adaptive_avg_pool3d(self.norm_video(v), (f, g, g))  # [B, C, F, g, g]
        v_tok = v_tok.flatten(3).permute(0, 2, 3, 1)  # [B, F, g*g, C]
        a_tok = F.adaptive_avg_pool1d(self.norm_audio(a), f * n)  # [B, C, F*n]
        a_tok = a_tok.reshape(b, c, f, n).permute(0, 2, 3, 1)  # [B, F, n, C]

        a_seen, v_seen = (a_tok.detach(), v_tok.detach()) if branches_apart else (a_tok, v_tok)
        v_out = self._attend(self.q_video(v_tok), self.kv_audio(self._window(a_seen)))  # [B, F, g*g, C]
        a_out = self._attend(self.q_audio(a_tok), self.kv_video(self._window(v_seen)))  # [B, F, n, C]

        v_out = self.out_video(v_out).permute(0, 3, 1, 2).reshape(b, c, f, g, g)
        a_out = self.out_audio(a_out).permute(0, 3, 1, 2).reshape(b, c, f * n)
        v_up = F.interpolate(v_out, size=(f, h, w), mode="nearest")
        a_up = F.interpolate(a_out, size=a.shape[-1], mode="nearest")
        return AV(v + v_up, a + a_up)

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        """The audio self-attention and the audio-queries-video half (its query, the keys/values it
        projects from video tokens, its output); not ``norm_audio`` / ``kv_audio``, which the video reads."""
        for module in (self.q_audio, self.kv_video, self.out_audio, self.audio_self):
            if module is not None:
                yield from module.parameters()

    def _window(self, tokens: Tensor) -> Tensor:
        """``[B, F, N, C]`` -> ``[B, F, (2w+1)*N, C]``: each frame with its +-w neighbours."""
        f = tokens.shape[1]
        offsets = torch.arange(-self.window, self.window + 1, device=tokens.device)
        idx = (torch.arange(f, device=tokens.device)[:, None] + offsets[None]).clamp(0, f - 1)  # [F, 2w+1]
        return tokens[:, idx].flatten(2, 3)

    def _attend(self, q: Tensor, kv: Tensor) -> Tensor:
        """q ``[B, F, Nq, C]``, kv ``[B, F, Nk, 2C]`` -> ``[B, F, Nq, C]``; softmax(QK^T/sqrt(d)) V."""
        q, k, v = (split_heads(x, self.heads) for x in (q, *kv.chunk(2, dim=-1)))  # [B, F, heads, N, C/heads]
        return merge_heads(F.scaled_dot_product_attention(q, k, v))


class AudioSelfAttention(nn.Module):
    """Self-attention over the audio positions of a whole chunk, with rotary positions (not in the paper).

    Why: the audio branch of the paper sees the waveform through dilated convolutions only, and the
    cross-attention looks +-``cross_window`` frames away. In the shipped ``small`` weights the
    gradient of one audio output position falls below 1 % of its peak within about +-35 ms of the input,
    far shorter than the syllable rhythm (2-8 Hz, 125-500 ms) that makes a loudness envelope
    speech-like, and audio generated without speech text comes out as bursts with no rhythm. This
    block is zero-initialised (a new block starts as the identity, so existing weights fine-tune
    from where they are), runs where the cross-attention runs (the lower levels and the middle:
    400 and 200 positions in ``small``), and costs little next to the video branch.

    ``[B, C, L]`` -> same shape.
    """

    def __init__(self, channels: int, cfg: UNetConfig) -> None:
        super().__init__()
        self.heads = cfg.heads(channels)
        self.norm = group_norm(channels, cfg.norm_groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, a: Tensor) -> Tensor:
        qkv = self.qkv(self.norm(a).transpose(1, 2))  # [B, L, 3C]
        q, k, v = (split_heads(x, self.heads) for x in qkv.chunk(3, dim=-1))  # [B, heads, L, C/heads]
        out = F.scaled_dot_product_attention(rotate_positions(q), rotate_positions(k), v)
        return a + self.out(merge_heads(out)).transpose(1, 2)


class AVSequential(nn.ModuleList):
    """Layers called in turn as ``layer(x: AV, emb, branches_apart) -> AV``."""

    def forward(self, x: AV, emb: Tensor, branches_apart: bool = False) -> AV:
        for layer in self:
            x = layer(x, emb, branches_apart)
        return x

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        for layer in self:
            yield from layer.audio_parameters()
