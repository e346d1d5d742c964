"""A deterministic stand-in generator: numpy only, instant, for tests and ``--model stub``.

It draws a simple face whose mouth opens with a tone shaped by the text, so recordings, playback
and bitrate accounting can be exercised end to end without a trained model. Its calls
(``open_call``) keep one face per call like the real generator's (``model/call.py``): a skin tone
drawn once per call, or the sender's style image, kept in the call's store.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from model.call import Call, Face, GenerationError
from model.clip import AUDIO_RATE, VIDEO_FPS, Chunk, Clip, Request, split_clip

SECONDS_PER_CHAR = 0.06  # about 150 words per minute of ~6 characters
CHUNK_FRAMES = 12  # frames per streamed chunk, as the default generator's (16-frame chunks, 4 inherited)


class StubGenerator:
    name = "stub"

    def __init__(self, size: int = 64, fps: int = VIDEO_FPS, sample_rate: int = AUDIO_RATE, pace: float = 0.0) -> None:
        """``pace``: seconds of (simulated) generation per second of media, spent before each chunk is
        handed out (0: instant; 1: a generator exactly as fast as real time), to exercise streaming."""
        if pace < 0:
            raise ValueError("pace must be >= 0")
        self.size = size
        self.fps = fps
        self.sample_rate = sample_rate
        self.pace = pace

    def generate(self, request: Request) -> Clip:
        """One utterance with no call: a face of its own."""
        return self.draw(request, None)

    def open_call(self, call_id: str, *, store: str | Path | None = None) -> StubCall:
        return StubCall(self, call_id, store=store)

    def draw(self, request: Request, face: np.ndarray | None) -> Clip:
        """The clip for ``request``, on ``face`` (uint8 ``[S, S, 3]``) or a face of its own."""
        seed = zlib.crc32(f"{request.seed}|{request.caption}|{request.text}".encode())
        rng = np.random.default_rng(seed)
        seconds = max(1.0, len(request.text) * SECONDS_PER_CHAR)
        frames = int(round(seconds * self.fps))
        samples = frames * self.sample_rate // self.fps
        envelope = self._envelope(request.text, samples, rng)
        audio = self._tone(request.caption, envelope, samples)
        per_frame = envelope[: frames * (samples // frames)].reshape(frames, -1).mean(axis=1)
        base = face if face is not None else self._base_face(request, rng)
        video = np.stack([self._frame(base, i, per_frame[i]) for i in range(frames)])
        return Clip(video, audio, self.fps, self.sample_rate, info={"generator": self.name})

    def _envelope(self, text: str, samples: int, rng: np.random.Generator) -> np.ndarray:
        """Syllable-like bursts, one per character of text (random when there is no text)."""
        codes = [ord(c) for c in text] or list(rng.integers(97, 123, size=16))
        t = np.arange(samples) / samples * len(codes)
        index = np.minimum(t.astype(int), len(codes) - 1)
        voiced = np.array([0.0 if chr(c).isspace() else 0.4 + (c % 7) / 10 for c in codes])
        phase = t - np.floor(t)
        return (voiced[index] * np.sin(np.pi * phase) ** 2).astype(np.float32)

    def _tone(self, caption: str, envelope: np.ndarray, samples: int) -> np.ndarray:
        pitch = 220.0 if "woman" in caption.lower() else 120.0
        t = np.arange(samples) / self.sample_rate
        wave = np.sin(2 * np.pi * pitch * t) + 0.3 * np.sin(2 * np.pi * 2 * pitch * t)
        return (0.5 * envelope * wave / 1.3).astype(np.float32)

    def _base_face(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        if request.style_image is not None:
            return self._load_style(request.style_image)
        return self.face(rng)

    def face(self, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        y, x = np.mgrid[0:n, 0:n] / n
        background = np.stack([0.2 + 0.3 * y, 0.3 + 0.2 * x, 0.5 - 0.2 * y], axis=-1)
        skin = np.array([0.85, 0.65, 0.5]) * (0.8 + 0.2 * rng.random())
        face = ((x - 0.5) / 0.32) ** 2 + ((y - 0.5) / 0.42) ** 2 < 1
        image = np.where(face[..., None], skin, background)
        for eye_x in (0.38, 0.62):
            eye = ((x - eye_x) / 0.05) ** 2 + ((y - 0.42) / 0.03) ** 2 < 1
            image[eye] = (0.1, 0.1, 0.15)
        return (image * 255).astype(np.uint8)

    def _load_style(self, path) -> np.ndarray:
        import cv2  # receiver extra; only style requests need it

        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read style image {path}")
        image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _frame(self, base: np.ndarray, index: int, loudness: float) -> np.ndarray:
        n = self.size
        sway = int(round(1.5 * np.sin(2 * np.pi * index / (2.5 * self.fps))))
        frame = np.roll(base, sway, axis=1).copy()
        y, x = np.mgrid[0:n, 0:n] / n
        opening = 0.01 + 0.06 * float(loudness)
        mouth = ((x - 0.5 - sway / n) / 0.11) ** 2 + ((y - 0.72) / opening) ** 2 < 1
        frame[mouth] = (90, 20, 30)
        return frame


class StubCall(Call):
    """A stub call: one face (a skin tone drawn once, or the style image) for all its utterances."""

    def __init__(self, generator: StubGenerator, call_id: str, *, store: str | Path | None = None) -> None:
        super().__init__(call_id, store=store)
        self.generator = generator

    def style_face(self, path: Path) -> np.ndarray:
        """The style image's face, found and framed as the real generator does (no face: an error)."""
        from model.lipsync.face import NoFaceError
        from model.lipsync.style import StyleImageError, read_image, style_frame

        try:
            return style_frame(read_image(path), self.generator.size)
        except (StyleImageError, NoFaceError) as exc:
            raise GenerationError(f"style image {Path(path).name}: {exc}") from None

    def draw_face(self, description: dict, seed: int, number: int) -> Face:
        return Face(self.generator.face(np.random.default_rng(seed)), "stub", description.get("gender"), "", seed, number,
                    description=dict(description))

    def render(self, request: Request, face: Face | None, caption: int | dict) -> Iterator[Chunk]:
        clip = self.generator.draw(request, None if face is None else face.image)
        for chunk in split_clip(clip, CHUNK_FRAMES):
            if self.generator.pace:
                time.sleep(self.generator.pace * chunk.seconds)
            yield chunk
