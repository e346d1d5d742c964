"""``LipSync``: the receiver's lip-sync facade (refinement after denoising, still-image animation).

    >>> lips = LipSync.load("~/.cache/textcall/train/lipsync")        # model.safetensors + config.json
    >>> frames = lips.refine(frames, audio)          # uint8 [F, H, W, 3], float32 [S] @ 16 kHz
    >>> clip = lips.animate(image, audio)            # uint8 [H, W, 3] -> uint8 [ceil(S/16000*16), H, W, 3]

Refinement (paper IV-F): after the last denoising step, one face box for the clip, the lower half of
every 96x96 crop masked, the generator run per frame on ``[masked frame, frame]`` with the frame's
mel window (``audio.mel_windows``), the result pasted back with a feathered lower-face mask
(``face.paste``). Animation (paper IV-E): the same with the still image as every frame.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from model.lipsync.audio import SAMPLE_RATE, mel_windows, melspectrogram
from model.lipsync.checkpoint import load_model
from model.lipsync.face import CROP, FaceBox, NoFaceError, clip_box, crop_frames, face_box, mask_lower_half, paste, paste_weights
from model.lipsync.networks import LipSyncConfig, Wav2Lip

logger = logging.getLogger(__name__)

__all__ = ["LipStream", "LipSync", "NoFaceError"]

MAX_SECONDS = 600.0


class LipSync:
    """A loaded Wav2Lip generator and what it needs around it; not thread-safe (one worker thread)."""

    def __init__(self, generator: Wav2Lip, config: LipSyncConfig, *, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        if config.kind != "wav2lip":
            raise ValueError(f"LipSync needs a wav2lip generator, got {config.kind}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        self.config = config
        self.batch_size = batch_size
        # the mouth sharpener (``MouthSharpener``: ``sharpen(frames, weights)``), run on what is pasted into
        # frames larger than the crop; None: the generator's mouth as it is
        self.mouth = None

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu", *, batch_size: int = 32) -> LipSync:
        generator, config = load_model(folder, device, kind="wav2lip")
        return cls(generator, config, device=device, batch_size=batch_size)

    # -- public verbs --------------------------------------------------------------------------------
    def refine(self, frames: np.ndarray, audio: np.ndarray, fps: float = 16, *, box_size: int | None = None) -> np.ndarray:
        """Redraw the mouth of every frame to match ``audio``: ``uint8 [F, H, W, 3] -> uint8 [F, H, W, 3]``.

        ``audio``: float32 ``[S]`` at 16 kHz, starting with frame 0 (a shorter track is padded by
        repeating its last mel step, a longer one is cut to the frames' duration). ``box_size``: as
        ``stream``'s.
        """
        frames = _check_frames(frames)
        if len(frames) == 0:
            return frames.copy()
        return self.stream(audio, len(frames), fps, probes=3, box_size=box_size).push(frames)

    def stream(self, audio: np.ndarray, n_frames: int, fps: float = 16, *, still: np.ndarray | None = None,
               probes: int | None = None, box_size: int | None = None) -> LipStream:
        """Lip sync chunk by chunk, for frames that arrive in order while the whole ``audio`` is known:
        ``stream(audio, n).push(frames)`` per chunk. The face box is fixed from the first chunk's
        frames, the median of face boxes on ``probes`` of them spread over it (None: 3, as ``refine``
        does over the whole clip; more is not steadier on 64-pixel frames), or from ``still`` (uint8 ``[H, W, 3]``, its
        face the reference of every frame: ``animate``). ``box_size``: the box is found on the frames
        brought down to that side (``face.scaled``; 64 for the receiver's upscaled frames, so they
        are cropped as their 64-pixel versions are)."""
        return LipStream(self, _check_audio(audio), n_frames, fps, still, probes, box_size)

    def growing(self, audio: np.ndarray, fps: float = 16, *, box_size: int | None = None) -> LipStream:
        """A stream over speech still being made: ``extend`` it as more comes, with ``n_frames`` at the end."""
        return LipStream(self, _check_audio(audio), None, fps, box_size=box_size)

    def animate(self, image: np.ndarray, audio: np.ndarray, fps: float = 16, *, box_size: int | None = None) -> np.ndarray:
        """Drive a still face with ``audio``: ``uint8 [H, W, 3] -> uint8 [ceil(S / 16000 * fps), H, W, 3]``.

        Raises :class:`NoFaceError` when the image holds no face.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
        audio = _check_audio(audio)
        stream = self.stream(audio, math.ceil(len(audio) / SAMPLE_RATE * fps), fps, still=image, box_size=box_size)  # NoFaceError
        if stream.n_frames == 0:
            return np.zeros((0, *image.shape), np.uint8)
        return stream.push(np.broadcast_to(image, (stream.n_frames, *image.shape)))


class LipStream:
    """One utterance's lip sync, chunk by chunk (``LipSync.stream``). A frame's mouth reads the mel
    window around it (``audio.mel_windows``), computed from the speech known so far: exact for every
    frame whose window lies inside it (mel steps are local: a step reads 400 samples either side), so
    the speech may still be growing (``extend``) while the first chunks are lip-synced; ``n_frames``
    and the end of the speech are known once it is complete."""

    MARGIN = 3200  # samples of speech a pushed frame needs beyond its own window while the speech grows

    def __init__(self, lips: LipSync, audio: np.ndarray, n_frames: int | None, fps: float, still: np.ndarray | None = None,
                 probes: int | None = None, box_size: int | None = None) -> None:
        self.lips, self.fps, self.done, self.probes, self.box_size = lips, fps, 0, probes, box_size
        self.box: FaceBox | None = face_box(still, at=box_size) if still is not None else None  # NoFaceError when none
        self._still_crop = None
        if still is not None:
            self._still_crop = _to_tensor(crop_frames(still[None], self.box, CROP)).to(lips.device)  # [1, 3, 96, 96]
        self.audio, self.n_frames = audio, n_frames
        self._mel: torch.Tensor | None = None

    def extend(self, audio: np.ndarray, n_frames: int | None = None) -> None:
        """The speech so far (it starts with what was known before); ``n_frames`` once it is complete."""
        self.audio, self.n_frames, self._mel = _check_audio(audio), n_frames, None

    def _windows(self, start: int, stop: int) -> torch.Tensor:
        if self.n_frames is None:  # still growing: the frames' windows must lie inside what is known
            needs = round(SAMPLE_RATE * ((stop - 1 + 0.5) / self.fps + 0.125)) + self.MARGIN  # centre, half a window, margin
            if needs > len(self.audio):
                raise ValueError(f"frames up to {stop} need {needs} samples of speech, {len(self.audio)} are known")
        if self._mel is None:
            self._mel = melspectrogram(self.audio).to(self.lips.device)
        return mel_windows(self._mel, stop, self.fps)[start:stop]

    @torch.inference_mode()
    def push(self, frames: np.ndarray) -> np.ndarray:
        """The next frames of the utterance (uint8 ``[b, H, W, 3]``) with their mouths redrawn."""
        frames = _check_frames(frames)
        n = len(frames)
        if self.n_frames is not None and self.done + n > self.n_frames:
            raise ValueError(f"{self.done + n} frames pushed into a lip sync stream of {self.n_frames}")
        if n == 0:
            return frames.copy()
        if self.box is None:
            self.box = clip_box(frames, probes=self.probes or 3, at=self.box_size)
        lips, box = self.lips, self.box
        windows = self._windows(self.done, self.done + n)  # [n, 1, 80, 16]
        out = np.empty(frames.shape, np.uint8)
        for start in range(0, n, lips.batch_size):
            stop = min(n, start + lips.batch_size)
            given = crop_frames(frames[start:stop], box, CROP)  # uint8 [b, 96, 96, 3]
            crops = _to_tensor(given).to(lips.device)  # [b, 3, 96, 96]
            refs = crops if self._still_crop is None else self._still_crop.expand(stop - start, -1, -1, -1)
            inputs = torch.cat([mask_lower_half(crops), refs], dim=1)  # [b, 6, 96, 96]
            gen = lips.generator(windows[start:stop], inputs)  # [b, 3, 96, 96] in [0, 1]
            faces = gen.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            # a box larger than the crop (upscaled frames): only what the generator changed is pasted,
            # so the frame's own sharper chin, beard and collar stay (face.paste's ``keep``)
            enlarged = box.width > CROP
            weights = np.zeros((stop - start, *frames.shape[1:3]), np.float32) if lips.mouth is not None and enlarged else None
            for k, face in enumerate(faces):
                alpha = paste_weights(face, box, given[k] if enlarged else None)
                out[start + k] = paste(frames[start + k], face, box, alpha=alpha)
                if weights is not None:
                    weights[k, box.y0:box.y1, box.x0:box.x1] = alpha
            if weights is not None:  # the drawn mouth made crisp where it was drawn (model/restore/mouth.py)
                out[start:stop] = lips.mouth.sharpen(out[start:stop], weights)
        self.done += n
        return out


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3] RGB, got {getattr(frames, 'dtype', type(frames))} {getattr(frames, 'shape', '')}")
    return frames


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono float32 [S] at {SAMPLE_RATE} Hz, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("audio is empty")
    if audio.size > MAX_SECONDS * SAMPLE_RATE:
        raise ValueError(f"audio of {audio.size / SAMPLE_RATE:.0f} s is longer than {MAX_SECONDS:.0f} s: split it")
    if not np.isfinite(audio).all():
        raise ValueError("audio holds NaN or infinite samples")
    return audio
