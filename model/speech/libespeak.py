"""The ctypes binding to espeak-ng: offline speech with the timing of every word and phoneme.

The library and its data come from the ``espeakng-loader`` wheel; it is driven through ctypes in
synchronous mode, so the synth callback hands back both the samples and the events (WORD, PHONEME,
END) with their ``audio_position`` in milliseconds. espeak-ng keeps global state: it is initialised
once per process and every call holds a lock. Output is mono float32 at the library's rate
(22,050 Hz). ``model.speech.espeak`` makes a ``Voice`` of it; the synthetic corpus
(``model.corpus.synth``) speaks with it directly.

    >>> speech = synthesize("bin blue at f two now", voice="en-us+f3", rate=160, pitch=60)
    >>> speech.audio.shape, speech.sample_rate, speech.phonemes[:2]
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from model.speech.voice import Timed

logger = logging.getLogger(__name__)

# espeak_ng.h / speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 1, 5, 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a call."""


@dataclass(frozen=True)
class Synthesis:
    """What espeak-ng said, at the library's rate and with its own timings (not yet a ``Speech``)."""

    audio: np.ndarray  # float32 [S] in [-1, 1]
    sample_rate: int
    words: list[Timed] = field(default_factory=list)
    phonemes: list[Timed] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.audio.size / self.sample_rate

    def events(self) -> list[tuple[str, float, float]]:
        """Words and phonemes as ``(label, start_s, end_s)``, words prefixed ``"#"``, in time order."""
        items = [("#" + w.label, w.start, w.end) for w in self.words]
        items += [(p.label, p.start, p.end) for p in self.phonemes]
        return sorted(items, key=lambda e: (e[1], not e[0].startswith("#")))


class _Engine:
    """The process-wide espeak-ng instance (the library is not re-entrant)."""

    def __init__(self) -> None:
        import espeakng_loader  # noqa: PLC0415 (heavy-ish, only when speech is needed)

        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EspeakError(f"cannot load libespeak-ng: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()
        logger.debug("espeak-ng initialised at %d Hz", self.sample_rate)

    def _on_synth(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != 0:  # LIST_TERMINATED
            ev = events[i]
            label = ev.id.string.decode("ascii", "replace") if ev.type == _EVENT_PHONEME else ""
            self._events.append((ev.type, ev.audio_position, ev.text_position, ev.length, label))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[np.ndarray, list]:
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"unknown espeak-ng voice {voice!r}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise EspeakError(f"espeak_Synth failed ({status}) for {text!r}")
        lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm, self._events


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def synthesize(text: str, *, voice: str = "en-us", rate: int = 170, pitch: int = 50, pitch_range: int = 50) -> Synthesis:
    """Speak ``text``; return the waveform and the start/end of each word and phoneme.

    ``voice`` is an espeak-ng voice name with an optional variant (``"en-us+f3"``, ``"en-gb+m2"``),
    ``rate`` in words per minute (80..450), ``pitch`` and ``pitch_range`` 0..100.
    """
    if not text.strip():
        raise ValueError("nothing to say")
    if not 80 <= rate <= 450:
        raise ValueError(f"rate {rate} outside 80..450 words per minute")
    engine = _get_engine()
    with engine.lock:
        pcm, raw_events = engine.synth(text, voice, rate, pitch, pitch_range)
    sr = engine.sample_rate
    audio = (pcm.astype(np.float32) / 32768.0).clip(-1.0, 1.0)
    total = audio.size / sr
    end_time = total
    for kind, pos, *_ in raw_events:
        if kind == _EVENT_END:
            end_time = min(total, pos / 1000.0)
    # A phoneme or word lasts until the next one of its kind starts; the last until the end event.
    phon_starts = [(pos / 1000.0, label) for kind, pos, _, _, label in raw_events if kind == _EVENT_PHONEME]
    phonemes = [
        Timed(label.strip(), start, phon_starts[i + 1][0] if i + 1 < len(phon_starts) else end_time)
        for i, (start, label) in enumerate(phon_starts)
    ]
    text_bytes = text.encode("utf-8")
    word_events = [(pos / 1000.0, tpos, length) for kind, pos, tpos, length, _ in raw_events if kind == _EVENT_WORD]
    words = []
    for i, (start, tpos, length) in enumerate(word_events):
        label = text_bytes[max(tpos - 1, 0) : max(tpos - 1, 0) + length].decode("utf-8", "replace")
        end = word_events[i + 1][0] if i + 1 < len(word_events) else end_time
        words.append(Timed(label, start, end))
    return Synthesis(audio, sr, words, phonemes)
