"""MP4 files (H.264 video + AAC audio, in sync) with PyAV: the one writer and reader textcall uses.

The receiver's recorder, ``textcall sample``, the corpus synthesizer and the evaluation all write
through ``Mp4Writer``; clips appended one after another keep video and audio aligned because the
audio written for each clip is exactly as long as its video.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.clip import Clip

AUDIO_CHUNK = 1024


class Mp4Writer:
    """An open MP4 that clips are appended to; timestamps continue across clips."""

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: int,
        sample_rate: int,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        self.path = Path(path)
        self.size = (height, width)
        self.fps = fps
        self.sample_rate = sample_rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w", format="mp4")  # the format by name: a path may end in .part
        self._video = self._container.add_stream("libx264", rate=fps)
        # yuv420p needs even sizes; odd ones are padded by one pixel
        self._video.width = width + width % 2
        self._video.height = height + height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio = self._container.add_stream("aac", rate=sample_rate, layout="mono")
        self._frames = 0
        self._samples = 0
        self._closed = False

    def append(self, video: np.ndarray, audio: np.ndarray) -> None:
        """video uint8 ``[F, H, W, 3]`` RGB, audio float32 ``[S]`` in [-1, 1] (trimmed or padded
        with silence to the video's length)."""
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"video must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
        if video.shape[1:3] != self.size:
            raise ValueError(f"frame size {video.shape[1:3]} differs from {self.size}")
        pad_h, pad_w = self._video.height - self.size[0], self._video.width - self.size[1]
        for image in video:
            if pad_h or pad_w:
                image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = self._frames, Fraction(1, self.fps)
            self._frames += 1
            self._container.mux(self._video.encode(frame))
        want = self._frames * self.sample_rate // self.fps - self._samples
        pcm = np.zeros(want, np.float32)
        pcm[: min(want, audio.size)] = audio[:want]
        for start in range(0, want, AUDIO_CHUNK):
            piece = np.clip(pcm[start : start + AUDIO_CHUNK], -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = self.sample_rate, self._samples, Fraction(1, self.sample_rate)
            self._samples += piece.size
            self._container.mux(self._audio.encode(frame))

    def append_clip(self, clip: Clip) -> None:
        if (clip.fps, clip.sample_rate) != (self.fps, self.sample_rate):
            raise ValueError("all clips of one file must share fps and sample rate")
        self.append(clip.video, clip.audio)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._container.mux(self._video.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_mp4(
    path: str | Path, video: np.ndarray, audio: np.ndarray, *, fps: int, sample_rate: int, crf: int = 18,
    preset: str = "veryfast",
) -> Path:
    """One clip to ``path``, written beside it as ``.NAME.part`` and renamed when complete (a crash
    never leaves a half-written file under the final name); returns the path."""
    path = Path(path)
    part = partial_path(path)
    height, width = video.shape[1:3]
    try:
        with Mp4Writer(part, width=width, height=height, fps=fps, sample_rate=sample_rate, crf=crf, preset=preset) as writer:
            writer.append(video, audio)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def partial_path(path: str | Path) -> Path:
    """Where a file is written before it is complete: ``.NAME.part`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.part")


def write_clip(path: str | Path, clip: Clip) -> Path:
    return write_mp4(path, clip.video, clip.audio, fps=clip.fps, sample_rate=clip.sample_rate)


def read_mp4(path: str | Path) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(video uint8 ``[F, H, W, 3]``, audio float32 ``[S]`` mono, fps, sample_rate) of an MP4."""
    with av.open(str(path)) as container:
        frames, chunks = [], []
        fps = float(container.streams.video[0].average_rate or 0)
        rate = container.streams.audio[0].rate if container.streams.audio else 0
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                chunks.append(frame.to_ndarray().mean(axis=0).astype(np.float32))  # planar [C, n] -> mono
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return np.stack(frames), audio, fps, rate


def contact_sheet(rows: Sequence[tuple[str, np.ndarray]], path: str | Path, columns: int = 6, scale: int | None = None) -> Path | None:
    """One row per clip, ``(label, video uint8 [F, H, W, 3])``: ``columns`` evenly spaced frames
    under a label strip, scaled up by ``scale`` (default: 2 for frames up to 64 pixels, else 1); rows
    of other widths are padded white. A PNG."""
    import cv2

    if not rows:
        return None
    scale = scale or (2 if rows[0][1].shape[1] <= 64 else 1)
    lines = []
    for label, video in rows:
        picks = np.linspace(0, video.shape[0] - 1, columns).round().astype(int)
        line = np.concatenate([video[i] for i in picks], axis=1)
        line = cv2.resize(line, (line.shape[1] * scale, line.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        strip = np.full((18, line.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        lines.append(np.concatenate([strip, line], axis=0))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    path = Path(path)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(lines, axis=0), cv2.COLOR_RGB2BGR))
    return path


def image_grid(images: np.ndarray | Sequence[np.ndarray], path: str | Path, columns: int = 8, scale: int = 2,
               labels: Sequence[str] | None = None) -> Path | None:
    """Still images uint8 ``[N, H, W, 3]`` RGB in rows of ``columns``, scaled up by ``scale`` (nearest),
    each with an optional label strip above it; a PNG (e.g. sampled portraits, call faces)."""
    import cv2

    images = [np.asarray(im) for im in images]
    if not images:
        return None
    h, w = images[0].shape[:2]
    strip = 14 if labels else 0
    tiles = []
    for i, im in enumerate(images):
        tile = cv2.resize(im, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        if strip:
            band = np.full((strip, tile.shape[1], 3), 255, np.uint8)
            cv2.putText(band, str(labels[i])[:24], (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1, cv2.LINE_AA)
            tile = np.concatenate([band, tile], axis=0)
        tiles.append(tile)
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[r : r + columns], axis=1) for r in range(0, len(tiles), columns)]
    path = Path(path)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return path
