"""``textcall eval model`` on the stub generator and a tiny synthesized corpus: it runs end to end,
keeps its sentences out of the corpus, and its bars follow from the measured rows."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.evaluation.suite import EvalConfig, held_out_sentences, plan_requests, run_eval, summarise
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
                      style_image=style, config=EvalConfig(clips=5, reference_clips=1), progress=False)
    assert len(report["clips"]) == 5 and len(list((tmp_path / "out" / "clips").glob("*.mp4"))) == 5
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["summary"] == report["summary"]
    assert set(report["summary"]["modes"]) == {"caption+text", "text", "caption", "unconditional", "style+text"}
    assert all("motion_lag" in r for r in report["clips"] if r["text"])
    assert all(r["judged"] in ("male", "female") for r in report["clips"] if r["caption"])


def test_bars_follow_the_rows() -> None:
    rows = [{"mode": "text", "s_per_output_s": 1.0, "motion_lag": 0, "motion_corr": 0.5, "offset": o, "confidence": 4.0}
            for o in (0, 0, 1, -1, 0, 0, 0, 0, 0, 3)]
    rows += [{"mode": "caption", "s_per_output_s": 1.0, "adherent": a} for a in [True] * 9 + [False]]
    summary = summarise(rows, [{"motion_lag": 0, "motion_corr": 0.6, "offset": 0, "confidence": 5.0}])
    assert summary["offset_within_1"] == 0.9 and summary["caption_adherence"] == 0.9
    assert summary["confidence_vs_reference"] == 0.8
    assert all(summary["bars"].values())
