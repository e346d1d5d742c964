"""``UNetConfig``: the shape and widths of the double-branch U-Net; part of ``DiffusionConfig`` (config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from model.diffusion.captions import DEFAULT_CAPTIONS

AUDIO_FEATURES = ("wave", "mel")


@dataclass(frozen=True)
class UNetConfig:
    """Shape and widths of the double-branch U-Net (and of the classifier's encoder).

    Levels: level ``l`` has ``base_channels * channel_mult[l]`` channels in both branches; between
    levels video halves H and W (frames are kept) and audio is divided by ``audio_down[l]``.
    Cross-modal attention runs after each residual block of the levels in ``attention_levels``
    and in the middle; it attends between ``cross_grid`` x ``cross_grid`` pooled spatial tokens per
    frame and ``cross_audio_tokens`` pooled audio tokens per frame, within +-``cross_window`` frames.
    """

    frames: int = 16
    image_size: int = 64
    video_channels: int = 3
    audio_samples: int = 16_000
    video_patch: int = 1
    audio_patch: int = 1
    base_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 2
    audio_down: tuple[int, ...] = (4, 4, 4)
    audio_dilations: tuple[int, ...] = (1, 2, 4, 8)
    attention_levels: tuple[int, ...] = (1, 2, 3)
    head_channels: int = 64
    cross_grid: int = 4
    cross_audio_tokens: int = 8
    cross_window: int = 1
    norm_groups: int = 32
    dropout: float = 0.0
    num_captions: int = len(DEFAULT_CAPTIONS)
    # 0: the caption is an index into the fixed captions (the paper's AdaGN caption embedding).
    # > 0: it is a description vector of this many slots (``model.describe.attributes``; free-form
    # captions, not in the paper) read through one bias-free linear map; the null caption is the vector
    # with every attribute "not said". ``describing_from_caption_model`` converts trained weights exactly.
    attribute_slots: int = 0
    # A learned bias per video position after the stem (not in the paper). At high noise the input
    # carries no layout, and a shallow U-Net learns where things are only from its zero padding:
    # the `small` network's x0 estimate at t = T - 1 was one flat colour, not the corpus's mean
    # face, so every sample started from no face at all. The deep `paper` U-Net does without it.
    position_embedding: bool = False
    # Self-attention over the whole chunk's audio wherever the cross-attention runs (not in the
    # paper; model/diffusion/blocks.py AudioSelfAttention says why). Off keeps the paper's audio branch.
    audio_self_attention: bool = False
    # What the audio branch diffuses (model/diffusion/audio_codec.py): "wave", the paper's waveform
    # [1, audio_samples], or "mel" (not in the paper), a log-mel spectrogram [mel_bins,
    # audio_samples / mel_hop] turned back into a waveform by Griffin-Lim; the module says why.
    audio_features: str = "wave"
    # The video branch also reads a reference image of the person (a call's face; not in the paper):
    # ``AVUNet.forward(..., reference=[B, 3, H, W])``, encoded once per clip and added to the video
    # features at every level (``ReferenceEncoder``, zero-initialised, so trained weights fine-tune
    # into it from where they are). Without a reference the network is the paper's, exactly.
    reference: bool = False
    mel_bins: int = 64
    mel_hop: int = 250
    mel_fft: int = 1024

    def __post_init__(self) -> None:
        if self.audio_features not in AUDIO_FEATURES:
            raise ValueError(f"audio_features must be one of {AUDIO_FEATURES}, got {self.audio_features!r}")
        if self.audio_features == "mel" and (self.audio_samples % self.mel_hop or self.mel_fft < self.mel_hop):
            raise ValueError(f"mel_hop {self.mel_hop} must divide audio_samples and be at most mel_fft")
        levels = len(self.channel_mult)
        if levels < 1 or self.num_res_blocks < 1:
            raise ValueError("need at least one level and one residual block per level")
        if len(self.audio_down) != levels - 1:
            raise ValueError(f"audio_down needs {levels - 1} strides (one per level change)")
        if any(s < 1 or (s > 1 and s % 2) for s in self.audio_down):
            raise ValueError("audio strides must be 1 or even")
        if any(not 0 <= lvl < levels for lvl in self.attention_levels):
            raise ValueError(f"attention_levels must lie in [0, {levels})")
        size = self.image_size
        if size % self.video_patch:
            raise ValueError("image_size must be divisible by video_patch")
        size //= self.video_patch
        if size % (2 ** (levels - 1)):
            raise ValueError(f"image size {size} after the patch cannot be halved {levels - 1} times")
        length = self.audio_length
        if length % self.audio_patch:
            raise ValueError(f"the audio branch's length {length} must be divisible by audio_patch")
        length //= self.audio_patch
        for stride in self.audio_down:
            if length % stride:
                raise ValueError(f"audio length {length} is not divisible by stride {stride}")
            length //= stride
        for mult in self.channel_mult:
            ch = self.base_channels * mult
            if ch % self.norm_groups:
                raise ValueError(f"{ch} channels do not split into {self.norm_groups} groups")
            if ch % self.head_channels and ch > self.head_channels:
                raise ValueError(f"{ch} channels do not split into heads of {self.head_channels}")
            if self.audio_self_attention and (ch // self.heads(ch)) % 2:
                raise ValueError(f"audio self-attention needs even head widths; {ch} channels give odd ones")
        if self.num_captions < 1:
            raise ValueError("num_captions must be >= 1 (index 0 is the null caption)")
        if self.attribute_slots < 0:
            raise ValueError("attribute_slots must be >= 0 (0 = caption indices)")

    @property
    def describes(self) -> bool:
        """Conditioned on a description vector (free-form captions) rather than a caption index."""
        return self.attribute_slots > 0

    @property
    def audio_channels(self) -> int:
        """Channels of the network's audio tensor (before ``audio_patch``)."""
        return 1 if self.audio_features == "wave" else self.mel_bins

    @property
    def audio_length(self) -> int:
        """Positions of the network's audio tensor (before ``audio_patch``): samples or mel frames."""
        return self.audio_samples if self.audio_features == "wave" else self.audio_samples // self.mel_hop

    @property
    def levels(self) -> int:
        return len(self.channel_mult)

    def channels(self, level: int) -> int:
        return self.base_channels * self.channel_mult[level]

    def heads(self, channels: int) -> int:
        """Attention heads at a width of ``channels``: heads of ``head_channels``, at least one."""
        return max(1, channels // self.head_channels)

    @property
    def emb_channels(self) -> int:
        return 4 * self.base_channels
