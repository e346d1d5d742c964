"""What every voice returns and how a speaker is chosen.

A ``Voice`` turns text into ``Speech``: a 16 kHz float32 waveform in [-1, 1] with, where the
engine gives them, the start and end of every word and phoneme. Speakers carry a gender when
it is known, so a caption such as "A woman is talking" picks a female speaker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from model.audio import resample

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
GENDERS = ("female", "male")
_TIME_SLACK = 1e-6  # seconds of float error tolerated at the end of the audio


class VoiceError(RuntimeError):
    """A voice could not be loaded or could not speak."""


class Timed(NamedTuple):
    """A word or phoneme and where it sounds, in seconds from the start of the waveform."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class SpeakerInfo:
    id: str
    gender: str | None  # "female", "male" or None when unknown

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a speaker needs an id")
        if self.gender not in (*GENDERS, None):
            raise ValueError(f"gender must be 'female', 'male' or None, got {self.gender!r}")


@dataclass(frozen=True)
class Speech:
    """A synthesized utterance. ``phonemes`` and ``words`` are in time order and inside the audio."""

    audio: np.ndarray  # float32 [S] in [-1, 1]
    sample_rate: int = SAMPLE_RATE
    phonemes: tuple[Timed, ...] = ()
    words: tuple[Timed, ...] = ()

    def __post_init__(self) -> None:
        audio = self.audio
        if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError(f"audio must be a 1-D float32 array, got {getattr(audio, 'dtype', type(audio))} "
                             f"{getattr(audio, 'shape', '')}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        for kind in ("phonemes", "words"):
            items = tuple(Timed(*t) for t in getattr(self, kind))
            object.__setattr__(self, kind, items)
            last = 0.0
            for t in items:
                if not 0.0 <= t.start <= t.end <= self.duration + _TIME_SLACK or t.start < last:
                    raise ValueError(f"{kind} out of order or outside the {self.duration:.3f} s of audio: {t}")
                last = t.start

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.audio.shape[0] / self.sample_rate

    @staticmethod
    def empty(sample_rate: int = SAMPLE_RATE) -> Speech:
        return Speech(np.zeros(0, np.float32), sample_rate)


@runtime_checkable
class Voice(Protocol):
    """Text -> 16 kHz ``Speech``. ``speaker`` is an id from ``speakers()``; ``None`` picks the first."""

    name: str

    def speakers(self) -> list[SpeakerInfo]: ...

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech: ...


def choose_speaker(voice: Voice, gender: str | None, rng: np.random.Generator) -> str:
    """A speaker id of ``gender`` drawn with ``rng``; any speaker when ``gender`` is None.

    When the voice knows no genders at all, a gendered request falls back to any speaker with a
    warning; when it knows some but none of ``gender``, that is an error.
    """
    if gender not in (*GENDERS, None):
        raise ValueError(f"gender must be 'female', 'male' or None, got {gender!r}")
    speakers = voice.speakers()
    if not speakers:
        raise VoiceError(f"voice {voice.name!r} has no speakers")
    if gender is None:
        pool = speakers
    elif all(s.gender is None for s in speakers):
        logger.warning("voice %s does not know its speakers' genders; choosing a %s speaker at random among all %d",
                       voice.name, gender, len(speakers))
        pool = speakers
    else:
        pool = [s for s in speakers if s.gender == gender]
        if not pool:
            known = sorted({s.gender for s in speakers if s.gender})
            raise VoiceError(f"voice {voice.name!r} has no {gender} speaker (it has {', '.join(known)} speakers)")
    return pool[int(rng.integers(len(pool)))].id


_FEMALE_WORDS = r"woman|women|female|girl|girls|lady|ladies|she|her|hers|herself|mother|mom|daughter|sister|wife|grandmother|actress|queen"
_MALE_WORDS = r"man|men|male|boy|boys|guy|guys|gentleman|gentlemen|he|him|his|himself|father|dad|son|brother|husband|grandfather|actor|king"
_RE_FEMALE = re.compile(rf"\b(?:{_FEMALE_WORDS})\b", re.IGNORECASE)
_RE_MALE = re.compile(rf"\b(?:{_MALE_WORDS})\b", re.IGNORECASE)


def gender_of_caption(caption: str | None) -> str | None:
    """``'female'``, ``'male'`` or ``None`` (no caption, no gendered word, or both genders named)."""
    if not caption:
        return None
    female, male = bool(_RE_FEMALE.search(caption)), bool(_RE_MALE.search(caption))
    if female == male:
        return None
    return "female" if female else "male"


class MixedVoice:
    """Several voices as one: each speaker id is ``<engine>:<its id>``, and the speakers of each
    gender come from the first engine that has that gender (``load_voice("mixed")``: Piper's and Kokoro's neural
    voices where installed, espeak-ng's for the rest)."""

    name = "mixed"

    def __init__(self, engines: Sequence[Voice]) -> None:
        self.engines = {e.name: e for e in engines}
        self._speakers: list[SpeakerInfo] = []
        taken: set[str | None] = set()
        for engine in engines:
            genders = {s.gender for s in engine.speakers()} - taken
            self._speakers += [SpeakerInfo(f"{engine.name}:{s.id}", s.gender) for s in engine.speakers() if s.gender in genders]
            taken |= genders
        if not self._speakers:
            raise VoiceError("a mixed voice needs at least one speaker")

    def speakers(self) -> list[SpeakerInfo]:
        return list(self._speakers)

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        return join(list(self.stream(text, speaker=speaker)))

    def stream(self, text: str, *, speaker: str | None = None) -> Iterator[Speech]:
        speaker = speaker or self._speakers[0].id
        engine, _, inner = speaker.partition(":")
        if engine not in self.engines or speaker not in {s.id for s in self._speakers}:
            raise ValueError(f"unknown speaker {speaker!r}; choose one of {', '.join(s.id for s in self._speakers)}")
        return speak_stream(self.engines[engine], text, inner)


def speak_stream(voice: Voice, text: str, speaker: str | None = None) -> Iterator[Speech]:
    """The voice's speech for ``text`` in pieces (sentences, pauses) whose concatenation is its
    ``synthesize(text)``: the engine's own ``stream`` where it has one, else the whole at once."""
    stream = getattr(voice, "stream", None)
    if stream is not None:
        return iter(stream(text, speaker=speaker))
    return iter([voice.synthesize(text, speaker=speaker)])


# ------------------------------------------------------------------------------ engine helpers
def sentence_by_sentence(text: str, max_chars: int, say: Callable[[str], Speech], pause_s: float = 0.0) -> Iterator[Speech]:
    """An engine's ``stream``: ``text`` normalized (``model.speech.normalize``), split into sentences of at
    most ``max_chars``, each said by ``say``, with ``pause_s`` of silence between them as pieces of their own."""
    from model.speech.normalize import normalize
    from model.speech.sentences import split_sentences

    said = normalize(text)
    for k, sentence in enumerate(split_sentences(said, max_chars) if said else ()):
        if k and pause_s:
            yield Speech(np.zeros(int(round(pause_s * SAMPLE_RATE)), np.float32))
        yield say(sentence)


IPA_MARKS = {"ˈ", "ˌ", "ː"}  # stress and length marks: part of the phoneme before or after


def words_between_spaces(phonemes: Sequence[Timed], text: str) -> tuple[Timed, ...]:
    """Word timings from IPA phoneme timings (Piper's, Kokoro's): the phonemes between spaces (and
    punctuation), labelled with the text's words when there are as many."""
    groups: list[list[Timed]] = [[]]
    for p in phonemes:
        if p.label.strip() == "" or re.fullmatch(r"[^\w" + "".join(IPA_MARKS) + r"]+", p.label):
            if groups[-1]:
                groups.append([])
        else:
            groups[-1].append(p)
    groups = [g for g in groups if g]
    names = re.findall(r"[\w']+", text)
    labels = names if len(names) == len(groups) else ["".join(p.label for p in g) for g in groups]
    return tuple(Timed(label, g[0].start, g[-1].end) for label, g in zip(labels, groups))


def at_speech_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """An engine's float ``audio`` [S] at ``rate`` Hz as ``Speech`` holds it: float32 at ``SAMPLE_RATE``
    in [-1, 1] (``model.audio.resample``, then clipped: the filter may ring past full scale)."""
    return np.clip(resample(audio, rate, SAMPLE_RATE), -1.0, 1.0)


def join(pieces: Sequence[Speech], gap_s: float = 0.0) -> Speech:
    """Concatenate utterances (same rate) with ``gap_s`` of silence between them; timings shifted."""
    if not pieces:
        return Speech.empty()
    rate = pieces[0].sample_rate
    if any(p.sample_rate != rate for p in pieces):
        raise ValueError("cannot join speech of different sample rates")
    gap = np.zeros(int(round(gap_s * rate)), np.float32)
    audio, phonemes, words, offset = [], [], [], 0
    for i, piece in enumerate(pieces):
        if i and gap.size:
            audio.append(gap)
            offset += gap.size
        t0 = offset / rate
        phonemes += [Timed(p.label, p.start + t0, p.end + t0) for p in piece.phonemes]
        words += [Timed(w.label, w.start + t0, w.end + t0) for w in piece.words]
        audio.append(piece.audio)
        offset += piece.audio.shape[0]
    total = offset / rate
    clamp: Callable[[Timed], Timed] = lambda t: Timed(t.label, min(t.start, total), min(t.end, total))  # noqa: E731
    return Speech(np.concatenate(audio), rate, tuple(map(clamp, phonemes)), tuple(map(clamp, words)))
