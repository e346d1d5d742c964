"""``generate_av``: one second (one chunk) of talking-head video and speech from the joint model.

The receiver's one call into the diffusion model; it picks the conditioning wrappers for the inputs
it gets and keeps the denoising loop visible here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.diffusion.audio_codec import MelCodec, audio_codec
from model.diffusion.av import AV
from model.diffusion.config import NULL_CAPTION, DiffusionConfig
from model.diffusion.guidance import (
    conditioned,
    speech_conditioned,
    with_audio_autoguidance,
    with_cfg,
    with_classifier,
    with_replacement,
)
from model.diffusion.sampling import sample
from model.diffusion.schedule import linear_schedule


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


def fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """float32 ``[S']`` -> ``[samples]``: trimmed, or padded with silence."""
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono [S], got shape {audio.shape}")
    out = np.zeros(samples, dtype=np.float32)
    n = min(samples, audio.shape[0])
    out[:n] = np.clip(audio[:n], -1.0, 1.0)
    return out


@torch.no_grad()
def generate_av(
    model: nn.Module,
    config: DiffusionConfig,
    *,
    caption_index: int = NULL_CAPTION,
    audio_condition: np.ndarray | None = None,
    sampler: str = "dpm++",
    steps: int | None = 20,
    cfg_scale: float = 1.0,
    classifier: nn.Module | None = None,
    classifier_scale: float = 1.0,
    recon_scale: float = 1.0,
    audio_guide: nn.Module | None = None,
    audio_guide_scale: float = 1.0,
    audio_contrast: float = 0.0,
    video_prefix: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    seed: int = 0,
    paper_literal_eq10: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample one chunk; returns (video uint8 ``[F, H, W, 3]``, audio float32 ``[S]`` at 16 kHz).

    - caption: ``caption_index`` > 0 conditions the network through AdaGN (``cfg_scale`` > 1 adds
      classifier-free guidance), unless ``classifier`` is given: then the network gets the null
      caption and the caption is enforced by classifier guidance (Eq. 8) with ``classifier_scale``.
    - speech: ``audio_condition`` (float32 ``[S']`` at the model's rate, trimmed or padded to one chunk)
      replaces the audio (Eq. 10) and guides the video by reconstruction (Eq. 11, ``recon_scale``);
      the returned audio is then the condition itself.
    - no speech: with ``audio_guide`` (a less-trained network of the same kind) and
      ``audio_guide_scale`` != 1, the audio sampled from noise is autoguided
      (``with_audio_autoguidance``; not in the paper). Ignored when ``audio_condition`` is given.
      ``audio_contrast`` > 0 (a spectrogram model only) then holds the sampled spectrogram's spread
      to at most that (``MelCodec.limit_contrast``, e.g. ``SPEECH_SPREAD``; not in the paper).
    - continuation: ``video_prefix`` uint8 ``[K, H, W, 3]`` (e.g. the previous chunk's last frames)
      is imposed on the first K frames by the same replacement.
    - the call's face: ``reference`` uint8 ``[H, W, 3]`` conditions the video branch of a network
      built with a reference input (``UNetConfig.reference``; not in the paper); None: the paper's.
      The autoguide network, a plain one, never gets it.
    """
    if audio_contrast < 0:
        raise ValueError(f"audio_contrast must be >= 0 (0 = off), got {audio_contrast}")
    cfg = config.unet
    device = next(model.parameters()).device
    schedule = linear_schedule(config.schedule)
    codec = audio_codec(config)
    generator = torch.Generator(device=device).manual_seed(seed)

    noise = AV(
        torch.randn((1, cfg.frames, cfg.video_channels, cfg.image_size, cfg.image_size), generator=generator, device=device),
        torch.randn((1, cfg.audio_channels, cfg.audio_length), generator=generator, device=device),
    )
    use_classifier = classifier is not None and caption_index != NULL_CAPTION
    net_caption = NULL_CAPTION if use_classifier else caption_index
    caption = torch.full((1,), net_caption, dtype=torch.long, device=device)

    ref = None
    if reference is not None:
        if not cfg.reference:
            raise ValueError("this diffusion model has no reference input; load a reference-conditioned one")
        ref = video_to_model(reference[None])[0].to(device)  # [1, 3, H, W]

    def bound(net: nn.Module, ref_image=None):
        if net_caption != NULL_CAPTION:
            return with_cfg(net, caption, cfg_scale, ref_image)
        return conditioned(net, caption, ref_image)

    denoiser = bound(model, ref)
    if audio_condition is None and audio_guide is not None and audio_guide_scale != 1.0:
        denoiser = with_audio_autoguidance(denoiser, bound(audio_guide), audio_guide_scale)
    if use_classifier:
        label = torch.full((1,), caption_index - 1, dtype=torch.long, device=device)
        denoiser = with_classifier(denoiser, classifier, schedule, label, classifier_scale)

    audio0 = prefix = None
    if audio_condition is not None:
        clean = fit_audio(audio_condition, cfg.audio_samples)
        audio0 = codec.encode(torch.from_numpy(clean).to(device).reshape(1, -1))
    if video_prefix is not None:
        if video_prefix.shape[0] >= cfg.frames:
            raise ValueError(f"video_prefix must have fewer than {cfg.frames} frames")
        prefix = video_to_model(video_prefix).to(device)
    if audio0 is not None:
        denoiser = speech_conditioned(
            denoiser, schedule, audio0, recon_scale, video_prefix=prefix, generator=generator,
            paper_literal=paper_literal_eq10,
        )
    elif prefix is not None:
        denoiser = with_replacement(denoiser, schedule, video_prefix=prefix, generator=generator)

    x = sample(sampler, denoiser, schedule, noise, steps, generator=generator, progress=progress)

    video = video_from_model(x.video[0])
    if video_prefix is not None:
        video[: video_prefix.shape[0]] = video_prefix
    if audio_condition is not None:
        audio = clean  # Eq. 10 at t = 0 is the condition itself
    else:
        sampled = x.audio
        if audio_contrast > 0 and isinstance(codec, MelCodec):
            sampled = codec.limit_contrast(sampled, audio_contrast)
        audio = audio_from_model(codec, sampled)
    return video, audio.astype(np.float32)
