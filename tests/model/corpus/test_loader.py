"""A tiny GRID-layout corpus, generated here, through the same loader and cache as real GRID."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.corpus import align
from model.corpus.cache import SegmentCache
from model.corpus.grid import PrepareConfig, discover, prepare
from model.corpus.speakers import GRID_GENDERS, load_gender_table
from model.corpus.synth import SynthConfig, synthesize_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("grid") / "synth"
    manifest = synthesize_corpus(SynthConfig(out=out, n_female=1, n_male=1, sentences=3, workers=1, preview_clips=2), progress=False)
    assert manifest["clips"] == 6 and not manifest["failed"]
    return out


def test_synth_writes_grids_layout(corpus: Path) -> None:
    sources, problems = discover(corpus)
    assert len(sources) == 6 and not problems
    assert {s.speaker for s in sources} == {"s1", "s4"}  # GRID's ids: s1 male, s4 female
    for s in sources:
        assert s.video.suffix == ".mpg" and s.align is not None and s.wav is not None
        assert s.video.with_suffix(".truth.npz").exists()
        words = align.read_align(s.align)
        assert words[0].word == "sil" and words[-1].end == pytest.approx(3.0, abs=0.6)
    assert (corpus / "contact_sheet.png").stat().st_size > 0 and (corpus / "preview.mp4").stat().st_size > 0
    speakers = json.loads((corpus / "speakers.json").read_text())["speakers"]
    assert {s["id"]: s["gender"] for s in speakers} == {"s1": GRID_GENDERS["s1"], "s4": GRID_GENDERS["s4"]}


def test_synthetic_video_is_grid_sized_and_detected(corpus: Path) -> None:
    from model.corpus.grid import detect_face
    from model.corpus.media import read_clip

    clip = read_clip(next((corpus / "s4").glob("*.mpg")))
    assert clip.frames.shape[1:] == (288, 360, 3) and clip.fps == pytest.approx(25)
    assert clip.audio is not None and clip.audio.size / clip.sample_rate == pytest.approx(clip.frames.shape[0] / 25, abs=0.1)
    found = [detect_face(f) is not None for f in clip.frames[::10]]
    assert sum(found) >= len(found) // 2


def test_prepare_segments_and_cache_round_trip(corpus: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    summary = prepare(PrepareConfig(root=corpus, out=cache_dir, workers=1, test_fraction=0.0, val_fraction=0.0), progress=False)
    assert summary.written["train"] == 6 and not summary.skipped
    cache = SegmentCache(cache_dir)
    video, audio, captions = cache.arrays()
    assert video.shape == (6, 16, 3, 64, 64) and video.dtype == np.uint8
    assert audio.shape == (6, 16000) and audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    assert set(captions) == {"A man is talking", "A woman is talking"}
    item = cache[0]
    assert item.video.shape == (16, 3, 64, 64) and item.audio.shape == (16000,)
    assert np.array_equal(item.video, video[0]) and np.allclose(item.audio, audio[0])
    assert item.caption == ("A man is talking" if item.speaker == "s1" else "A woman is talking")
    assert audio.std(axis=1).min() > 0.01  # speech, not silence, in each window
    assert video.std() > 10  # pictures, not a flat fill
    # a synthetic speaker's segments carry its description and a free-form caption of some of it
    from model.describe.attributes import corpus_people

    people = corpus_people(corpus)
    assert set(people) == {"s1", "s4"} and people["s1"]["gender"] == "male" and people["s4"]["gender"] == "female"
    for m in cache.meta:
        assert m["description"] == people[m["speaker"]] and m["free_caption"]
        assert all(people[m["speaker"]][k] == v for k, v in m["free_caption_says"].items())


def test_splits_hold_out_speakers_and_sentences(corpus: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    prepare(PrepareConfig(root=corpus, out=cache_dir, workers=1, test_speakers=("s4",), test_fraction=0.34, val_fraction=0.0), progress=False)
    train, test = SegmentCache(cache_dir, "train"), SegmentCache(cache_dir, "test")
    assert len(train) + len(test) == 6
    assert "s4" not in set(train.speakers()) and set(test.speakers()) >= {"s4"}
    assert not {m["sentence"] for m in train.meta} & {m["sentence"] for m in test.meta}


def test_bad_input_is_skipped_and_counted(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(corpus, bad)
    s1 = sorted((bad / "s1").glob("*.mpg"))
    s1[0].write_bytes(b"not a video at all")  # corrupt video
    (bad / "alignments" / "s1" / f"{s1[1].stem}.align").unlink()  # missing alignment
    a = bad / "alignments" / "s1" / f"{s1[2].stem}.align"
    a.write_text(a.read_text().replace("sil\n", "sil\n", 1).rsplit("\n", 2)[0] + "\n")  # ends a second early
    s4 = sorted((bad / "s4").glob("*.mpg"))
    s4[0].unlink()  # a missing video: its alignment is an orphan, the clip is simply absent
    genders = {"s1": "male"}  # s4 has no gender entry
    summary = prepare(PrepareConfig(root=bad, out=tmp_path / "cache", genders=genders, workers=2), progress=False)
    assert summary.skipped == {"unreadable_video": 1, "missing_alignment": 1, "alignment_mismatch": 1, "no_gender": 2}
    assert sum(summary.written.values()) == 0
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert index["skipped"]["no_gender"] == 2


def test_no_face_is_skipped_or_centre_cropped(corpus: Path, tmp_path: Path) -> None:
    import av

    blank = tmp_path / "blank"
    shutil.copytree(corpus, blank)
    victim = sorted((blank / "s1").glob("*.mpg"))[0]
    with av.open(str(victim)) as src:
        n = src.streams.video[0].frames or 75
    from model.corpus.media import read_audio_track
    from model.corpus.synth import _write_mpg

    audio, rate = read_audio_track(victim)
    _write_mpg(victim, [np.full((288, 360, 3), 128, np.uint8)] * n, audio, rate)
    common = dict(root=blank, speakers=("s1",), workers=1, test_fraction=0.0, val_fraction=0.0)
    skipped = prepare(PrepareConfig(out=tmp_path / "c1", **common), progress=False)
    assert skipped.skipped == {"no_face": 1} and skipped.written["train"] == 2
    kept = prepare(PrepareConfig(out=tmp_path / "c2", face_fallback="centre", **common), progress=False)
    assert kept.face_fallbacks == 1 and kept.written["train"] == 3


def test_gender_table_files(tmp_path: Path) -> None:
    text = tmp_path / "genders.txt"
    text.write_text("# GRID\ns1 male\ns4 F\n")
    assert load_gender_table(text) == {"s1": "male", "s4": "female"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"s1": "robot"}')
    with pytest.raises(ValueError):
        load_gender_table(bad)
    assert sum(g == "female" for g in GRID_GENDERS.values()) == 16 and len(GRID_GENDERS) == 34


def test_cli_help_and_show(corpus: Path) -> None:
    run = lambda *a: subprocess.run([sys.executable, "-m", "sender.cli", "corpus", *a], capture_output=True, text=True, timeout=60)  # noqa: E731
    helped = run("synth", "--help")
    assert helped.returncode == 0 and "GRID" in helped.stdout and "--seed" in helped.stdout
    shown = run("show", str(corpus))
    assert shown.returncode == 0 and "6 clips, 2 speakers" in shown.stdout
