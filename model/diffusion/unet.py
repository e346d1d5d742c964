"""The double-branch U-Net of the paper (section IV-A, Fig. 3), after MM-Diffusion's coupled U-Net.

Boundary layouts (paper section V-A): video ``[B, F, C, H, W]`` in [-1, 1], audio ``[B, 1, S]`` (or,
with ``audio_features = "mel"``, a log-mel spectrogram ``[B, bins, S / hop]``; see audio_codec.py).
Inside the network video is channels-first ``[B, C, F, H, W]`` (so ``conv_nd(3, ...)`` applies) and
audio is ``[B, C, L]``; every layer takes and returns an ``AV`` in these internal layouts.

- Video residual blocks use (2+1)D convolutions: a 1x3x3 convolution per frame, then a 3x1x1
  convolution over time (Fig. 3b).
- Audio residual blocks use dilated 1-D convolutions on the (patched) waveform (Fig. 3c).
- Both use GroupNorm + Swish, and take the timestep and caption through AdaGN (Eq. 9):
  ``AdaGN(h, y) = y_s * GroupNorm(h) + y_b`` with ``[y_s, y_b]`` a linear projection of the sum of
  the timestep and caption embeddings, as in [31] (Dhariwal & Nichol), which the paper cites; the
  paper's ``y_t``/``y_c`` notation reads as scale-from-time and shift-from-caption, a special case.
- ``CrossModalAttention`` (Eq. 6-7) attends audio -> video and video -> audio.
- ``AudioSelfAttention`` (not in the paper, off unless ``audio_self_attention``) lets the audio
  branch see its whole chunk; see the class for why.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.av import AV
from model.diffusion.config import UNetConfig


# -- shared building blocks ------------------------------------------------------------------------
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


class AVResBlock(nn.Module):
    """One video (2+1)D residual block and one dilated audio residual block, side by side."""

    def __init__(self, cin: int, cout: int, cfg: UNetConfig, dilation: int) -> None:
        super().__init__()
        e, g = cfg.emb_channels, cfg.norm_groups
        self.video = ResBlock(cin, cout, e, VideoConv, 3, g, cfg.dropout)
        self.audio = ResBlock(cin, cout, e, lambda i, o: AudioConv(i, o, dilation), 1, g, cfg.dropout)

    def forward(self, x: AV, emb: Tensor) -> AV:
        return AV(self.video(x.video, emb), self.audio(x.audio, emb))

    def forward_audio(self, a: Tensor, emb: Tensor) -> Tensor:
        return self.audio(a, emb)


class AVDownsample(nn.Module):
    """Video: H, W halved by a strided 1x3x3 conv (frames kept). Audio: length / ``stride``."""

    def __init__(self, channels: int, audio_stride: int) -> None:
        super().__init__()
        self.video = conv_nd(3, channels, channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        s = audio_stride
        self.audio = nn.Identity() if s == 1 else conv_nd(1, channels, channels, 2 * s, stride=s, padding=s // 2)

    def forward(self, x: AV, emb: Tensor | None = None) -> AV:
        return AV(self.video(x.video), self.audio(x.audio))

    def forward_audio(self, a: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.audio(a)


class AVUpsample(nn.Module):
    """Nearest upsampling (video H, W x2; audio x ``stride``), then a convolution."""

    def __init__(self, channels: int, audio_stride: int) -> None:
        super().__init__()
        self.stride = audio_stride
        self.video = conv_nd(3, channels, channels, (1, 3, 3), padding=(0, 1, 1))
        self.audio = conv_nd(1, channels, channels, 3, padding=1)

    def forward(self, x: AV, emb: Tensor | None = None) -> AV:
        video = F.interpolate(x.video, scale_factor=(1, 2, 2), mode="nearest")
        return AV(self.video(video), self.forward_audio(x.audio))

    def forward_audio(self, a: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.audio(F.interpolate(a, scale_factor=self.stride, mode="nearest") if self.stride > 1 else a)


class CrossModalAttention(nn.Module):
    """Cross-attention between the branches in both directions (Eq. 6-7), local in time.

    Tokens: each frame's features are pooled to a ``grid`` x ``grid`` spatial grid (``grid**2``
    video tokens per frame) and the audio is pooled to ``audio_tokens`` tokens per frame. Video
    tokens of frame f attend to the audio tokens of frames f-w..f+w, and audio tokens of frame f to
    the video tokens of the same window (frame indices clamped at the clip's ends). This follows
    MM-Diffusion's idea (video frames <-> aligned audio windows) at a cost that does not grow with
    the resolution: the attention outputs are projected (zero-initialised, so a new block starts
    as the identity), upsampled back by nearest neighbour and added to each branch.

    video ``[B, C, F, H, W]``, audio ``[B, C, L]`` -> same shapes.
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
        # True while the audio branch trains alone (``audio_branch_only``): each branch reads the other
        # as a constant, so the audio loss reaches no video weight and the video needs no backward.
        self.branches_apart = False

    def forward(self, x: AV, emb: Tensor | None = None) -> AV:
        if self.audio_self is not None:
            x = AV(x.video, self.audio_self(x.audio))
        v, a = x.video, x.audio
        b, c, f, h, w = v.shape
        g = min(self.grid, h, w)
        n = self.audio_tokens
        v_tok = F.adaptive_avg_pool3d(self.norm_video(v), (f, g, g))  # [B, C, F, g, g]
        v_tok = v_tok.flatten(3).permute(0, 2, 3, 1)  # [B, F, g*g, C]
        a_tok = F.adaptive_avg_pool1d(self.norm_audio(a), f * n)  # [B, C, F*n]
        a_tok = a_tok.reshape(b, c, f, n).permute(0, 2, 3, 1)  # [B, F, n, C]

        a_seen, v_seen = (a_tok.detach(), v_tok.detach()) if self.branches_apart else (a_tok, v_tok)
        v_out = self._attend(self.q_video(v_tok), self.kv_audio(self._window(a_seen)))  # [B, F, g*g, C]
        a_out = self._attend(self.q_audio(a_tok), self.kv_video(self._window(v_seen)))  # [B, F, n, C]

        v_out = self.out_video(v_out).permute(0, 3, 1, 2).reshape(b, c, f, g, g)
        a_out = self.out_audio(a_out).permute(0, 3, 1, 2).reshape(b, c, f * n)
        v_up = F.interpolate(v_out, size=(f, h, w), mode="nearest")
        a_up = F.interpolate(a_out, size=a.shape[-1], mode="nearest")
        return AV(v + v_up, a + a_up)

    def forward_audio(self, a: Tensor, emb: Tensor | None = None) -> Tensor:
        """The audio with no video to attend to (``AVUNet.forward_audio``): its self-attention only."""
        return self.audio_self(a) if self.audio_self is not None else a

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
    """Layers called in turn as ``layer(x: AV, emb) -> AV``."""

    def forward_audio(self, a: Tensor, emb: Tensor) -> Tensor:
        for layer in self:
            a = layer.forward_audio(a, emb)
        return a

    def forward(self, x: AV, emb: Tensor) -> AV:
        for layer in self:
            x = layer(x, emb)
        return x


class ConditionEmbedding(nn.Module):
    """Timestep (sinusoidal + MLP) plus, optionally, a learned caption embedding: ``[B]`` -> ``[B, E]``.

    Caption 0 is the learned null caption ("no caption"), used for unconditional generation and
    classifier-free guidance.
    """

    def __init__(self, cfg: UNetConfig, with_caption: bool = True) -> None:
        super().__init__()
        self.base = cfg.base_channels
        e = cfg.emb_channels
        self.time = nn.Sequential(nn.Linear(self.base, e), nn.SiLU(), nn.Linear(e, e))
        self.caption = nn.Embedding(cfg.num_captions, e) if with_caption else None

    def forward(self, t: Tensor, caption: Tensor | None = None) -> Tensor:
        emb = self.time(timestep_embedding(t, self.base))
        if self.caption is not None:
            if caption is None:
                raise ValueError("this network needs a caption index per sample (0 = no caption)")
            emb = emb + self.caption(caption)
        return emb


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


class ReferenceEncoder(nn.Module):
    """The call's reference face -> one feature map per U-Net level, added to every frame (not in the paper).

    reference ``[B, 3, H, W]`` in [-1, 1] -> one ``[B, C, 1, H_l, W_l]`` per level l: the same
    pixel-unshuffle stem as the video, a 3x3 convolution, then per level a stride-2 convolution
    (from level 1 on) and a zero-initialised 1x1 projection to the width of the video features
    where that level starts. So a network
    with a new encoder computes exactly what it did before, and learns to copy the person from the
    reference (MuseTalk and LatentSync condition on a reference image the same way: as input
    features of the video, not through the caption). Costs one 2-D pass per clip, not per frame.
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.patch = cfg.video_patch
        ch = cfg.channels(0)
        self.stem = nn.Conv2d(cfg.video_channels * cfg.video_patch**2, ch, 3, padding=1)
        self.down = nn.ModuleList()
        self.project = nn.ModuleList()
        for level in range(cfg.levels):
            out = cfg.channels(level)
            self.down.append(nn.Identity() if level == 0 else nn.Conv2d(ch, out, 3, stride=2, padding=1))
            # added where the level starts: after the stem, or after the downsample, which keeps the
            # width of the level above
            self.project.append(zero_module(nn.Conv2d(out, cfg.channels(max(level - 1, 0)), 1)))
            ch = out

    def forward(self, reference: Tensor) -> list[Tensor]:
        h = self.stem(F.pixel_unshuffle(reference, self.patch) if self.patch > 1 else reference)
        features = []
        for level, (down, project) in enumerate(zip(self.down, self.project)):
            h = down(F.silu(h)) if level else h
            features.append(project(h)[:, :, None])  # [B, C_l, 1, H_l, W_l]: broadcast over frames
        return features


# -- the network -------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """Stems, down levels and middle of the U-Net; also the classifier's trunk.

    ``forward`` returns the middle features and the skip features of every input block.
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels(0)
        vin = cfg.video_channels * cfg.video_patch**2
        self.video_in = conv_nd(3, vin, ch, (1, 3, 3), padding=(0, 1, 1))
        self.audio_in = conv_nd(1, cfg.audio_channels * cfg.audio_patch, ch, 3, padding=1)
        if cfg.position_embedding:  # a learned bias per pixel position, zero at the start (see UNetConfig)
            side = cfg.image_size // cfg.video_patch
            self.video_position = nn.Parameter(torch.zeros(1, ch, 1, side, side))
        self.blocks = nn.ModuleList()
        self.skip_channels = [ch]
        self.level_starts = {0: 0}  # block index where each level's features start (after its downsample)
        for level in range(cfg.levels):
            out = cfg.channels(level)
            for i in range(cfg.num_res_blocks):
                layers = [AVResBlock(ch, out, cfg, cfg.audio_dilations[i % len(cfg.audio_dilations)])]
                ch = out
                if level in cfg.attention_levels:
                    layers.append(CrossModalAttention(ch, cfg))
                self.blocks.append(AVSequential(layers))
                self.skip_channels.append(ch)
            if level < cfg.levels - 1:
                self.blocks.append(AVSequential([AVDownsample(ch, cfg.audio_down[level])]))
                self.skip_channels.append(ch)
                self.level_starts[level + 1] = len(self.blocks)
        self.middle = AVSequential(
            [AVResBlock(ch, ch, cfg, 1), CrossModalAttention(ch, cfg), AVResBlock(ch, ch, cfg, 1)]
        )
        self.out_channels = ch

    def forward(self, x: AV, emb: Tensor, reference: list[Tensor] | None = None) -> tuple[AV, list[AV]]:
        """x: boundary layout -> (middle features, skips) in internal layout. ``reference``: the
        ``ReferenceEncoder``'s features, added at the start of each level (None: the paper's network)."""
        cfg = self.cfg
        h = AV(
            self.video_in(patch_video(x.video, cfg.video_patch)),  # [B, C0, F, H/p, W/p]
            self.audio_in(patch_audio(x.audio, cfg.audio_patch)),  # [B, C0, L/pa]
        )
        if cfg.position_embedding:
            h = AV(h.video + self.video_position, h.audio)
        starts = {index: level for level, index in self.level_starts.items()} if reference is not None else {}
        if 0 in starts:
            h = AV(h.video + reference[0], h.audio)
        skips = [h]
        for i, block in enumerate(self.blocks):
            h = block(h, emb)
            if i + 1 in starts and starts[i + 1] > 0:
                h = AV(h.video + reference[starts[i + 1]], h.audio)
            skips.append(h)
        return self.middle(h, emb), skips

    def forward_audio(self, audio: Tensor, emb: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The audio half of ``forward`` with no video (``AVUNet.forward_audio``)."""
        h = self.audio_in(patch_audio(audio, self.cfg.audio_patch))
        skips = [h]
        for block in self.blocks:
            h = block.forward_audio(h, emb)
            skips.append(h)
        return self.middle.forward_audio(h, emb), skips


class AVUNet(nn.Module):
    """eps_theta(x_t, t, caption): predicts the noise of both modalities (Eq. 5).

    x: ``AV(video [B, F, C, H, W], audio [B, 1, S])``, t: long ``[B]`` in [0, T),
    caption: long ``[B]`` (0 = null caption) -> eps with x's shapes.
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = ConditionEmbedding(cfg, with_caption=True)
        self.encoder = Encoder(cfg)
        self.reference = ReferenceEncoder(cfg) if cfg.reference else None
        skips = list(self.encoder.skip_channels)
        ch = self.encoder.out_channels
        self.decoder = nn.ModuleList()
        for level in reversed(range(cfg.levels)):
            out = cfg.channels(level)
            for i in range(cfg.num_res_blocks + 1):
                dilation = cfg.audio_dilations[i % len(cfg.audio_dilations)]
                layers: list[nn.Module] = [AVResBlock(ch + skips.pop(), out, cfg, dilation)]
                ch = out
                if level in cfg.attention_levels:
                    layers.append(CrossModalAttention(ch, cfg))
                if level > 0 and i == cfg.num_res_blocks:
                    layers.append(AVUpsample(ch, cfg.audio_down[level - 1]))
                self.decoder.append(AVSequential(layers))
        g = cfg.norm_groups
        self.video_out = nn.Sequential(
            group_norm(ch, g), nn.SiLU(),
            zero_module(conv_nd(3, ch, cfg.video_channels * cfg.video_patch**2, (1, 3, 3), padding=(0, 1, 1))),
        )
        self.audio_out = nn.Sequential(
            group_norm(ch, g), nn.SiLU(), zero_module(conv_nd(1, ch, cfg.audio_channels * cfg.audio_patch, 3, padding=1))
        )

    def forward(self, x: AV, t: Tensor, caption: Tensor, reference: Tensor | None = None,
                reference_keep: Tensor | None = None) -> AV:
        """``reference`` ``[B, 3, H, W]`` in [-1, 1]: the person every frame should show (a network
        built with ``UNetConfig.reference``; None, or ``reference_keep`` False for a sample: none,
        the paper's network). ``reference_keep`` bool ``[B]`` drops it per sample (training)."""
        emb = self.embed(t, caption)  # [B, E]
        features = None
        if reference is not None:
            if self.reference is None:
                raise ValueError("this network was built without a reference input (UNetConfig.reference)")
            features = self.reference(reference.to(x.video.dtype))
            if reference_keep is not None:
                keep = reference_keep.to(features[0].dtype).reshape(-1, 1, 1, 1, 1)
                features = [f * keep for f in features]
        h, skips = self.encoder(x, emb, features)
        for block in self.decoder:
            h = block(h.cat(skips.pop(), dim=1), emb)
        return AV(
            unpatch_video(self.video_out(h.video), self.cfg.video_patch),  # [B, F, C, H, W]
            unpatch_audio(self.audio_out(h.audio), self.cfg.audio_patch),  # [B, Ca, L]
        )

    def forward_audio(self, audio: Tensor, t: Tensor, caption: Tensor) -> Tensor:
        """The audio branch alone, as if the clip had no video: ``[B, Ca, L]`` -> the audio output.

        Every audio layer runs as in ``forward`` except that the cross-attention adds nothing (there
        is no video to attend to); the audio self-attention still runs. Not a sampling path: training
        uses it (``TrainConfig.audio_alone_steps``) to show the audio branch many more clips than the
        joint steps can afford on a CPU (no video branch runs, so a batch of many whole clips costs
        a fraction of a joint batch), as modality dropout: the joint steps in between teach it to
        use the video. Any audio length divisible by the audio downsampling works.
        """
        emb = self.embed(t, caption)
        h, skips = self.encoder.forward_audio(audio, emb)
        for block in self.decoder:
            h = block.forward_audio(torch.cat([h, skips.pop()], dim=1), emb)
        return unpatch_audio(self.audio_out(h), self.cfg.audio_patch)


# Parameters that shape only the audio output: the audio half of every block, the audio stem and
# head, the audio self-attention, and the audio-queries-video half of each cross-attention (its
# query, the keys/values it projects from video tokens, its output). Not the shared time/caption
# embedding nor anything the video output reads (``kv_audio``, ``norm_audio``).
_AUDIO_ONLY = re.compile(r"(^|\.)(audio|audio_in|audio_out|audio_self|q_audio|kv_video|out_audio)\.")


def audio_only_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters ``_AUDIO_ONLY`` names, in ``model.parameters()`` order."""
    return [param for name, param in model.named_parameters() if _AUDIO_ONLY.search(name)]


def audio_branch_only(model: nn.Module, on: bool = True) -> list[nn.Parameter]:
    """Train the audio branch alone (``TrainConfig.train_branch = "audio"``), or undo it.

    With ``on``: every parameter outside ``_AUDIO_ONLY`` stops requiring gradients and each
    cross-attention reads the other branch's tokens as constants, so a loss on the audio output
    reaches no video weight and a backward pass costs the audio branch only (the video branch still
    runs forward: the audio attends to it). The video output still reads the audio branch's
    features, so it can drift as they change: watch ``loss_video`` (logged, not trained).
    Returns the parameters left to train.
    """
    for module in model.modules():
        if isinstance(module, CrossModalAttention):
            module.branches_apart = on
    trainable = audio_only_parameters(model) if on else list(model.parameters())
    keep = {id(p) for p in trainable}
    for param in model.parameters():
        param.requires_grad_(id(param) in keep)
    return trainable


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
