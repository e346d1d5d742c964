"""Recording clips to MP4 (H.264 video + AAC audio, in sync) with PyAV."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from model.clip import Clip
from model.media import Mp4Writer, read_mp4
from model.media import write_clip as write_mp4  # one clip to a path (H.264 + AAC)

__all__ = ["Mp4Writer", "SessionRecorder", "read_mp4", "write_mp4"]

logger = logging.getLogger(__name__)


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
                self._session.append_clip(clip)
            except ValueError as exc:
                logger.warning("%s: clip %d not added to session.mp4: %s", self.folder, seq, exc)
            return (path,)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._session is not None:
                self._session.close()
