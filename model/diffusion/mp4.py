"""Writing a generated chunk as MP4 (H.264 + AAC) with PyAV, for ``textcall sample``.

(The receiver has its own streaming recorder; ``model`` may not import ``receiver``.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_mp4(path: str | Path, video: np.ndarray, audio: np.ndarray, *, fps: int, sample_rate: int) -> Path:
    """video uint8 ``[F, H, W, 3]``, audio float32 ``[S]`` in [-1, 1] -> ``path``."""
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = video.shape[1:3]
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = width + width % 2, height + height % 2
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": "18", "preset": "veryfast"}
        astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        for i, image in enumerate(video):
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        clean = np.clip(audio.astype(np.float32), -1.0, 1.0)
        for start in range(0, clean.size, 1024):
            piece = clean[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            container.mux(astream.encode(frame))
        container.mux(astream.encode(None))
    return path
