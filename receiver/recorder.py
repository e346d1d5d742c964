"""Recording clips to MP4 (H.264 video + AAC audio, in sync) with PyAV."""

from __future__ import annotations

import logging
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.clip import Clip

logger = logging.getLogger(__name__)

AUDIO_CHUNK = 1024


class Mp4Writer:
    """An open MP4 that clips are appended to; timestamps continue across clips, so video and
    audio stay aligned clip after clip."""

    def __init__(self, path: Path, *, width: int, height: int, fps: int, sample_rate: int, crf: int = 18) -> None:
        self.path = path
        self.size = (height, width)
        self.fps = fps
        self.sample_rate = sample_rate
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w")
        self._video = self._container.add_stream("libx264", rate=fps)
        # yuv420p needs even sizes; pad odd ones by one pixel
        self._video.width = width + width % 2
        self._video.height = height + height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": "veryfast"}
        self._audio = self._container.add_stream("aac", rate=sample_rate, layout="mono")
        self._frames = 0
        self._samples = 0
        self._closed = False

    def append(self, clip: Clip) -> None:
        if (clip.fps, clip.sample_rate) != (self.fps, self.sample_rate):
            raise ValueError("all clips of one file must share fps and sample rate")
        if clip.video.shape[1:3] != self.size:
            raise ValueError(f"frame size {clip.video.shape[1:3]} differs from {self.size}")
        pad_h, pad_w = self._video.height - self.size[0], self._video.width - self.size[1]
        for image in clip.video:
            if pad_h or pad_w:
                image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self._frames
            frame.time_base = Fraction(1, self.fps)
            self._frames += 1
            self._container.mux(self._video.encode(frame))
        # Audio exactly as long as the video, so the next clip starts in sync.
        want = self._frames * self.sample_rate // self.fps - self._samples
        audio = np.zeros(want, np.float32)
        audio[: min(want, clip.audio.size)] = clip.audio[:want]
        for start in range(0, want, AUDIO_CHUNK):
            piece = np.clip(audio[start : start + AUDIO_CHUNK], -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._samples
            frame.time_base = Fraction(1, self.sample_rate)
            self._samples += piece.size
            self._container.mux(self._audio.encode(frame))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._container.mux(self._video.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()


def write_mp4(path: Path, clip: Clip) -> Path:
    height, width = clip.video.shape[1:3]
    writer = Mp4Writer(path, width=width, height=height, fps=clip.fps, sample_rate=clip.sample_rate)
    try:
        writer.append(clip)
    finally:
        writer.close()
    return path


def read_mp4(path: Path) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(video uint8 [F,H,W,3], audio float32 [S], fps, sample_rate) of an MP4, for checks and reports."""
    with av.open(str(path)) as container:
        frames, chunks = [], []
        fps = float(container.streams.video[0].average_rate or 0)
        rate = container.streams.audio[0].rate if container.streams.audio else 0
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                chunks.append(frame.to_ndarray().mean(axis=0).astype(np.float32))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return np.stack(frames), audio, fps, rate


class SessionRecorder:
    """Writes each clip to ``NNNN.mp4`` and appends it to ``session.mp4`` (closed with the session)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._session: Mp4Writer | None = None
        self._lock = threading.Lock()
        self._closed = False

    def write(self, seq: int, clip: Clip) -> tuple[Path, ...]:
        with self._lock:
            path = write_mp4(self.folder / f"{seq:04d}.mp4", clip)
            if self._closed:
                return (path,)
            try:
                if self._session is None:
                    height, width = clip.video.shape[1:3]
                    self._session = Mp4Writer(
                        self.folder / "session.mp4",
                        width=width,
                        height=height,
                        fps=clip.fps,
                        sample_rate=clip.sample_rate,
                    )
                self._session.append(clip)
            except ValueError as exc:
                logger.warning("%s: clip %d not added to session.mp4: %s", self.folder, seq, exc)
            return (path,)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._session is not None:
                self._session.close()
