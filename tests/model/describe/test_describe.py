"""Free-form captions: attributes, generated wordings, the caption encoder, the attribute judge, a
description-conditioned portrait model, and how a call's face follows what captions say."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.corpus.stills import Stills, StillsConfig, make_stills
from model.describe.attributes import (ATTRIBUTES, SLOTS, colour_name, description_of, labels_of, null_vector,
                                       said, skin_name, text_of, vector)
from model.describe.wording import FRAMES, caption_corpus, caption_for, heldout_combination, random_people


def test_vectors_are_one_block_per_attribute_and_round_trip() -> None:
    d = {"gender": "female", "hair": "red", "glasses": "yes"}
    v = vector(d)
    assert v.shape == (SLOTS,) and v.sum() == len(ATTRIBUTES)  # one slot on per block
    assert said(description_of(v)) == d
    assert said(description_of(null_vector())) == {}
    with pytest.raises(ValueError, match="hair is one of"):
        vector({"hair": "green"})
    with pytest.raises(ValueError, match="unknown attributes"):
        vector({"tail": "long"})
    assert text_of(d) == "a woman with red hair, glasses" and text_of({}) == "anyone"


def test_the_synthesizers_palettes_get_everyday_names() -> None:
    look = {"hair": (20, 30, 110), "skin": (189, 214, 241), "glasses": True, "facial_hair": "beard",
            "hair_style": "crew", "shirt": (200, 60, 40)}  # BGR
    assert labels_of(look, "male") == {"gender": "male", "hair": "red", "skin": "light", "glasses": "yes",
                                       "facial_hair": "beard", "hair_style": "short", "shirt": "blue"}
    assert labels_of(look, "female")["facial_hair"] == "none"
    assert skin_name((52, 78, 114)) == "dark" and skin_name((105, 150, 198)) == "medium"
    assert colour_name((20, 20, 20)) == "black" and colour_name((230, 230, 230)) == "white"
    assert colour_name((40, 40, 200)) == "red" and colour_name((40, 200, 40)) == "green"


def test_generated_captions_state_what_they_say_and_split_apart() -> None:
    assert not set(FRAMES["train"]) & set(FRAMES["heldout"])
    rng = np.random.default_rng(0)
    person = random_people(1, 3)[0]
    for _ in range(200):
        text, d = caption_for(person, rng)
        assert all(v == person[k] for k, v in said(d).items())  # never states what the person is not
        for value in said(d).values():
            if value not in ("yes", "no", "none", "male", "female", "short", "long"):
                assert value in text.lower() or value in ("blond", "grey", "red", "black", "brown", "light", "medium", "dark",
                                                           "curly", "stubble", "beard", "moustache", "goatee", "bob", "ponytail")
    people = random_people(400, 1)
    train = caption_corpus(people, 300, 0, "train")
    held = caption_corpus(people, 100, 0, "heldout")
    assert {t for t, _ in train}.isdisjoint({t for t, _ in held})
    held_people = [p for p in people if heldout_combination(p)]
    assert 0.1 < len(held_people) / len(people) < 0.35  # about a fifth of the combinations are held out
    with pytest.raises(ValueError, match="no people for the train split"):
        caption_corpus(held_people, 5, 0, "train")  # the train split never describes a held-out combination


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from model.describe.encoder import CaptionEncoder
    from model.describe.train import EncoderTrainConfig, train_encoder

    out = tmp_path_factory.mktemp("enc")
    torch.set_num_threads(1)
    last = train_encoder(EncoderTrainConfig(steps=400, captions=8000, heldout=300, save_every=200, embed=32, hidden=48), out,
                         progress=False)
    assert last["exact"] > 0.6, last  # 400 steps already read most held-out captions exactly
    return CaptionEncoder.load(out)


def test_the_encoder_reads_captions_and_passes_over_unknown_words(encoder) -> None:
    r = encoder.read("A woman with red hair and glasses is talking")
    assert r.said() == {"gender": "female", "hair": "red", "glasses": "yes"} and r.unknown == ()
    assert encoder.read("A man is talking").said() == {"gender": "male"}
    odd = encoder.read("A grumpy wizard")
    assert "grumpy" in odd.unknown and "wizard" in odd.unknown
    nothing = encoder.read("")
    assert nothing.said() == {} and np.array_equal(nothing.vector, null_vector())
    assert encoder.read("zebra").said() == {}  # no known word: nothing said, never a guess
    assert np.allclose(r.vector.reshape(-1)[:3].sum(), 1.0)  # probabilities per block


def test_a_broken_encoder_folder_is_a_clear_error(tmp_path) -> None:
    from model.describe.encoder import CaptionEncoder

    with pytest.raises(FileNotFoundError, match="textcall train captions"):
        CaptionEncoder.load(tmp_path)


@pytest.fixture(scope="module")
def judge_stills(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("judge-stills")
    make_stills(StillsConfig(out=out, speakers=20, per_speaker=2, size=32, workers=1, seed=202, first_id=20_000), progress=False)
    return out


def test_the_judge_trains_scores_held_out_people_and_loads(judge_stills, tmp_path) -> None:
    from model.describe.judge import AttributeJudge, JudgeConfig, JudgeTrainConfig, adherence, train_judge

    metrics = train_judge(judge_stills, tmp_path / "j", config=JudgeConfig(image_size=32, width=8),
                          train=JudgeTrainConfig(steps=30, batch_size=16, test_share=0.2), progress=False)
    assert set(metrics["heldout_accuracy"]) == {a.name for a in ATTRIBUTES} and metrics["heldout_people"] == 4
    judge = AttributeJudge.load(tmp_path / "j")
    data = Stills.load(judge_stills)
    judged = judge.predict(data.images[:5])
    assert len(judged) == 5 and all(set(j) == {a.name for a in ATTRIBUTES} for j in judged)
    wanted = [{"gender": j["gender"], "hair": None} for j in judged]
    assert adherence(judged, wanted) == {"gender": {"asked": 5, "adherence": 1.0}}
    assert "held-out people" in (tmp_path / "j" / "README.md").read_text()


def test_a_caption_model_becomes_a_description_model_that_draws_the_same(tmp_path) -> None:
    from model.portrait.config import PRESETS
    from model.portrait.network import PortraitUNet
    from model.portrait.sample import PortraitModel, save_portrait_model
    from model.portrait.train import initial_weights

    torch.manual_seed(0)
    old = PortraitUNet(PRESETS["tiny"])
    for p in old.parameters():  # a "trained" net: the zero head would hide any difference
        p.data.normal_(0, 0.05)
    save_portrait_model(tmp_path / "old", old.state_dict(), PRESETS["tiny"])
    config = dataclasses.replace(PRESETS["tiny"], attribute_slots=SLOTS)
    new = PortraitUNet(config)
    new.load_state_dict(initial_weights(tmp_path / "old", config))
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([3, 300, 900])
    vecs = torch.from_numpy(np.stack([null_vector(), vector({"gender": "male", "hair": "red"}), vector({"gender": "female"})]))
    with torch.no_grad():
        assert torch.allclose(old(x, t, torch.tensor([0, 1, 2])), new(x, t, vecs), atol=1e-6)
    save_portrait_model(tmp_path / "new", new.state_dict(), config)
    model = PortraitModel.load(tmp_path / "new")
    assert model.config.describes
    faces = model.sample(vector({"gender": "female", "glasses": "yes"}), seed=1, steps=3, cfg_scale=3.0, sampler="ancestral")
    assert faces.shape == (1, 16, 16, 3)
    assert model.sample("A man is talking", steps=2).shape == (1, 16, 16, 3)  # a caption reads as its gender
    with pytest.raises(ValueError, match="description vector"):
        model.sample(np.zeros(5, np.float32))


def test_training_a_description_model_from_caption_weights(tmp_path) -> None:
    from model.portrait.config import PRESETS
    from model.portrait.network import PortraitUNet
    from model.portrait.sample import save_portrait_model
    from model.describe.conditioning import drop_descriptions
    from model.portrait.train import PortraitTrainConfig, captions_for, train_portrait

    stills = tmp_path / "stills"
    make_stills(StillsConfig(out=stills, speakers=4, per_speaker=2, size=16, workers=1), progress=False)
    data = Stills.load(stills)
    config = dataclasses.replace(PRESETS["tiny"], attribute_slots=SLOTS)
    vecs = captions_for(data, config)
    assert vecs.shape == (8, SLOTS) and (vecs.sum(1) == len(ATTRIBUTES)).all()
    assert description_of(vecs[0])["gender"] == "female"
    gen = torch.Generator().manual_seed(0)
    dropped = drop_descriptions(torch.from_numpy(vecs).repeat(50, 1), 0.5, 0.1, gen)
    assert torch.allclose(dropped.sum(1), torch.full((400,), float(len(ATTRIBUTES))))  # still one slot per block
    unsaid = np.mean([description_of(v.numpy())["hair"] is None for v in dropped])
    assert 0.4 < unsaid < 0.7
    save_portrait_model(tmp_path / "init", PortraitUNet(PRESETS["tiny"]).state_dict(), PRESETS["tiny"])
    last = train_portrait(config, PortraitTrainConfig(steps=4, batch_size=4, save_every=4, warmup=1, amp=False,
                                                      init=str(tmp_path / "init")), data, tmp_path / "run", progress=False)
    assert last["step"] == 4 and json.loads((tmp_path / "run" / "config.json").read_text())["attribute_slots"] == SLOTS
    assert "description vectors" in (tmp_path / "run" / "README.md").read_text()
