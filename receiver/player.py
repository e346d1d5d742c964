"""Live playback: audio through sounddevice, video in an OpenCV window, both on one clock.

Chunks play as they are made (``Player.feed``, from the session's live chunks): an utterance starts
playing with its first chunk, not after the whole clip is rendered. The audio device is the master
clock: the frame shown is the one under the samples the device has consumed (``Timeline``), so video
never drifts from speech, and a late chunk pauses both (a stall, counted). Without an audio device
the wall clock stands in; without a display only the audio plays. With neither, the player says so
once and the receiver relies on its recordings.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque

import numpy as np

from model import Chunk, Clip, split_clip

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


class Timeline:
    """Media queued for playback, chunk by chunk, read by the audio device (or the wall clock).

    The read position moves only over media that is there: when the next chunk is late, sound and
    picture pause together (a *stall*, counted) instead of drifting apart, and play on when it
    arrives. Between utterances the device reads silence and the last frame stays up (not a stall).
    Thread-safe: chunks are appended from the receiver's event loop, read from the device's thread.
    """

    def __init__(self, sample_rate: int = 16_000, fps: int = 16, limit_seconds: float = 120.0) -> None:
        self.sample_rate, self.fps = sample_rate, fps
        self.limit = int(limit_seconds * sample_rate)
        self._lock = threading.Lock()
        self._items: deque[tuple[str, np.ndarray, np.ndarray, bool]] = deque()  # title, video, audio, last
        self._queued = 0  # samples not yet read
        self._offset = 0  # samples read of the first item
        self._open = False  # an utterance has started and its last chunk has not come
        self._stalled = False
        self.played_samples = 0
        self.stalls = 0
        self.stalled_samples = 0
        self.dropped = 0  # chunks not queued because playback was too far behind
        self.utterances = 0  # utterances played to their end
        self.frame: tuple[str, np.ndarray] | None = None  # what the picture shows now

    def append(self, title: str, video: np.ndarray, audio: np.ndarray, last: bool) -> bool:
        """Queue a chunk; False (dropped) when more than ``limit_seconds`` are already waiting."""
        with self._lock:
            if self._queued + len(audio) > self.limit:
                self.dropped += 1
                return False
            self._items.append((title, video, np.asarray(audio, np.float32), last))
            self._queued += len(audio)
            self._open = not last
            return True

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples: media where there is some, silence after it."""
        out = np.zeros(n, np.float32)
        got = 0
        with self._lock:
            while got < n and self._items:
                title, video, audio, last = self._items[0]
                take = min(n - got, len(audio) - self._offset)
                out[got : got + take] = audio[self._offset : self._offset + take]
                got += take
                self._offset += take
                index = min(len(video) - 1, max(0, self._offset - 1) * self.fps // self.sample_rate)
                self.frame = (title, video[index])
                if self._offset >= len(audio):
                    self._items.popleft()
                    self._offset = 0
                    self.utterances += last
            self._queued -= got
            self.played_samples += got
            starved = got < n and self._open
            if starved and not self._stalled:
                self.stalls += 1
            self._stalled = starved
            if starved:
                self.stalled_samples += n - got
        return out

    @property
    def queued_seconds(self) -> float:
        return self._queued / self.sample_rate

    @property
    def stalled_seconds(self) -> float:
        return self.stalled_samples / self.sample_rate


class Player:
    """Plays chunks as they arrive, in order, on a thread of its own. ``feed()``/``play()`` never block.

    One ``Timeline`` for the receiver: the generation thread makes one utterance at a time, so the
    chunks of all sessions arrive already in the order they are to be heard.
    """

    def __init__(self, *, video: bool, audio: bool, scale: int = 4, limit_seconds: float = 120.0) -> None:
        self.video = video
        self.audio = audio
        self.scale = scale
        self.timeline = Timeline(limit_seconds=limit_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="textcall-player", daemon=True)
        self._thread.start()

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

    @property
    def played(self) -> int:
        """Utterances played to their end."""
        return self.timeline.utterances

    def feed(self, title: str, chunk: Chunk) -> None:
        """One chunk of the utterance rendering now (``receiver.session.Live``): it plays as soon as
        the ones before it have."""
        if chunk.sample_rate != self.timeline.sample_rate or chunk.fps != self.timeline.fps:
            logger.warning("player: a %d Hz / %d fps chunk on a %d Hz / %d fps timeline; skipped",
                           chunk.sample_rate, chunk.fps, self.timeline.sample_rate, self.timeline.fps)
            return
        if not self.timeline.append(title, chunk.video, chunk.audio, chunk.last):
            logger.warning("player is %.0f s behind; skipping a chunk (it is recorded)", self.timeline.queued_seconds)

    def play(self, title: str, clip: Clip) -> None:
        """A whole clip (one chunk)."""
        self.feed(title, next(split_clip(clip, len(clip.video))))

    def close(self, drain: bool = True) -> None:
        """Stop (after what is queued has played, at most 5 s more, when ``drain``)."""
        deadline = time.monotonic() + 5.0
        while drain and self.timeline.queued_seconds > 0 and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        self._stop.set()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------- thread

    def _run(self) -> None:
        stop_audio = self._start_audio() if self.audio else self._wall_clock()
        shown = None
        try:
            while not self._stop.is_set():
                frame = self.timeline.frame
                if self.video and frame is not None and frame is not shown:
                    try:
                        self._show(*frame)
                    except Exception:
                        logger.exception("player: cannot show video; playing on without it")
                        self.video = False
                    shown = frame
                time.sleep(0.005 if self.video else 0.02)
        finally:
            stop_audio()
            if self.video:
                import cv2

                cv2.destroyAllWindows()

    def _wall_clock(self):
        """No audio device: a thread reads the timeline at the sample rate, as a device would."""
        done = threading.Event()

        def tick() -> None:
            block, start, read = 160, time.monotonic(), 0
            while not done.is_set():
                due = int((time.monotonic() - start) * self.timeline.sample_rate)
                while read + block <= due:
                    self.timeline.read(block)
                    read += block
                time.sleep(0.005)

        thread = threading.Thread(target=tick, name="textcall-player-clock", daemon=True)
        thread.start()
        return lambda: (done.set(), thread.join(timeout=1))

    def _start_audio(self):
        import sounddevice as sd

        def callback(outdata, frames, _time, _status) -> None:
            outdata[:, 0] = self.timeline.read(frames)

        stream = sd.OutputStream(samplerate=self.timeline.sample_rate, channels=1, dtype="float32", callback=callback)
        stream.start()

        def stop() -> None:
            stream.stop()
            stream.close()

        return stop

    def _show(self, title: str, frame: np.ndarray) -> None:
        import cv2

        height, width = frame.shape[:2]
        factor = max(1, self.scale * 64 // max(height, 1))  # ``scale`` is for 64-pixel frames: 256 ones are shown as they are
        big = frame if factor == 1 else cv2.resize(frame, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
        cv2.imshow(title, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)
