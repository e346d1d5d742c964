"""Recording clips to MP4 (H.264 video + AAC audio, in sync) with PyAV, crash-safe.

Each clip is written to a hidden ``.NNNN.mp4.part`` and renamed to ``NNNN.mp4`` when complete. The whole
call is appended to ``.session.mp4.part`` as clips arrive and renamed to ``session.mp4`` when the session
closes. After a crash (a kill, a power cut), ``recover_recordings`` at the next start rebuilds each
unfinished ``session.mp4`` from the session's complete clips and removes the partial files, so no file
under a final name is ever corrupt and the whole-call recording is never lost.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from model import Clip, Mp4Writer, partial_path, read_mp4
from model import write_clip as write_mp4  # one clip to a path (H.264 + AAC)

__all__ = ["Mp4Writer", "SessionRecorder", "read_mp4", "recover_recordings", "write_mp4"]

SESSION_FILE = "session.mp4"

logger = logging.getLogger(__name__)


class SessionRecorder:
    """Writes each clip to ``NNNN.mp4`` and appends it to ``session.mp4`` (complete when the session closes)."""

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
                        partial_path(self.folder / SESSION_FILE),
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
                os.replace(self._session.path, self.folder / SESSION_FILE)
                self._session = None


def recover_recordings(root: Path) -> list[Path]:
    """Finish what a crash left in the recording folders under ``root``: every unfinished whole-call
    recording is rebuilt from its session's complete clips (in sequence order) as ``session.mp4``, and
    partial files are removed. Returns the rebuilt recordings. Runs at the receiver's start."""
    rebuilt: list[Path] = []
    if not root.is_dir():
        return rebuilt
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        partial = partial_path(folder / SESSION_FILE)
        if partial.exists():
            clips = sorted(folder.glob("[0-9][0-9][0-9][0-9]*.mp4"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
            writer = None
            try:
                for path in clips:
                    video, audio, fps, rate = read_mp4(path)
                    if writer is None:
                        writer = Mp4Writer(partial, width=video.shape[2], height=video.shape[1], fps=round(fps), sample_rate=rate)
                    writer.append(video, audio)
            except Exception as exc:  # noqa: BLE001 - a damaged clip must not stop the receiver from starting
                logger.warning("%s: the whole-call recording could not be rebuilt past a damaged clip: %s", folder, exc)
            if writer is not None:
                writer.close()
                os.replace(partial, folder / SESSION_FILE)
                rebuilt.append(folder / SESSION_FILE)
                logger.info("%s: rebuilt %s from %d clips after an unclean stop", folder, SESSION_FILE, len(clips))
        for leftover in folder.glob(".*.part"):
            leftover.unlink(missing_ok=True)
    return rebuilt
