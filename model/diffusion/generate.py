"""One second (one chunk) of talking-head video and speech from the joint model.

The receiver's one way into the diffusion model, in two steps. A request (a caption, perhaps the
call's face, the networks that guide it and a ``GuidanceConfig``) builds its guidance once with
``build_guidance``; every chunk of it then samples with ``generate_av(stack, ...)``, which adds only
what the chunk brings (its speech, its first frames, its seed) and keeps the denoising loop visible here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from model.audio import fit_audio
from model.diffusion.audio_codec import MelCodec, audio_codec
from model.diffusion.av import AV
from model.diffusion.captions import caption_condition, is_null_condition
from model.diffusion.config import NULL_CAPTION, DiffusionConfig
from model.diffusion.guidance import (
    Renoise,
    conditioned,
    speech_conditioned,
    with_audio_autoguidance,
    with_cfg,
    with_classifier,
    with_replacement,
)
from model.diffusion.sampling import Denoiser, sample
from model.diffusion.unet import reads_descriptions
from model.diffusion.schedule import Schedule, linear_schedule, q_sample


def video_to_model(video: np.ndarray) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` -> float ``[1, F, 3, H, W]`` in [-1, 1]."""
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
    return torch.from_numpy(video).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)[None]


def video_from_model(video: torch.Tensor) -> np.ndarray:
    """``[F, 3, H, W]`` in [-1, 1] -> uint8 ``[F, H, W, 3]``."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


PEAK = 0.95  # generated audio is scaled down to this peak rather than clipped


def limit(wave: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale ``wave`` down so its peak is at most ``peak`` (never up): audio sampled from noise can
    come out louder than full scale (autoguidance raises its contrast), and clipping it would
    distort it. Applied per chunk, so a no-text clip of several chunks may change level between them.

    >>> limit(np.array([0.5, -2.0])).tolist()
    [0.2375, -0.95]
    """
    top = float(np.abs(wave).max(initial=0.0))
    return (wave * (peak / top)).astype(wave.dtype) if top > peak else wave


def audio_from_model(codec, audio: torch.Tensor) -> np.ndarray:
    """The network's audio tensor ``[1, C, L]`` -> float32 waveform ``[S]`` as the receiver plays it:
    decoded (Griffin-Lim for a spectrogram), then ``limit``-ed rather than clipped."""
    return limit(codec.decode(audio.float(), clamp=False)[0].cpu().numpy().astype(np.float32))


@dataclass(frozen=True)
class GuidanceConfig:
    """How a request is guided: the scales of guidance.py's wrappers (the defaults: plain sampling).

    - ``cfg_scale``: classifier-free guidance of the caption (``with_cfg``; 1 = the caption alone);
    - ``classifier_scale``: s of Eq. 8, with a classifier (``with_classifier``);
    - ``recon_scale``: C of Eq. 11, the video guided by given speech (``with_reconstruction``; 0 = off);
    - ``audio_guide_scale``: autoguidance of audio sampled from noise, with a weaker network
      (``with_audio_autoguidance``; 1 = off; not in the paper);
    - ``audio_contrast``: > 0 (a spectrogram model only) holds the spread of a spectrogram sampled
      from noise to at most this (``MelCodec.limit_contrast``, e.g. ``SPEECH_SPREAD``; 0 = off; not
      in the paper).
    """

    cfg_scale: float = 1.0
    classifier_scale: float = 1.0
    recon_scale: float = 1.0
    audio_guide_scale: float = 1.0
    audio_contrast: float = 0.0

    def __post_init__(self) -> None:
        for name in (f.name for f in dataclasses.fields(self)):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class GuidanceStack:
    """One request's guidance, built once (``build_guidance``) and used by every chunk it samples.

    ``from_noise`` (audio sampled from noise: autoguided when a weaker network is given) and
    ``with_speech`` (audio given: replacement overrides autoguidance) are the request's denoisers,
    bound to its caption and face; ``for_chunk`` wraps one in what a chunk brings. ``renoise`` noises
    what replacement imposes: ``q_sample``, the marginal q(x_t | x_0); research swaps in
    ``q_step_literal``, Eq. 10 as printed (``textcall sample --paper-eq10``), with ``dataclasses.replace``.
    """

    config: DiffusionConfig
    device: torch.device
    schedule: Schedule
    guidance: GuidanceConfig
    from_noise: Denoiser
    with_speech: Denoiser
    renoise: Renoise = q_sample

    def for_chunk(self, generator: torch.Generator, *, speech: Tensor | None = None,
                  video_prefix: Tensor | None = None) -> Denoiser:
        """The denoiser of one chunk. ``speech`` (the network's audio layout, ``[1, C, L]``) replaces the
        audio (Eq. 10) and guides the video by reconstruction (Eq. 11); ``video_prefix`` ``[1, K, C, H, W]``
        is imposed on the first K frames by the same replacement. ``generator`` draws the re-noising."""
        if speech is not None:
            return speech_conditioned(self.with_speech, self.schedule, speech, self.guidance.recon_scale,
                                      video_prefix=video_prefix, generator=generator, renoise=self.renoise)
        return with_replacement(self.from_noise, self.schedule, video_prefix=video_prefix, generator=generator,
                                renoise=self.renoise)


def build_guidance(
    model: nn.Module,
    config: DiffusionConfig,
    *,
    guidance: GuidanceConfig = GuidanceConfig(),
    caption: int | Mapping[str, str | None] | None = NULL_CAPTION,
    reference: np.ndarray | None = None,
    classifier: nn.Module | None = None,
    audio_guide: nn.Module | None = None,
) -> GuidanceStack:
    """The guidance of one request, for all its chunks.

    - caption: an index into ``config.captions`` (the paper's captions; 0 = none) or a description
      ``{attribute: value}`` (what a free-form caption said, ``model.describe``). A network that reads
      description vectors (``UNetConfig.attribute_slots``) gets the whole description; a caption-index
      network its gender (``caption_condition``). It conditions the network through AdaGN
      (``cfg_scale`` > 1 adds classifier-free guidance), unless ``classifier`` is given: then the
      network gets the null caption and the caption is enforced by classifier guidance (Eq. 8) with
      ``classifier_scale`` (a description classifier: one factor per attribute said).
    - the call's face: ``reference`` uint8 ``[H, W, 3]`` conditions the video branch of a network
      built with a reference input (``UNetConfig.reference``; not in the paper); None: the paper's.
      The autoguide network, a plain one, never gets it.
    - ``audio_guide``: a less-trained network of the same kind that autoguides the audio of chunks
      without speech (``audio_guide_scale`` != 1; ``with_audio_autoguidance``, not in the paper).
    """
    cfg = config.unet
    device = next(model.parameters()).device
    schedule = linear_schedule(config.schedule)

    def condition(net: nn.Module, value) -> Tensor:
        return caption_condition(value, config.captions, reads_descriptions(net), device)

    wanted = condition(model, caption)
    use_classifier = classifier is not None and not is_null_condition(wanted)

    ref = None
    if reference is not None:
        if not cfg.reference:
            raise ValueError("this diffusion model has no reference input; load a reference-conditioned one")
        ref = video_to_model(reference[None])[0].to(device)  # [1, 3, H, W]

    def bound(net: nn.Module, ref_image: Tensor | None = None) -> Denoiser:
        own = condition(net, NULL_CAPTION if use_classifier else caption)
        if not is_null_condition(own):
            return with_cfg(net, own, guidance.cfg_scale, ref_image)
        return conditioned(net, own, ref_image)

    plain = bound(model, ref)
    autoguided = plain
    if audio_guide is not None:  # (a scale of 1 leaves ``plain`` as it is)
        autoguided = with_audio_autoguidance(plain, bound(audio_guide), guidance.audio_guide_scale)
    if use_classifier:
        label = condition(classifier, caption)
        if not label.is_floating_point():
            label = label - 1  # class k is caption index k + 1
        plain, autoguided = (with_classifier(d, classifier, schedule, label, guidance.classifier_scale)
                             for d in (plain, autoguided))
    return GuidanceStack(config, device, schedule, guidance, from_noise=autoguided, with_speech=plain)


@torch.no_grad()
def generate_av(
    stack: GuidanceStack,
    *,
    audio_condition: np.ndarray | None = None,
    video_prefix: np.ndarray | None = None,
    seed: int = 0,
    sampler: str = "dpm++",
    steps: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample one chunk of the request ``stack`` guides; returns (video uint8 ``[F, H, W, 3]``, audio
    float32 ``[S]`` at 16 kHz).

    - speech: ``audio_condition`` (float32 ``[S']`` at the model's rate, trimmed or padded to one chunk)
      replaces the audio (Eq. 10) and guides the video by reconstruction (Eq. 11, ``recon_scale``);
      the returned audio is then the condition itself. Without it the audio is sampled from noise
      (autoguided and contrast-limited as the stack's ``GuidanceConfig`` says).
    - continuation: ``video_prefix`` uint8 ``[K, H, W, 3]`` (e.g. the previous chunk's last frames)
      is imposed on the first K frames by the same replacement.
    """
    config, device = stack.config, stack.device
    cfg = config.unet
    codec = audio_codec(config)
    generator = torch.Generator(device=device).manual_seed(seed)
    noise = AV(
        torch.randn((1, cfg.frames, cfg.video_channels, cfg.image_size, cfg.image_size), generator=generator, device=device),
        torch.randn((1, cfg.audio_channels, cfg.audio_length), generator=generator, device=device),
    )
    speech = prefix = None
    if audio_condition is not None:
        clean = fit_audio(audio_condition, cfg.audio_samples)
        speech = codec.encode(torch.from_numpy(clean).to(device).reshape(1, -1))
    if video_prefix is not None:
        if video_prefix.shape[0] >= cfg.frames:
            raise ValueError(f"video_prefix must have fewer than {cfg.frames} frames")
        prefix = video_to_model(video_prefix).to(device)
    denoiser = stack.for_chunk(generator, speech=speech, video_prefix=prefix)

    x = sample(sampler, denoiser, stack.schedule, noise, steps, generator=generator, progress=progress)

    video = video_from_model(x.video[0])
    if video_prefix is not None:
        video[: video_prefix.shape[0]] = video_prefix
    if audio_condition is not None:
        audio = clean  # Eq. 10 at t = 0 is the condition itself
    else:
        sampled = x.audio
        contrast = stack.guidance.audio_contrast
        if contrast > 0 and isinstance(codec, MelCodec):
            sampled = codec.limit_contrast(sampled, contrast)
        audio = audio_from_model(codec, sampled)
    return video, audio.astype(np.float32)
