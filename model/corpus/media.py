"""Reading and writing audio-video files with PyAV (which bundles FFmpeg).

Whatever FFmpeg opens is read: GRID's MPEG-1 ``.mpg``, ``.mp4``, ``.avi``. ``read_clip`` returns the
frames and the audio on one clock (a ``MediaClip``): audio sample 0 is heard when frame 0 is shown
(containers may start their streams at different times; the difference is applied here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class MediaError(RuntimeError):
    """A file PyAV cannot open or that holds no usable stream."""


@dataclass(frozen=True)
class MediaClip:
    """A clip as decoded from a media file: frames at the file's own rate (25 for GRID, 29.97 for many
    others) and its audio track if it has one. Not ``model.clip.Clip``, which is what a generator
    renders (16 fps, 16 kHz, audio always there)."""

    frames: np.ndarray  # uint8 [F, H, W, 3] RGB
    fps: float
    audio: np.ndarray | None  # float32 [S] mono in [-1, 1], aligned to frame 0
    sample_rate: int


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames as uint8 ``[F, H, W, 3]`` RGB and the frame rate."""
    frames, fps, _ = _read_frames(path)
    return frames, fps


def _read_frames(path: str | Path) -> tuple[np.ndarray, float, float]:
    import av  # noqa: PLC0415

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames, start = [], None
            for frame in container.decode(stream):
                if start is None:
                    start = float(frame.time or 0.0)
                frames.append(frame.to_ndarray(format="rgb24"))
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            fps = float(rate) if rate else 25.0
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: {exc}") from exc
    if not frames:
        raise MediaError(f"{path}: no decodable frames")
    return np.stack(frames), fps, start or 0.0


def read_audio_track(path: str | Path) -> tuple[np.ndarray, int]:
    audio, rate, _ = _read_audio(path)
    return audio, rate


def _read_audio(path: str | Path) -> tuple[np.ndarray, int, float]:
    import av  # noqa: PLC0415

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks, start = [], None
            for frame in container.decode(stream):
                if start is None:
                    start = float(frame.time or 0.0)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: {exc}") from exc
    if not chunks:
        raise MediaError(f"{path}: no decodable audio")
    return np.concatenate(chunks).astype(np.float32), rate, start or 0.0


def read_clip(path: str | Path, wav: str | Path | None = None) -> MediaClip:
    """Frames and audio of one clip; audio from ``wav`` when given, else from the file's own track.

    A wav file (GRID's ``audio_25k``) is taken to start with frame 0, as GRID's do.
    """
    frames, fps, video_start = _read_frames(path)
    if wav is not None:
        import soundfile as sf  # noqa: PLC0415

        try:
            data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise MediaError(f"{wav}: {exc}") from exc
        return MediaClip(frames, fps, data.mean(axis=1), int(rate))
    try:
        audio, rate, audio_start = _read_audio(path)
    except MediaError:
        return MediaClip(frames, fps, None, 0)
    shift = int(round((audio_start - video_start) * rate))
    if shift > 0:
        audio = np.concatenate([np.zeros(shift, np.float32), audio])
    elif shift < 0:
        audio = audio[-shift:]
    return MediaClip(frames, fps, audio, rate)


def write_mp4(path: str | Path, frames_rgb: np.ndarray, audio: np.ndarray, *, fps: int, sample_rate: int) -> None:
    """H.264 (ultrafast: the corpus is written once and read many times) + AAC in MP4."""
    from model.media import write_mp4 as write  # noqa: PLC0415

    write(path, frames_rgb, audio, fps=fps, sample_rate=sample_rate, crf=20, preset="ultrafast")
