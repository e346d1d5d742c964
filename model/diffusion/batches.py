"""Training batches of the joint model: corpus rows -> network inputs, reference faces, crops.

``to_model_batch`` turns rows of a ``Segments`` into ``AV(video [B, F, C, H, W] in [-1, 1], audio as
the network takes it)`` and captions; ``ReferencePicker`` finds each clip a frame of another clip of
the same person; ``augment_pair`` gives a clip and its reference the same colour change and mirror;
``crop_window`` cuts a window of frames and the audio under them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model.diffusion.audio_codec import audio_codec
from model.diffusion.av import AV
from model.diffusion.config import ClassifierConfig, DiffusionConfig
from model.diffusion.data import Segments


def to_model_batch(segments: Segments, idx: np.ndarray, config: DiffusionConfig | ClassifierConfig, device) -> tuple[AV, Tensor]:
    """Rows ``idx`` -> (AV video [B, F, C, H, W] in [-1, 1], audio as the network takes it), caption:
    indices ``[B]``, or description vectors ``[B, SLOTS]`` for a network that reads them.

    The audio is the waveform [B, 1, S] times ``audio_scale``, or its log-mel spectrogram (audio_codec.py).
    """
    unet = config.unet
    video = torch.from_numpy(segments.video[idx]).to(device).float().div(127.5).sub(1.0)
    if video.shape[1] != unet.frames or video.shape[2] != unet.video_channels:
        raise ValueError(f"data has video {tuple(video.shape[1:])}, the model wants {unet.frames} frames of {unet.video_channels} channels")
    if video.shape[-1] != unet.image_size or video.shape[-2] != unet.image_size:
        b, f, c, h, w = video.shape
        video = F.interpolate(video.reshape(b * f, c, h, w), size=(unet.image_size, unet.image_size), mode="area")
        video = video.reshape(b, f, c, unet.image_size, unet.image_size)
    audio = torch.from_numpy(segments.audio[idx]).to(device).float()
    if audio.shape[1] != unet.audio_samples:
        raise ValueError(f"data has {audio.shape[1]} audio samples per segment, the model wants {unet.audio_samples}")
    if unet.describes:
        caption = torch.from_numpy(segments.descriptions(config.captions)[idx]).to(device).float()
        if caption.shape[1] != unet.attribute_slots:
            raise ValueError(f"the data's descriptions have {caption.shape[1]} slots, the model reads {unet.attribute_slots}")
    else:
        caption = torch.from_numpy(segments.caption[idx]).to(device).long()
    return AV(video, audio_codec(config).encode(audio)), caption


class ReferencePicker:
    """For each training clip, a frame of another clip of the same person (its reference face)."""

    def __init__(self, segments: Segments) -> None:
        if segments.speaker is None:
            raise ValueError("a reference-conditioned model needs to know who speaks in each segment "
                             "(a corpus cache, not bare .npz files)")
        self.segments = segments
        self.by_speaker: dict[int, np.ndarray] = {}
        for i, spk in enumerate(segments.speaker.tolist()):
            self.by_speaker.setdefault(spk, []).append(i)
        self.by_speaker = {k: np.array(v) for k, v in self.by_speaker.items()}

    def pick(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``[B, C, H, W]``: a random frame of another segment of each row's speaker (of the
        same segment when the speaker has only one)."""
        frames = self.segments.video.shape[1]
        out = []
        for i in idx.tolist():
            pool = self.by_speaker[int(self.segments.speaker[i])]
            others = pool[pool != i]
            j = int(rng.choice(others)) if others.size else i
            out.append(self.segments.video[j, int(rng.integers(frames))])
        return np.stack(out)


def augment_pair(video: Tensor, reference: Tensor, chosen: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """The same random colour change and mirror image for each chosen clip and its reference.

    video ``[B, F, 3, H, W]`` and reference ``[B, 3, H, W]`` in [-1, 1]; chosen bool ``[B]``. The colour
    change is a channel permutation, a gain per channel in [0.6, 1.4] and an offset in [-0.25, 0.25]
    (clamped to the data range): hair, skin, shirt and background colours the corpus never had, so
    copying them from the reference is the only way to get them right.
    """
    b, device = video.shape[0], video.device
    perm = torch.stack([torch.randperm(3, generator=gen, device=device) for _ in range(b)])  # [B, 3]
    gain = torch.empty(b, 3, device=device).uniform_(0.6, 1.4, generator=gen)
    offset = torch.empty(b, 3, device=device).uniform_(-0.25, 0.25, generator=gen)
    flip = torch.rand(b, generator=gen, device=device) < 0.5

    def change(x: Tensor) -> Tensor:  # [B, ..., 3, H, W]
        shape = (b,) + (1,) * (x.ndim - 4) + (3, 1, 1)
        index = perm.reshape(b, *([1] * (x.ndim - 4)), 3, 1, 1).expand_as(x)
        y = torch.gather(x, x.ndim - 3, index) * gain.reshape(shape) + offset.reshape(shape)
        y = torch.where(flip.reshape(b, *([1] * (x.ndim - 1))), y.flip(-1), y).clamp(-1, 1)
        return torch.where(chosen.reshape(b, *([1] * (x.ndim - 1))), y, x)

    return change(video), change(reference)


def crop_window(x: AV, frames: int, start: int) -> AV:
    """Frames ``[start, start + frames)`` of a batch and the audio under them (same span of time)."""
    per_frame = x.audio.shape[-1] // x.video.shape[1]
    return AV(x.video[:, start : start + frames], x.audio[..., start * per_frame : (start + frames) * per_frame])

