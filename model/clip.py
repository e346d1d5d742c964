"""What a generator is asked for and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

VIDEO_FPS = 16
AUDIO_RATE = 16_000


@dataclass(frozen=True)
class Request:
    """One utterance to render. Every field may be empty (the paper's unconditional mode).

    ``style_image`` is a path to an image file the receiver has already validated (gallery or upload).
    ``seed`` makes generation repeatable; the receiver derives it from sender id and sequence number.
    ``session`` names the conversation (the sender id), so a voice chosen for it can be kept.
    """

    caption: str = ""
    text: str = ""
    style_image: Path | None = None
    seed: int = 0
    session: str = ""

    @property
    def mode(self) -> str:
        parts = [
            name
            for name, present in (
                ("caption", self.caption),
                ("text", self.text),
                ("style", self.style_image),
            )
            if present
        ]
        return "+".join(parts) or "unconditional"


@dataclass(frozen=True)
class Clip:
    """A rendered talking head with its speech.

    video: uint8 ``[F, H, W, 3]`` RGB frames at ``fps``.
    audio: float32 ``[S]`` mono in [-1, 1] at ``sample_rate``.
    """

    video: np.ndarray
    audio: np.ndarray
    fps: int = VIDEO_FPS
    sample_rate: int = AUDIO_RATE
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.video.dtype != np.uint8 or self.video.ndim != 4 or self.video.shape[-1] != 3:
            raise ValueError(f"video must be uint8 [F, H, W, 3], got {self.video.dtype} {self.video.shape}")
        if self.video.shape[0] < 1:
            raise ValueError("a clip needs at least one frame")
        if self.audio.dtype != np.float32 or self.audio.ndim != 1:
            raise ValueError(f"audio must be float32 [S], got {self.audio.dtype} {self.audio.shape}")
        if self.fps <= 0 or self.sample_rate <= 0:
            raise ValueError("fps and sample_rate must be positive")

    @property
    def seconds(self) -> float:
        return self.video.shape[0] / self.fps


@dataclass(frozen=True)
class Chunk:
    """A piece of a clip, handed out as soon as it is final (``Call.stream``): frames
    ``first_frame .. first_frame + len(video)`` of the utterance and the audio under them.

    The chunks of one utterance joined (``join_chunks``) are the clip ``Call.say`` returns; the last
    one has ``last`` set and carries the clip's ``info``.
    """

    video: np.ndarray  # uint8 [n, H, W, 3]
    audio: np.ndarray  # float32 [n * sample_rate / fps]
    index: int = 0
    first_frame: int = 0
    fps: int = VIDEO_FPS
    sample_rate: int = AUDIO_RATE
    last: bool = False
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.video.dtype != np.uint8 or self.video.ndim != 4 or self.video.shape[-1] != 3 or len(self.video) < 1:
            raise ValueError(f"a chunk's video must be uint8 [n >= 1, H, W, 3], got {self.video.dtype} {self.video.shape}")
        if self.audio.dtype != np.float32 or self.audio.ndim != 1:
            raise ValueError(f"a chunk's audio must be float32 [S], got {self.audio.dtype} {self.audio.shape}")
        if self.audio.shape[0] * self.fps != len(self.video) * self.sample_rate:
            raise ValueError(f"a chunk's audio ({self.audio.shape[0]} samples) must span its {len(self.video)} frames")

    @property
    def seconds(self) -> float:
        return self.video.shape[0] / self.fps


def join_chunks(chunks: Iterable[Chunk]) -> Clip:
    """The clip of one utterance from its chunks, in order (checked: no gap, no repeat, a last one)."""
    chunks = list(chunks)
    if not chunks or not chunks[-1].last:
        raise ValueError("an utterance's chunks end with its last one")
    frame = 0
    for k, chunk in enumerate(chunks):
        if chunk.index != k or chunk.first_frame != frame or (chunk.last and k != len(chunks) - 1):
            raise ValueError(f"chunk {chunk.index} (frame {chunk.first_frame}) out of order: expected {k} at frame {frame}")
        frame += len(chunk.video)
    first = chunks[0]
    return Clip(np.concatenate([c.video for c in chunks]), np.concatenate([c.audio for c in chunks]),
                first.fps, first.sample_rate, info=dict(chunks[-1].info))


def split_clip(clip: Clip, frames: int) -> Iterator[Chunk]:
    """A finished clip as chunks of ``frames`` frames (for generators that render whole clips)."""
    if frames < 1:
        raise ValueError("frames per chunk must be >= 1")
    spf = clip.sample_rate // clip.fps
    n = len(clip.video)
    for k, start in enumerate(range(0, n, frames)):
        stop = min(n, start + frames)
        yield Chunk(clip.video[start:stop], clip.audio[start * spf : stop * spf], k, start, clip.fps, clip.sample_rate,
                    last=stop == n, info=clip.info if stop == n else {})


@runtime_checkable
class Generator(Protocol):
    """request -> clip. Called from the receiver's single generation thread, never the event loop."""

    name: str

    def generate(self, request: Request) -> Clip: ...
