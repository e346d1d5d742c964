"""``textcall eval model`` on the stub generator and a tiny synthesized corpus: it runs end to end,
keeps its sentences out of the corpus, and its bars follow from the measured rows."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.evaluation.suite import EvalConfig, held_out_sentences, markdown, plan_requests, run_eval, summarise
from model.stub import StubGenerator
from model.talking_head import WEIGHTS_DIR


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    from model.corpus.synth import SynthConfig, synthesize_corpus

    out = tmp_path_factory.mktemp("corpus")
    synthesize_corpus(SynthConfig(out=out, n_female=1, n_male=1, sentences=12, workers=1, preview_clips=0), progress=False)
    return out


def test_held_out_sentences_are_not_in_the_corpus(tiny_corpus) -> None:
    said = {p.stem for p in tiny_corpus.glob("s*/*.mpg")}
    assert said
    from model.corpus.grammar import Sentence

    sentences = held_out_sentences(20, tiny_corpus, np.random.default_rng(0))
    assert len(set(sentences)) == 20
    assert not {Sentence.from_words(s.split()).id for s in sentences} & said


def test_plan_covers_the_modes_in_turn_with_both_genders() -> None:
    plan = plan_requests(EvalConfig(clips=10), ["bin blue at a one now"] * 10, Path("face.png"))
    assert [m for m, _, _ in plan[:5]] == ["caption+text", "text", "caption", "unconditional", "style+text"]
    assert {g for m, g, _ in plan if m == "caption"} == {"female", "male"}
    assert all(bool(r.text) == ("text" in m) and (r.style_image is not None) == m.startswith("style") for m, _, r in plan)


def test_eval_runs_end_to_end_on_the_stub(tiny_corpus, tmp_path) -> None:
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), np.full((64, 64, 3), 128, np.uint8))
    report = run_eval(StubGenerator(), tmp_path / "out", corpus=tiny_corpus, judge=WEIGHTS_DIR / "gender", syncnet=None,
                      style_image=style, config=EvalConfig(clips=5, reference_clips=1, envelope_reference=2), progress=False)
    assert len(report["clips"]) == 5 and len(list((tmp_path / "out" / "clips").glob("*.mp4"))) == 5
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["summary"] == report["summary"] and saved["settings"] == {}  # the stub has no sampler settings
    assert set(report["summary"]["modes"]) == {"caption+text", "text", "caption", "unconditional", "style+text"}
    assert all("motion_lag" in r for r in report["clips"] if r["text"])
    assert all(r["judged"] in ("male", "female") for r in report["clips"] if r["caption"])
    assert all("envelope" in r for r in report["clips"] if not r["text"])
    assert report["summary"]["envelope"]["clips"] == 2 and report["summary"]["envelope"]["reference"]["windows"] == 2
    assert "speech_like_envelope>=0.8*reference" in report["summary"]["bars"]
    low, high = report["summary"]["envelope"]["speech_like_95"]
    assert low <= report["summary"]["envelope"]["speech_like"] <= high
    assert f"95 % interval {low}-{high}" in (tmp_path / "out" / "eval.md").read_text()
    assert "white noise" in (tmp_path / "out" / "eval.md").read_text()


def test_bars_follow_the_rows() -> None:
    rows = [{"mode": "text", "s_per_output_s": 1.0, "motion_lag": 0, "motion_corr": 0.5, "offset": o, "confidence": 4.0}
            for o in (0, 0, 1, -1, 0, 0, 0, 0, 0, 3)]
    rows += [{"mode": "caption", "s_per_output_s": 1.0, "adherent": a} for a in [True] * 9 + [False]]
    summary = summarise(rows, [{"motion_lag": 0, "motion_corr": 0.6, "offset": 0, "confidence": 5.0}])
    assert summary["offset_within_1"] == 0.9 and summary["caption_adherence"] == 0.9
    assert summary["confidence_vs_reference"] == 0.8
    assert all(summary["bars"].values())


def _syllables(seconds: float, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """Noise gated on and off at about 4 syllables a second, with a pause in the middle: speech's loudness shape."""
    t = np.arange(int(seconds * rate)) / rate
    gate = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, np.pi)), 0, None) ** 2
    gate[(t > seconds * 0.45) & (t < seconds * 0.6)] = 0.0
    return (0.2 * gate * rng.standard_normal(len(t)) + 2e-3 * rng.standard_normal(len(t))).astype(np.float32)


def test_the_envelope_tells_syllables_from_noise() -> None:
    from model.evaluation.envelope import envelope_stats, speech_like, thresholds, windows

    rng = np.random.default_rng(0)
    speech = [envelope_stats(w) for _ in range(4) for w in windows(_syllables(2.5, rng))]
    assert len(speech) == 8
    noise = envelope_stats(0.1 * rng.standard_normal(16000))
    bar = thresholds(speech)
    assert noise["range_db"] < 3 and all(s["range_db"] > 15 for s in speech)
    assert all(s["syllabic"] > noise["syllabic"] for s in speech)
    assert not speech_like(noise, bar)
    assert sum(speech_like(s, bar) for s in speech) >= 7  # the 10th percentile leaves out at most the lowest window
    with pytest.raises(ValueError, match="at least"):
        envelope_stats(np.zeros(100))


def test_the_envelope_bar_is_set_by_the_reference_speech() -> None:
    from model.evaluation.envelope import envelope_stats

    rng = np.random.default_rng(1)
    speech = [envelope_stats(_syllables(1.0, rng)) for _ in range(10)]
    rows = [{"mode": "unconditional", "s_per_output_s": 1.0, "envelope": envelope_stats(_syllables(1.0, rng))} for _ in range(9)]
    rows.append({"mode": "unconditional", "s_per_output_s": 1.0, "envelope": envelope_stats(0.1 * rng.standard_normal(16000))})
    summary = summarise(rows, [], speech)
    assert summary["envelope"]["clips"] == 10 and summary["envelope"]["reference"]["windows"] == 10
    # real speech against its own bar: each 10th percentile fails one window of ten, so 8 or 9 of 10 pass
    assert 0.8 <= summary["envelope"]["reference"]["speech_like"] <= 0.9
    assert summary["modes"]["unconditional"]["speech_like_envelope"] == summary["envelope"]["speech_like"]
    assert summary["envelope"]["white_noise"]["range_db"] < 3
    share, real = summary["envelope"]["speech_like"], summary["envelope"]["reference"]["speech_like"]
    assert summary["envelope"]["vs_reference"] == round(share / real, 3)
    assert summary["bars"]["speech_like_envelope>=0.8*reference"] is (share / real >= 0.8)
    assert 0.5 <= summary["envelope"]["speech_like"] <= 0.9  # the noise clip is never speech-like
    assert not any(k.startswith("speech_like") for k in summarise(rows, [])["bars"])  # no reference speech, no bar
    # no speech-text or captioned clips: no sync or caption bar is judged (not "NOT met")
    assert set(summary["bars"]) == {"speech_like_envelope>=0.8*reference"}
    assert summarise(rows, [])["bars"] == {} and "Bars: none measured" in markdown(summarise(rows, []))


def test_wilson_interval_matches_the_textbook_values() -> None:
    from model.evaluation.envelope import wilson_interval

    assert wilson_interval(16, 26) == (0.425, 0.776)  # 95 %, as any statistics table gives it
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.27 < high < 0.28
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = wilson_interval(160, 260), wilson_interval(16, 26)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
