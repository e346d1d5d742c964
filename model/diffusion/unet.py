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

The pieces: single-tensor layers in ``layers.py``, the two-branch layers (with the audio-alone path
and the audio branch's parameters) in ``blocks.py``, the reference face's encoder in
``reference_encoder.py``; this module assembles them. Their public names stay importable from here.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.av import AV
from model.diffusion.blocks import (
    AudioSelfAttention,
    AVDownsample,
    AVResBlock,
    AVSequential,
    AVUpsample,
    CrossModalAttention,
    cat_skip,
    on_video,
)
from model.diffusion.layers import (
    AudioConv,
    ResBlock,
    VideoConv,
    conv_nd,
    group_norm,
    merge_heads,
    patch_audio,
    patch_video,
    rotate_positions,
    split_heads,
    timestep_embedding,
    unpatch_audio,
    unpatch_video,
    zero_module,
)
from model.diffusion.reference_encoder import ReferenceEncoder
from model.diffusion.unet_config import UNetConfig

__all__ = [
    # this module's
    "AVUNet", "ConditionEmbedding", "Encoder", "audio_branch_only", "reads_descriptions", "audio_only_parameters", "count_parameters",
    # re-exported from blocks.py, layers.py and reference_encoder.py, where they live
    "AVDownsample", "AVResBlock", "AVSequential", "AVUpsample", "AudioConv", "AudioSelfAttention", "CrossModalAttention",
    "ReferenceEncoder", "ResBlock", "VideoConv", "cat_skip", "conv_nd", "group_norm", "merge_heads", "on_video",
    "patch_audio", "patch_video", "rotate_positions", "split_heads", "timestep_embedding", "unpatch_audio",
    "unpatch_video", "zero_module",
]


class ConditionEmbedding(nn.Module):
    """Timestep (sinusoidal + MLP) plus, optionally, the caption's embedding -> ``[B, E]``.

    The caption is an index ``[B]`` into a learned table (the paper's two captions; 0 is the learned
    null caption, "no caption", used for unconditional generation and classifier-free guidance), or,
    for a network with ``attribute_slots``, a description vector float ``[B, slots]`` through a
    bias-free linear map (the null caption is the vector with every attribute "not said").
    """

    def __init__(self, cfg: UNetConfig, with_caption: bool = True) -> None:
        super().__init__()
        self.base = cfg.base_channels
        e = cfg.emb_channels
        self.time = nn.Sequential(nn.Linear(self.base, e), nn.SiLU(), nn.Linear(e, e))
        self.caption = nn.Embedding(cfg.num_captions, e) if with_caption and not cfg.describes else None
        self.condition = nn.Linear(cfg.attribute_slots, e, bias=False) if with_caption and cfg.describes else None

    def forward(self, t: Tensor, caption: Tensor | None = None) -> Tensor:
        emb = self.time(timestep_embedding(t, self.base))
        if self.caption is None and self.condition is None:
            return emb
        if caption is None:
            raise ValueError("this network needs a caption per sample (0 or the null vector = no caption)")
        if self.condition is not None:
            if not caption.is_floating_point() or caption.ndim != 2:
                raise ValueError("this network reads a description vector [B, slots] per sample, not a caption index")
            # in float32 as the caption table's lookup is (autocast leaves an embedding alone): a bf16
            # embedding here gave NaN gradients in a video convolution of the decoder on a CPU (oneDNN)
            with torch.autocast(caption.device.type, enabled=False):
                return emb + F.linear(caption.to(self.condition.weight.dtype), self.condition.weight)
        if caption.is_floating_point():
            raise ValueError("this network reads a caption index per sample, not a description vector")
        return emb + self.caption(caption)


def reads_descriptions(net: nn.Module) -> bool:
    """Whether a network (a U-Net, a classifier, or a wrapper around one) reads its caption as a
    description vector: a U-Net with ``attribute_slots``, or a classifier with one logit per slot."""
    for m in net.modules():
        if isinstance(m, ConditionEmbedding) and m.condition is not None:
            return True
        if getattr(m, "describes", None) is True:  # an ``AVClassifier`` with a logit per slot
            return True
    return False


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

    def forward(self, x: AV, emb: Tensor, reference: list[Tensor] | None = None,
                branches_apart: bool = False) -> tuple[AV, list[AV]]:
        """x: boundary layout -> (middle features, skips) in internal layout (``x.video`` None: the
        audio branch alone; see blocks.py). ``reference``: the ``ReferenceEncoder``'s features, added
        at the start of each level (None: the paper's network)."""
        cfg = self.cfg
        video = on_video(lambda v: self.video_in(patch_video(v, cfg.video_patch)), x.video)  # [B, C0, F, H/p, W/p]
        if cfg.position_embedding and video is not None:
            video = video + self.video_position
        h = AV(video, self.audio_in(patch_audio(x.audio, cfg.audio_patch)))  # audio [B, C0, L/pa]
        starts = {index: level for level, index in self.level_starts.items()} if reference is not None else {}
        if 0 in starts:
            h = AV(h.video + reference[0], h.audio)
        skips = [h]
        for i, block in enumerate(self.blocks):
            h = block(h, emb, branches_apart)
            if i + 1 in starts and starts[i + 1] > 0:
                h = AV(h.video + reference[starts[i + 1]], h.audio)
            skips.append(h)
        return self.middle(h, emb, branches_apart), skips

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.audio_in.parameters()
        for block in self.blocks:
            yield from block.audio_parameters()
        yield from self.middle.audio_parameters()


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
                reference_keep: Tensor | None = None, *, branches_apart: bool = False) -> AV:
        """``reference`` ``[B, 3, H, W]`` in [-1, 1]: the person every frame should show (a network
        built with ``UNetConfig.reference``; None, or ``reference_keep`` False for a sample: none,
        the paper's network). ``reference_keep`` bool ``[B]`` drops it per sample (training).

        ``x.video`` None runs the audio branch alone and returns ``AV(None, audio)`` (``forward_audio``).
        ``branches_apart``: each cross-attention reads the other branch's tokens as constants, so a
        loss on the audio output reaches no video weight and the video needs no backward (the audio
        branch trained alone, ``TrainConfig.train_branch = "audio"``); the outputs are the same.
        """
        emb = self.embed(t, caption)  # [B, E]
        features = None
        if reference is not None:
            if self.reference is None:
                raise ValueError("this network was built without a reference input (UNetConfig.reference)")
            if x.video is None:
                raise ValueError("the audio branch alone reads no reference face")
            features = self.reference(reference.to(x.video.dtype))
            if reference_keep is not None:
                keep = reference_keep.to(features[0].dtype).reshape(-1, 1, 1, 1, 1)
                features = [f * keep for f in features]
        h, skips = self.encoder(x, emb, features, branches_apart)
        for block in self.decoder:
            h = block(cat_skip(h, skips.pop()), emb, branches_apart)
        return AV(
            on_video(lambda v: unpatch_video(self.video_out(v), self.cfg.video_patch), h.video),  # [B, F, C, H, W]
            unpatch_audio(self.audio_out(h.audio), self.cfg.audio_patch),  # [B, Ca, L]
        )

    def forward_audio(self, audio: Tensor, t: Tensor, caption: Tensor) -> Tensor:
        """The audio branch alone, as if the clip had no video: ``[B, Ca, L]`` -> the audio output.

        ``forward`` with no video: every audio layer runs as there except that the cross-attention
        adds nothing (there is no video to attend to); the audio self-attention still runs. Not a
        sampling path: training uses it (``TrainConfig.audio_alone_steps``) to show the audio branch
        many more clips than the joint steps can afford on a CPU (no video branch runs, so a batch of
        many whole clips costs a fraction of a joint batch), as modality dropout: the joint steps in
        between teach it to use the video. Any audio length divisible by the audio downsampling works.
        """
        return self(AV(None, audio), t, caption).audio

    def audio_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters that shape only the audio output: the audio half of every block, the audio stem
        and head, the audio self-attention, and the audio-queries-video half of each cross-attention.
        Not the shared time/caption embedding nor anything the video output reads."""
        yield from self.encoder.audio_parameters()
        for block in self.decoder:
            yield from block.audio_parameters()
        yield from self.audio_out.parameters()


def audio_only_parameters(model: AVUNet) -> list[nn.Parameter]:
    """``model.audio_parameters()`` in ``model.parameters()`` order (the order optimizer state keeps)."""
    own = {id(p) for p in model.audio_parameters()}
    return [param for param in model.parameters() if id(param) in own]


def audio_branch_only(model: AVUNet, on: bool = True) -> list[nn.Parameter]:
    """Train the audio branch alone (``TrainConfig.train_branch = "audio"``), or undo it.

    With ``on``: every parameter outside ``model.audio_parameters()`` stops requiring gradients;
    returns the parameters left to train. The training loss then calls the network with
    ``branches_apart=True`` (``losses.diffusion_loss(branch="audio")``), so an audio loss reaches no
    video weight and a backward pass costs the audio branch only (the video branch still runs
    forward: the audio attends to it). The video output still reads the audio branch's features, so
    it can drift as they change: watch ``loss_video`` (logged, not trained).
    """
    trainable = audio_only_parameters(model) if on else list(model.parameters())
    keep = {id(p) for p in trainable}
    for param in model.parameters():
        param.requires_grad_(id(param) in keep)
    return trainable


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
