"""Chunked joint sampling: an utterance as overlapping one-second chunks of the joint model.

Chunk ``k`` covers frames ``[k*S, k*S + F)`` with stride ``S = F - prefix_frames``, and the audio under
those frames. Every chunk after the first starts with the last ``prefix_frames`` frames of the chunk
before, imposed by the same replacement as the speech (Eq. 10), so the face does not jump. Only the
frames a chunk adds beyond its prefix are kept, so the video is exactly as long as the speech.
The guidance (caption, classifier, reconstruction, autoguidance: ``model/diffusion/generate.py``) is
built once per utterance and reused by its chunks.
"""

from __future__ import annotations

from functools import lru_cache

import math
import time
from typing import Iterator

import numpy as np

from model.audio import fit_audio
from model.clip import AUDIO_RATE, VIDEO_FPS
from model.defaults import GeneratorSettings
from model.speaking import Speaking


def plan_chunks(n_frames: int, chunk_frames: int, prefix_frames: int) -> list[int]:
    """First frame of every chunk needed to cover ``n_frames`` frames.

    >>> plan_chunks(40, 16, 4)
    [0, 12, 24]
    """
    if chunk_frames < 1 or not 0 <= prefix_frames < chunk_frames:
        raise ValueError(f"need 0 <= prefix_frames ({prefix_frames}) < chunk_frames ({chunk_frames})")
    stride = chunk_frames - prefix_frames
    extra = max(0, n_frames - chunk_frames)
    return [k * stride for k in range(1 + math.ceil(extra / stride))]


class ChunkSampler:
    """The joint model (with its optional classifier and autoguide network) sampled chunk by chunk,
    as ``settings`` say (sampler, steps, prefix, precision, guidance scales)."""

    def __init__(self, diffusion, config, settings: GeneratorSettings, *, classifier=None, audio_guide=None) -> None:
        self.diffusion, self.config, self.settings = diffusion, config, settings
        self.classifier, self.audio_guide = classifier, audio_guide

    def guidance(self, caption: int | dict, reference: np.ndarray | None = None):
        """One request's guidance (its caption and face, the settings' scales), built once for its chunks."""
        from model.diffusion.generate import GuidanceConfig, build_guidance

        s = self.settings
        guidance = GuidanceConfig(cfg_scale=s.cfg_scale, classifier_scale=s.classifier_scale, recon_scale=s.recon_scale,
                                  audio_guide_scale=s.audio_guidance, audio_contrast=s.audio_contrast)
        use_classifier = self.classifier is not None and s.classifier_scale > 0
        return build_guidance(self.diffusion, self.config, guidance=guidance, caption=caption, reference=reference,
                              classifier=self.classifier if use_classifier else None, audio_guide=self.audio_guide)

    def sample_chunk(self, guidance, audio: np.ndarray | None, prefix: np.ndarray | None, seed: int,
                      steps: int | None = None):
        from model.diffusion.generate import generate_av

        s = self.settings
        steps = steps or s.steps
        with self.autocast():
            return generate_av(
                guidance,
                audio_condition=audio,
                video_prefix=prefix,
                seed=seed,
                sampler=s.sampler,
                steps=None if s.sampler == "ddpm" and steps >= self.config.schedule.timesteps else steps,
            )

    def autocast(self):
        import torch

        device = next(self.diffusion.parameters()).device.type
        precision = self.settings.precision
        enabled = precision == "bf16" or (precision == "auto" and native_bf16(device))
        return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)

    def sample_chunks(self, caption: int | dict, seed: int, speech: np.ndarray | None = None,
                       reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``sampled`` joined: video uint8 ``[N, H, W, 3]`` and audio float32 ``[N * 1000]``."""
        pieces = list(self.sampled(caption, seed, speech, reference, {}))
        return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])

    def sampled(self, caption: int | dict, seed: int, speech: np.ndarray | None, reference: np.ndarray | None,
                 timings: dict) -> Iterator[tuple[np.ndarray, np.ndarray, bool, int]]:
        """Chunked joint sampling, one chunk at a time: ``(new frames, their audio, last, N)`` (N is None
        while the voice is still speaking, for the first chunk).

        With ``speech``, N frames cover it, every chunk's audio is replaced by the speech under it
        and the audio handed out is the speech; without, N frames last ``unconditional_seconds`` (the
        paper's one-second joint sample, continued) and each chunk adds the audio it sampled for
        its new frames. Every chunk after the first starts with the last ``prefix_frames`` frames
        of the chunk before (given back unchanged, so only the frames after them are new).
        ``reference`` (uint8 ``[H, W, 3]``): the call's face, read by every chunk.
        """
        cfg = self.config.unet
        spf = AUDIO_RATE // VIDEO_FPS  # audio samples per video frame
        p = self.settings.prefix_frames
        guidance = self.guidance(caption, reference)
        first = None
        if isinstance(speech, Speaking) and not speech.complete:
            # the first chunk needs only the first second of speech: it is sampled and handed out before
            # the voice says the rest (there is more than a chunk of speech: its frames are all kept)
            t0 = time.perf_counter()
            first = self.sample_chunk(guidance, fit_audio(speech.first, cfg.frames * spf), None, seed)
            timings["sampling"] = timings.get("sampling", 0.0) + time.perf_counter() - t0
            yield first[0].copy(), speech.first[: cfg.frames * spf].copy(), False, None
        if isinstance(speech, Speaking):
            speech = speech.whole(timings)
        if speech is None:
            n_frames = max(1, round(self.settings.unconditional_seconds * VIDEO_FPS))
        else:
            n_frames = max(1, math.ceil(speech.shape[0] / spf))
        starts = plan_chunks(n_frames, cfg.frames, p)
        total = starts[-1] + cfg.frames
        video = np.zeros((total, cfg.image_size, cfg.image_size, 3), np.uint8)
        audio = fit_audio(speech if speech is not None else np.zeros(0, np.float32), total * spf)
        for k, start in enumerate(starts):
            t0 = time.perf_counter()
            window = slice(start * spf, (start + cfg.frames) * spf)
            prefix = video[start : start + p] if k > 0 and p > 0 else None
            if k == 0 and first is not None:  # sampled on the first sentences (which the speech starts with), handed out
                video[: cfg.frames] = first[0]
                continue
            frames, sampled = self.sample_chunk(guidance, audio[window] if speech is not None else None, prefix, seed + k)
            new = 0 if prefix is None else p
            video[start + new : start + cfg.frames] = frames[new:]  # frames[:new] are the prefix itself
            if speech is None:
                audio[(start + new) * spf : window.stop] = sampled[new * spf :]
            timings["sampling"] = timings.get("sampling", 0.0) + time.perf_counter() - t0
            stop = min(start + cfg.frames, n_frames)
            yield video[start + new : stop].copy(), audio[(start + new) * spf : stop * spf].copy(), k == len(starts) - 1, n_frames

    def autoguidance(self, speech: np.ndarray | None) -> float:
        """The autoguidance weight this clip's audio was sampled with (1: none)."""
        if speech is not None or self.audio_guide is None:
            return 1.0
        return self.settings.audio_guidance


@lru_cache(maxsize=None)
def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda") computes bf16 natively, so that bf16 autocast is faster, not
    slower: CUDA with bf16 support; a CPU whose oneDNN has bf16 kernels (AMX or AVX512-BF16). Without
    them PyTorch's CPU convolutions take a reference path many times slower than float32."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the check: the CPU's own flags
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return False
        return " amx_bf16" in flags or " avx512_bf16" in flags
