"""What a generator is asked for and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class Generator(Protocol):
    """request -> clip. Called from the receiver's single generation thread, never the event loop."""

    name: str

    def generate(self, request: Request) -> Clip: ...
