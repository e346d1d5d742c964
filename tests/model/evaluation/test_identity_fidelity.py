"""The judges of one face per call: the identity judge and the fidelity measures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.corpus.stills import StillsConfig, make_stills
from model.evaluation.fidelity import STATISTICS, TwoSampleConfig, ratios, statistics, two_sample_test, within
from model.evaluation.identity import IdentityJudge, IdentityTrainConfig, equal_error_threshold, train_identity


def test_equal_error_threshold_splits_two_clean_populations() -> None:
    same, diff = np.array([0.8, 0.9, 0.95, 0.7]), np.array([0.1, 0.2, 0.3, 0.4])
    threshold, eer = equal_error_threshold(same, diff)
    assert 0.4 <= threshold <= 0.7 and eer == 0.0


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    stills = tmp_path_factory.mktemp("judge-stills")
    make_stills(StillsConfig(out=stills, speakers=24, per_speaker=4, size=16, seed=202, first_id=20_000, neutral=False,
                             workers=1), progress=False)
    out = tmp_path_factory.mktemp("judge")
    meta = train_identity(stills, out, train=IdentityTrainConfig(steps=60, batch_size=32, val_people=6), progress=False)
    return IdentityJudge.load(out), meta, stills


def test_the_identity_judge_trains_and_keeps_its_threshold(judge) -> None:
    loaded, meta, _ = judge
    assert loaded.threshold == meta["threshold"] and -1 <= meta["threshold"] <= 1
    assert json.loads((Path(meta["data"]["stills"]) / "speakers.json").read_text())["seed"] == 202
    assert set(meta["val"]) >= {"equal_error_rate", "same_judged_same", "different_judged_same"}


def test_a_steady_face_is_the_same_person_throughout(judge) -> None:
    loaded, _, stills = judge
    from model.corpus.stills import Stills

    data = Stills.load(stills)
    frames = np.repeat(data.images[:1], 10, axis=0)
    cos = loaded.same_as_first(frames)
    assert cos.shape == (10,) and np.allclose(cos, 1.0, atol=1e-3)
    emb = loaded.embed(data.images[:5])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3)


def test_calibration_reports_both_rates(judge) -> None:
    loaded, _, stills = judge
    from model.corpus.stills import Stills

    data = Stills.load(stills)
    clips = [data.images[i * 4 : i * 4 + 2] for i in range(6)] + [data.images[i * 4 + 2 : i * 4 + 4] for i in range(6)]
    speakers = [f"s{i}" for i in range(6)] * 2
    report = loaded.calibrate(clips, speakers, pairs=100)
    assert 0 <= report["same_speaker_judged_same"] <= 1 and 0 <= report["different_speakers_judged_same"] <= 1
    assert report["speakers"] == 6 and report["clips"] == 12
    with pytest.raises(ValueError):
        loaded.calibrate(clips[:2], ["a", "b"])


def test_missing_judge_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="textcall train identity"):
        IdentityJudge.load(tmp_path)


def _clips(rng, n, noise):
    base = rng.integers(60, 200, size=(n, 1, 16, 16, 3))
    return [np.clip(b + rng.normal(0, noise, size=(8, 16, 16, 3)), 0, 255).astype(np.uint8) for b in base]


def test_statistics_and_their_ratios() -> None:
    rng = np.random.default_rng(0)
    calm, noisy = _clips(rng, 4, 2.0), _clips(rng, 4, 25.0)
    a, b = statistics(calm), statistics(noisy)
    assert set(a) == set(STATISTICS) and all(b[k] > a[k] for k in STATISTICS)
    r = ratios(b, a)
    assert r["frame change"] > 1.2 and not within(r) and within(ratios(a, a))


def test_two_sample_test_tells_noise_from_calm_and_not_calm_from_calm() -> None:
    rng = np.random.default_rng(1)
    config = TwoSampleConfig(steps=60, batch_size=32)
    apart = two_sample_test(_clips(rng, 12, 40.0), _clips(rng, 12, 0.0), config)
    alike = two_sample_test(_clips(rng, 12, 0.0), _clips(rng, 12, 0.0), config)
    assert apart["accuracy"] >= 0.9 and alike["accuracy"] <= 0.75
    assert apart["test_frames"] > 0 and apart["clips"] == {"generated": 12, "corpus": 12}
    with pytest.raises(ValueError):
        two_sample_test(_clips(rng, 1, 0.0), _clips(rng, 4, 0.0), config)


def test_the_gender_judge_also_learns_many_people_and_reports_held_out_ones(judge, tmp_path) -> None:
    """`textcall train gender --stills`: corpus frames and judge portraits, scored on held-out people."""
    from model.corpus.cache import CacheWriter
    from model.evaluation.gender import GenderClassifier
    from sender.cli import main

    _, _, stills = judge
    rng = np.random.default_rng(0)
    writer = CacheWriter(tmp_path / "cache", frames=2, size=16, samples=2000, fps=16, sample_rate=16000)
    for split in ("train", "test"):
        for k in range(4):
            writer.add(split, rng.integers(0, 255, size=(2, 3, 16, 16), dtype=np.uint8), np.zeros(2000, np.float32),
                       {"speaker": f"s{k}", "sentence": f"x{k}", "caption": ("A man is talking", "A woman is talking")[k % 2], "start": 0.0})
    writer.close()
    out = tmp_path / "gender"
    argv = ["train", "gender", "--data", str(tmp_path / "cache"), "--stills", str(stills), "--out", str(out), "--steps", "20",
            "--width", "8", "--no-progress"]
    assert main(argv) == 0
    meta = json.loads((out / "config.json").read_text())
    metrics = meta["metrics"]
    assert metrics["stills_test_images"] == 2 * 4 and 0 <= metrics["stills_test_accuracy"] <= 1  # a tenth of 24 people held out
    assert {"stills_test_accuracy_male", "stills_test_accuracy_female"} <= set(metrics)
    assert meta["gender"]["width"] == 8 and "held-out people" in (out / "README.md").read_text()
    assert GenderClassifier.load(out).probabilities(np.zeros((1, 16, 16, 3), np.uint8)).shape == (1, 2)


def test_a_split_by_person_keeps_every_person_on_one_side() -> None:
    from model.evaluation.fidelity import split_halves

    rng = np.random.default_rng(2)
    clips = list(range(20))
    people = [f"p{k % 5}" for k in clips]
    for _ in range(10):
        train, test = split_halves(clips, rng, people)
        assert sorted(train + test) == clips and train and test
        assert not {people[k] for k in train} & {people[k] for k in test}
    train, test = split_halves(clips, rng)  # by clip: the same person may be on both sides
    assert sorted(train + test) == clips and len(train) == 10
    with pytest.raises(ValueError, match="two groups"):
        split_halves(clips, rng, ["one"] * 20)
    with pytest.raises(ValueError, match="labels"):
        split_halves(clips, rng, people[:3])


def test_two_sample_test_split_by_person_reports_it() -> None:
    rng = np.random.default_rng(3)
    config = TwoSampleConfig(steps=5, batch_size=8)
    generated, corpus = _clips(rng, 6, 10.0), _clips(rng, 6, 10.0)
    report = two_sample_test(generated, corpus, config, groups=(["a", "a", "b", "b", "c", "c"], [0, 1, 2, 3, 4, 5]))
    assert report["split"] == "by group" and report["test_frames"] > 0
    assert two_sample_test(generated, corpus, config)["split"] == "by clip"


def test_the_call_evals_fidelity_bar_reads_the_split_by_person() -> None:
    from model.evaluation.calls import markdown, summarise

    rows = [{"mode": "caption+text", "s_per_output_s": 2.0, "offset": 0, "confidence": 0.3, "adherent": True, "face": None}]
    fidelity = {"corpus": {"luma detail": 4.0, "colour noise": 3.0, "frame change": 3.0},
                "generated": {"luma detail": 3.8, "colour noise": 3.0, "frame change": 3.1},
                "ratios": {"luma detail": 0.95, "colour noise": 1.0, "frame change": 1.03},
                "two_sample": {"accuracy": 1.0, "test_frames": 80}}
    report = {"calls": [], "identity": {"min": 1.0, "calibration": {"same_speaker_judged_same": 1.0, "threshold": 0.4, "clips": 8,
                                                                     "speakers": 4, "different_speakers_judged_same": 0.0}},
              "fidelity": fidelity}
    assert not summarise(rows, [], report)["bars"]["two_sample<=0.80"]  # one call: only the split by clip
    fidelity["two_sample_by_person"] = {"accuracy": 0.7, "test_frames": 64}
    report["summary"] = summary = summarise(rows, [], report)
    assert summary["bars"]["two_sample<=0.80"] and summary["two_sample_accuracy_by_clip"] == 1.0
    text = markdown(report)
    assert "split by clip, test accuracy 1.0" in text and "split by person" in text and "0.7 on 64 frames" in text
