"""Live playback: audio through sounddevice, video in an OpenCV window, both on one clock.

The audio device is the master clock: the frame shown is the one whose time matches the samples the
device has consumed, so video never drifts from speech. Without an audio device the wall clock
stands in; without a display only the audio plays. With neither, the player says so once and the
receiver relies on its recordings.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time

import numpy as np

from model.clip import Clip

logger = logging.getLogger(__name__)


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def has_audio_output() -> bool:
    try:
        import sounddevice as sd

        sd.query_devices(kind="output")
        return True
    except Exception:  # OSError without PortAudio, PortAudioError without a device
        return False


class Player:
    """Plays clips in order on a thread of its own. ``play()`` never blocks the caller."""

    def __init__(self, *, video: bool, audio: bool, scale: int = 4, backlog: int = 32) -> None:
        self.video = video
        self.audio = audio
        self.scale = scale
        self._queue: queue.Queue[tuple[str, Clip] | None] = queue.Queue(maxsize=backlog)
        self._thread = threading.Thread(target=self._run, name="textcall-player", daemon=True)
        self._thread.start()
        self.played = 0

    @classmethod
    def create(cls, **kwargs) -> Player | None:
        video, audio = has_display(), has_audio_output()
        if not video and not audio:
            logger.warning("no display and no audio device: live playback is off, recording only")
            return None
        if not video:
            logger.warning("no display: playing audio only (video is recorded)")
        if not audio:
            logger.warning("no audio output device: playing video only (audio is recorded)")
        return cls(video=video, audio=audio, **kwargs)

    def play(self, title: str, clip: Clip) -> None:
        try:
            self._queue.put_nowait((title, clip))
        except queue.Full:
            logger.warning("player is %d clips behind; skipping one (it is recorded)", self._queue.qsize())

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------- thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                self._play(*item)
                self.played += 1
            except Exception:
                logger.exception("playback failed; turning video/audio off for this clip")
        if self.video:
            import cv2

            cv2.destroyAllWindows()

    def _play(self, title: str, clip: Clip) -> None:
        clock, stop = self._start_audio(clip) if self.audio else self._wall_clock()
        try:
            shown = -1
            duration = clip.seconds
            while (now := clock()) < duration:
                index = min(int(now * clip.fps), clip.video.shape[0] - 1)
                if self.video and index != shown:
                    self._show(title, clip.video[index])
                    shown = index
                time.sleep(0.002 if self.video else 0.01)
        finally:
            stop()

    def _wall_clock(self):
        start = time.monotonic()
        return (lambda: time.monotonic() - start), (lambda: None)

    def _start_audio(self, clip: Clip):
        import sounddevice as sd

        audio = clip.audio.astype(np.float32)
        position = [0]

        def callback(outdata, frames, _time, _status) -> None:
            chunk = audio[position[0] : position[0] + frames]
            outdata[: chunk.size, 0] = chunk
            outdata[chunk.size :, 0] = 0.0
            position[0] += frames

        stream = sd.OutputStream(
            samplerate=clip.sample_rate, channels=1, dtype="float32", callback=callback
        )
        stream.start()
        latency = float(stream.latency or 0.0)

        def clock() -> float:
            return max(0.0, position[0] / clip.sample_rate - latency)

        def stop() -> None:
            stream.stop()
            stream.close()

        return clock, stop

    def _show(self, title: str, frame: np.ndarray) -> None:
        import cv2

        height, width = frame.shape[:2]
        big = cv2.resize(frame, (width * self.scale, height * self.scale), interpolation=cv2.INTER_CUBIC)
        cv2.imshow(title, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)
