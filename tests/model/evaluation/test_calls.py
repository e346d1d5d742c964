"""``textcall eval calls``'s sync references: the calls' own sentences said with true mouths."""

from __future__ import annotations

import numpy as np

from model.corpus.visemes import as_mnemonics
from model.evaluation.calls import markdown, spoken_references, summarise
from model.speech import load_voice
from model.talking_head import WEIGHTS_DIR


def test_any_voices_phonemes_become_mouth_track_mnemonics() -> None:
    espeak = [("h", 0.0, 0.1), ("'aI", 0.1, 0.3)]
    assert as_mnemonics(espeak) == espeak  # espeak-ng's own: as they are
    ipa = as_mnemonics([("h", 0.0, 0.1), ("ˈ", 0.1, 0.12), ("a", 0.12, 0.2), ("ɪ", 0.2, 0.3)])
    assert [label for label, _, _ in ipa] == ["h", "aI"] and ipa[1][1] == 0.1  # IPA: joined, the stress's time its


def test_spoken_references_say_the_calls_sentences_with_true_mouths() -> None:
    voice = load_voice("espeak")
    speaker = next(s.id for s in voice.speakers() if s.gender == "female")
    said = [("Could you share your screen, please?", speaker), ("Do you want coffee or tea?", speaker)]
    rows = spoken_references(voice, said, size=64, syncnet=WEIGHTS_DIR / "syncnet", progress=False)
    assert [r["text"] for r in rows] == [t for t, _ in said] and all(r["speaker"] == speaker for r in rows)
    people = {r["person"] for r in rows}
    assert len(people) == 2  # corpus people of the voice's gender, in turn
    speech = voice.synthesize(said[0][0], speaker=speaker)
    assert abs(rows[0]["seconds"] - (speech.duration + 0.1)) < 0.1  # cut to the speech
    # judged as the calls are; whether the judge finds these mouths in sync is what the eval measures
    # (on the seed-1 eval 74 % within one frame: docs/2026-12-07-256-pixels.md), not a given
    assert all(isinstance(r["offset"], int) and abs(r["offset"]) <= 15 and np.isfinite(r["confidence"]) for r in rows)


def test_the_sync_bar_reads_both_references() -> None:
    rows = [{"mode": "text", "text": "a", "speaker": "x", "s_per_output_s": 2.0, "offset": 0, "confidence": 0.25, "face": None}]
    report = {"calls": [], "identity": {"min": 1.0, "calibration": {"same_speaker_judged_same": 1.0, "threshold": 0.4, "clips": 8,
                                                                     "speakers": 4, "different_speakers_judged_same": 0.0}},
              "fidelity": {"corpus": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "generated": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "ratios": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "two_sample": {"accuracy": 0.6, "test_frames": 8}},
              "spoken_references": [{"text": "a", "speaker": "x", "offset": 0, "confidence": 0.2},
                                    {"text": "b", "speaker": "x", "offset": 4, "confidence": 0.1}]}
    report["summary"] = s = summarise(rows, [{"offset": 0, "confidence": 0.3}], report)
    assert s["spoken_reference_confidence"] == 0.15 and s["spoken_reference_offset_within_1"] == 0.5
    assert s["spoken_reference_pairs"] == 1
    # the bar stays the (held-out corpus clips); the spoken reference is reported beside it
    assert not s["bars"]["confidence>=reference"] and not any("spoken" in k for k in s["bars"])
    assert "saying the calls' own sentences in their voices 0.15" in markdown(report)
    assert np.isfinite(s["confidence"])


def test_a_corpus_clip_says_speech_whose_word_labels_are_ipa(tmp_path) -> None:
    """Piper's and Kokoro's word labels are IPA where espeak-ng joins words ("with the" -> "wɪððə"); the
    clip's GRID alignment stays ASCII (a call eval once stopped on it)."""
    import dataclasses

    from model.corpus import align as align_io
    from model.corpus.speakers import make_speakers
    from model.corpus.synth import ClipJob, Said, render_clip

    voice = load_voice("espeak")
    speech = voice.synthesize("Start with the budget.", speaker=voice.speakers()[0].id)
    ipa = tuple(w._replace(label=f"wɪð{i}") for i, w in enumerate(speech.words))
    speech = dataclasses.replace(speech, words=ipa)
    person = make_speakers()[0]
    render_clip(ClipJob(person, Said("said000", "Start with the budget.", ("Start",)), 0, 0, tmp_path, speech=speech))
    words = align_io.read_align(tmp_path / "alignments" / person.id / "said000.align")
    labels = [w.word for w in words if not w.is_silence]
    assert labels[0].lower() == "start" and all(label.isascii() for label in labels) and len(labels) == len(ipa)


def test_a_second_judge_is_reported_beside_the_expert_with_its_own_bars(tmp_path) -> None:
    from pathlib import Path

    import pytest

    from model.evaluation.calls import _independent
    from model.evaluation.cli import _sync_judge

    rows = [{"mode": "text", "text": t, "speaker": "x", "s_per_output_s": 2.0, "offset": 0, "confidence": 0.3, "face": None,
             **_independent({"offset": off, "confidence": c})} for t, off, c in (("a", 0, 0.2), ("b", 3, 0.1))]
    report = {"calls": [], "identity": {"min": 1.0, "calibration": {"same_speaker_judged_same": 1.0, "threshold": 0.4, "clips": 8,
                                                                     "speakers": 4, "different_speakers_judged_same": 0.0}},
              "fidelity": {"corpus": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "generated": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "ratios": {k: 1.0 for k in ("luma detail", "colour noise", "frame change")},
                           "two_sample": {"accuracy": 0.6, "test_frames": 8}}}
    references = [{"offset": 0, "confidence": 0.25, **_independent({"offset": 1, "confidence": 0.4})}]
    report["summary"] = s = summarise(rows, references, report)
    assert s["offset_within_1"] == 1.0 and s["bars"]["offset_within_1>=0.95"]  # the expert's verdicts
    assert s["independent_offset_within_1"] == 0.5 and s["independent_confidence"] == 0.15
    assert s["independent_reference_offset_within_1"] == 1.0 and s["independent_reference_confidence"] == 0.4
    assert not s["bars"]["independent judge: offset_within_1>=0.95"]
    assert not s["bars"]["independent judge: confidence>=reference"]
    assert "not the lip-sync network's training expert: offset within one frame 0.5" in markdown(report)
    assert _independent({"motion_lag": 0}) == {}  # no SyncNet verdict: nothing
    # the judge's folder: the shipped one by default, none on request, a clear error for a wrong one
    assert _sync_judge(None) == WEIGHTS_DIR / "syncnet-judge"
    assert _sync_judge(Path("none")) is None
    with pytest.raises(FileNotFoundError, match="no SyncNet"):
        _sync_judge(tmp_path)
