"""The espeak-ng voice: 16 kHz audio, ordered timings, female and male pitch, chunking, speakers, CLI."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from model.speech import SAMPLE_RATE, SpeakerInfo, Speech, Timed, choose_speaker, gender_of_caption, load_voice
from model.speech import libespeak
from model.speech.espeak import EspeakVoice
from model.speech.voice import VoiceError, join

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."


@pytest.fixture(scope="module")
def voice() -> EspeakVoice:
    return load_voice("espeak")


def median_f0(audio: np.ndarray, rate: int) -> float:
    """Median pitch of the voiced 40 ms frames, by normalized autocorrelation (60..400 Hz)."""
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = rate // 400, rate // 60
    window = np.hanning(frame)
    pitches = []
    for i in range(0, audio.size - frame, hop):
        w = audio[i : i + frame] * window
        if np.sqrt(np.mean(w**2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[frame - 1 :]
        ac = ac / ac[0]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5:
            pitches.append(rate / k)
    assert len(pitches) > 20, "too few voiced frames to measure pitch"
    return float(np.median(pitches))


def check_timings(speech: Speech) -> None:
    for items in (speech.phonemes, speech.words):
        starts = [t.start for t in items]
        assert starts == sorted(starts)
        assert all(0 <= t.start <= t.end <= speech.duration + 1e-6 for t in items)


def test_16khz_with_ordered_timings_inside_the_audio(voice: EspeakVoice) -> None:
    speech = voice.synthesize("Dr. Smith paid $5.20 at 3:30 pm.", speaker="en-us+f3")
    assert speech.sample_rate == SAMPLE_RATE == 16_000
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert 2.0 < speech.duration < 8.0 and np.abs(speech.audio).max() <= 1.0
    assert np.sqrt(np.mean(speech.audio**2)) > 0.01  # not silence
    check_timings(speech)
    assert len(speech.phonemes) > 20 and all(isinstance(p, Timed) for p in speech.phonemes)
    assert [w.label for w in speech.words][:5] == ["Doctor", "Smith", "paid", "five", "dollars"]
    # the last word ends close to the end of the audio
    assert speech.duration - speech.words[-1].end < 0.5


def test_female_speakers_are_higher_than_male(voice: EspeakVoice) -> None:
    pitch = {s.id: median_f0(voice.synthesize(SENTENCE, speaker=s.id).audio, SAMPLE_RATE) for s in voice.speakers()}
    female = [pitch[s.id] for s in voice.speakers() if s.gender == "female"]
    male = [pitch[s.id] for s in voice.speakers() if s.gender == "male"]
    print("median F0 (Hz):", {k: round(v) for k, v in pitch.items()})
    assert len(female) == len(male) == 4
    assert min(female) > 1.2 * max(male), pitch
    assert 140 < np.median(female) < 300 and 70 < np.median(male) < 150
    # speakers of one gender differ from each other
    for group in (female, male):
        ordered = sorted(group)
        assert min(b - a for a, b in zip(ordered, ordered[1:], strict=False)) > 4.0, pitch


def test_long_text_is_spoken_in_chunks(voice: EspeakVoice, monkeypatch) -> None:
    calls: list[str] = []
    real = libespeak.synthesize

    def spy(text: str, **kwargs):
        calls.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(libespeak, "synthesize", spy)
    text = "".join(f"This is sentence number {i} of a long text that goes on and on. " for i in range(80))
    assert len(text) > 5000
    speech = voice.synthesize(text, speaker="en-us+m2")
    assert len(calls) == 80 and max(map(len, calls)) <= voice.max_chars
    assert speech.duration > 200  # minutes of speech
    check_timings(speech)
    assert len(speech.words) > 80 * 12
    assert speech.words[-1].start > speech.duration - 5


def test_one_huge_sentence_is_cut(voice: EspeakVoice, monkeypatch) -> None:
    calls: list[str] = []
    real = libespeak.synthesize
    monkeypatch.setattr(libespeak, "synthesize", lambda text, **kw: calls.append(text) or real(text, **kw))
    speech = voice.synthesize("and then " * 300)  # 2,700 characters, no full stop
    assert len(calls) > 5 and max(map(len, calls)) <= voice.max_chars
    check_timings(speech)


@pytest.mark.parametrize("text", ["", "   ", "\U0001f600", "..."])
def test_nothing_to_say_gives_empty_speech(voice: EspeakVoice, text: str) -> None:
    speech = voice.synthesize(text)
    assert speech.audio.size == 0 and speech.duration == 0 and speech.phonemes == () and speech.words == ()


def test_emoji_dropped_with_a_warning(voice: EspeakVoice, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        speech = voice.synthesize("Hello \U0001f44b there")
    assert [w.label for w in speech.words] == ["Hello", "there"]
    assert "U+1F44B" in caplog.text


def test_unknown_speaker(voice: EspeakVoice) -> None:
    with pytest.raises(ValueError, match="unknown espeak speaker"):
        voice.synthesize("hi", speaker="klingon")


class _FakeVoice:
    name = "fake"

    def __init__(self, genders):
        self._speakers = [SpeakerInfo(f"s{i}", g) for i, g in enumerate(genders)]

    def speakers(self):
        return self._speakers

    def synthesize(self, text, *, speaker=None):
        return Speech.empty()


def test_choose_speaker_by_gender(voice: EspeakVoice, caplog) -> None:
    rng = np.random.default_rng(0)
    female = {choose_speaker(voice, "female", rng) for _ in range(50)}
    male = {choose_speaker(voice, "male", rng) for _ in range(50)}
    anyone = {choose_speaker(voice, None, rng) for _ in range(80)}
    assert female == {s.id for s in voice.speakers() if s.gender == "female"}
    assert male == {s.id for s in voice.speakers() if s.gender == "male"}
    assert anyone == {s.id for s in voice.speakers()}
    same = [choose_speaker(voice, "female", np.random.default_rng(7)) for _ in range(3)]
    assert len(set(same)) == 1  # a seeded generator is reproducible
    with pytest.raises(VoiceError, match="no male speaker"):
        choose_speaker(_FakeVoice(["female", None]), "male", rng)
    with caplog.at_level(logging.WARNING):
        assert choose_speaker(_FakeVoice([None, None]), "male", rng) in {"s0", "s1"}
    assert "does not know its speakers' genders" in caplog.text
    with pytest.raises(ValueError):
        choose_speaker(voice, "robot", rng)


@pytest.mark.parametrize(
    ("caption", "gender"),
    [
        ("A woman is talking", "female"), ("a FEMALE speaker", "female"), ("The girl said", "female"),
        ("She is talking", "female"), ("A man is talking", "male"), ("An old MALE", "male"),
        ("he speaks", "male"), ("The boy", "male"), ("", None), (None, None), ("A person is talking", None),
        ("A man and a woman", None), ("Shepherd theme", None), ("Human mandate", None),
    ],
)
def test_gender_of_caption(caption, gender) -> None:
    assert gender_of_caption(caption) == gender


def test_speech_validates_itself() -> None:
    audio = np.zeros(16_000, np.float32)
    with pytest.raises(ValueError, match="float32"):
        Speech(audio.astype(np.float64))
    with pytest.raises(ValueError, match="outside"):
        Speech(audio, phonemes=(("a", 0.5, 1.5),))
    with pytest.raises(ValueError, match="order"):
        Speech(audio, words=(("b", 0.5, 0.6), ("a", 0.1, 0.2)))
    joined = join([Speech(audio, words=(("a", 0.1, 0.2),)), Speech(audio, words=(("b", 0.1, 0.2),))], gap_s=0.5)
    assert joined.duration == pytest.approx(2.5)
    assert joined.words[1] == Timed("b", pytest.approx(1.6), pytest.approx(1.7))


def test_speak_cli_writes_a_16khz_wav(tmp_path) -> None:
    soundfile = pytest.importorskip("soundfile")
    out = tmp_path / "hello.wav"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from sender.cli import main; sys.exit(main(sys.argv[1:]))",
         "speak", "Hello there, 2 friends!", "--gender", "male", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "16000 Hz" in proc.stdout and "words" in proc.stdout and "two" in proc.stdout
    audio, rate = soundfile.read(out)
    assert rate == 16_000 and audio.ndim == 1 and audio.size > 8_000
    bad = subprocess.run(
        [sys.executable, "-c", "import sys; from sender.cli import main; sys.exit(main(sys.argv[1:]))",
         "speak", "hi", "--voice", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "espeak" in bad.stderr


def test_import_is_cheap() -> None:
    code = "import sys, model.speech; print(sorted(m for m in ('numpy', 'torch', 'TTS', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
