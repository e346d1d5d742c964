"""One utterance's speech as the voice makes it: the first sentences at once, the rest later."""

from __future__ import annotations

import time

import numpy as np

from model.call import GenerationError
from model.clip import AUDIO_RATE


class Speaking:
    """One utterance's speech as the voice makes it, sentence by sentence: ``first`` (the first
    sentences, at least ``need`` samples when there are that many) at once, enough for the first
    chunk; ``whole()`` says the rest, after that chunk is out. Joined, the pieces are what
    ``voice.synthesize(text)`` returns (the engines' ``stream``). On a CPU the rest is made after
    the first chunk rather than beside it: the two would only share the same cores, and the first
    frame is what a caller waits for."""

    def __init__(self, voice, text: str, speaker: str, need: int, max_seconds: float) -> None:
        from model.speech.voice import speak_stream

        self.voice, self.speaker, self.max_seconds = voice, speaker, max_seconds
        self._pieces = speak_stream(voice, text, speaker)
        head: list[np.ndarray] = []
        self.complete = False
        while sum(len(a) for a in head) < need:
            piece = next(self._pieces, None)
            if piece is None:
                self.complete = True
                break
            head.append(self._check(piece))
        self.first = np.concatenate(head) if head else np.zeros(0, np.float32)
        self._check_length(len(self.first))
        self._whole: np.ndarray | None = self.first if self.complete else None

    @property
    def empty(self) -> bool:
        return self.complete and self.first.size == 0

    def _check(self, piece) -> np.ndarray:
        if piece.sample_rate != AUDIO_RATE:
            raise RuntimeError(f"voice {self.voice.name} returned {piece.sample_rate} Hz, expected {AUDIO_RATE}")
        return np.asarray(piece.audio, dtype=np.float32)

    def _check_length(self, samples: int) -> None:
        if samples / AUDIO_RATE > self.max_seconds:
            raise GenerationError(
                f"the text makes over {samples / AUDIO_RATE:.0f} s of speech, more than this receiver's limit of "
                f"{self.max_seconds:.0f} s per utterance; send it in parts")

    def whole(self, timings: dict | None = None) -> np.ndarray:
        """All of the speech (float32 [S]): the rest is said now, the first time this is asked."""
        if self._whole is None:
            t0 = time.perf_counter()
            parts, total = [self.first], len(self.first)
            for piece in self._pieces:
                parts.append(self._check(piece))
                total += len(parts[-1])
                self._check_length(total)  # stop early: speech that will be refused is not made
            self._whole, self.complete = np.concatenate(parts), True
            if timings is not None:
                timings["voice"] = timings.get("voice", 0.0) + time.perf_counter() - t0
        return self._whole
