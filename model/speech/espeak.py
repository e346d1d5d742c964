"""The offline default voice: espeak-ng, with word and phoneme timings, resampled to 16 kHz.

The library binding lives in ``model.speech.libespeak`` (ctypes, synchronous mode, events from
the synth callback); this module adds speakers, normalization, sentence chunking and the
22,050 -> 16,000 Hz polyphase resampling. Timings are in seconds, so resampling keeps them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from model.speech import libespeak
from model.speech.voice import (SAMPLE_RATE, SpeakerInfo, Speech, Timed, VoiceError, at_speech_rate, join,
                                sentence_by_sentence)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EspeakSpeaker:
    """An espeak-ng voice variant with its pitch settings (0..100)."""

    id: str
    voice: str
    gender: str
    pitch: int
    pitch_range: int = 50

    def __post_init__(self) -> None:
        if self.gender not in ("female", "male"):
            raise ValueError(f"gender must be 'female' or 'male', got {self.gender!r}")
        if not (0 <= self.pitch <= 100 and 0 <= self.pitch_range <= 100):
            raise ValueError("pitch and pitch_range must be within 0..100")


# American English variants f1..f4 and m1..m4; the pitch settings spread the speakers apart.
# Median F0 measured here (autocorrelation, one 5 s sentence): f1 167, f4 188, f2 213, f3 239 Hz;
# m4 91, m2 100, m3 112, m1 126 Hz.
SPEAKERS: tuple[EspeakSpeaker, ...] = (
    EspeakSpeaker("en-us+f1", "en-us+f1", "female", 44),
    EspeakSpeaker("en-us+f2", "en-us+f2", "female", 60),
    EspeakSpeaker("en-us+f3", "en-us+f3", "female", 66),
    EspeakSpeaker("en-us+f4", "en-us+f4", "female", 56),
    EspeakSpeaker("en-us+m1", "en-us+m1", "male", 80),
    EspeakSpeaker("en-us+m2", "en-us+m2", "male", 50),
    EspeakSpeaker("en-us+m3", "en-us+m3", "male", 58),
    EspeakSpeaker("en-us+m4", "en-us+m4", "male", 32),
)


class EspeakVoice:
    """``Voice`` over espeak-ng. ``rate`` in words per minute; text longer than ``max_chars`` is
    spoken sentence by sentence and joined (espeak-ng's own sentence pauses stay)."""

    name = "espeak"

    def __init__(self, *, rate: int = 170, max_chars: int = 400, speakers: tuple[EspeakSpeaker, ...] = SPEAKERS) -> None:
        if not 80 <= rate <= 450:
            raise ValueError(f"rate {rate} outside 80..450 words per minute")
        if not speakers:
            raise ValueError("an espeak voice needs at least one speaker")
        self.rate = rate
        self.max_chars = max_chars
        self._speakers = {s.id: s for s in speakers}

    def speakers(self) -> list[SpeakerInfo]:
        return [SpeakerInfo(s.id, s.gender) for s in self._speakers.values()]

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        return join(list(self.stream(text, speaker=speaker)))

    def stream(self, text: str, *, speaker: str | None = None):
        """``synthesize``'s speech sentence by sentence (joined, they are what it returns)."""
        spk = self._speaker(speaker)
        yield from sentence_by_sentence(text, self.max_chars, lambda sentence: self._sentence(sentence, spk))

    def _speaker(self, speaker: str | None) -> EspeakSpeaker:
        if speaker is None:
            return next(iter(self._speakers.values()))
        try:
            return self._speakers[speaker]
        except KeyError:
            raise ValueError(f"unknown espeak speaker {speaker!r}; choose one of {', '.join(self._speakers)}") from None

    def _sentence(self, text: str, spk: EspeakSpeaker) -> Speech:
        try:
            raw = libespeak.synthesize(text, voice=spk.voice, rate=self.rate, pitch=spk.pitch, pitch_range=spk.pitch_range)
        except (libespeak.EspeakError, OSError) as exc:
            raise VoiceError(f"espeak-ng failed: {exc}") from exc
        audio = at_speech_rate(raw.audio, raw.sample_rate)  # [S] at 16 kHz
        total = audio.shape[0] / SAMPLE_RATE

        def fit(items) -> tuple[Timed, ...]:
            return tuple(Timed(t.label, min(t.start, total), min(t.end, total)) for t in items)

        return Speech(audio, SAMPLE_RATE, fit(raw.phonemes), fit(raw.words))
