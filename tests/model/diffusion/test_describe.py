"""The joint model and its noisy classifier reading free-form captions (description vectors).

A caption-index network converts exactly into one that reads the description vector; training,
classifier-free guidance and classifier guidance take descriptions; a caption-index network given a
description reads its gender.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model.describe.attributes import SLOTS, null_vector, vector
from model.describe.conditioning import value_log_prob
from model.diffusion.av import AV
from model.diffusion.captions import caption_condition, is_null_condition, null_condition_like
from model.diffusion.checkpoint import build_model, describing_from_caption_model, load_model, save_model
from model.diffusion.config import DEFAULT_CAPTIONS, classifier_preset, preset
from model.diffusion.data import Segments, toy_segments
from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av
from model.diffusion.train import TrainConfig, run_training
from model.diffusion.unet import reads_descriptions

RED_GLASSES = {"gender": "female", "hair": "red", "glasses": "yes"}


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.05)
    return module.eval()


def _describing(config):
    return dataclasses.replace(config, unet=dataclasses.replace(config.unet, attribute_slots=SLOTS))


def _x(config, batch: int = 1) -> AV:
    u = config.unet
    g = torch.Generator().manual_seed(3)
    return AV(torch.randn(batch, u.frames, 3, u.image_size, u.image_size, generator=g),
              torch.randn(batch, u.audio_channels, u.audio_length, generator=g))


def test_caption_conditions_for_both_kinds_of_network() -> None:
    assert caption_condition(2, DEFAULT_CAPTIONS, False).tolist() == [2]
    assert caption_condition(RED_GLASSES, DEFAULT_CAPTIONS, False).tolist() == [2]  # its gender
    assert caption_condition({"hair": "red"}, DEFAULT_CAPTIONS, False).tolist() == [0]  # no gender: null
    assert torch.equal(caption_condition(1, DEFAULT_CAPTIONS, True)[0], torch.from_numpy(vector({"gender": "male"})))
    assert torch.equal(caption_condition(RED_GLASSES, DEFAULT_CAPTIONS, True)[0], torch.from_numpy(vector(RED_GLASSES)))
    for describes in (False, True):
        null = caption_condition(None, DEFAULT_CAPTIONS, describes)
        assert is_null_condition(null) and is_null_condition(caption_condition(0, DEFAULT_CAPTIONS, describes))
        assert not is_null_condition(caption_condition(1, DEFAULT_CAPTIONS, describes))
    assert torch.equal(null_condition_like(caption_condition(RED_GLASSES, DEFAULT_CAPTIONS, True))[0],
                       torch.from_numpy(null_vector()))
    with pytest.raises(ValueError, match="outside"):
        caption_condition(7, DEFAULT_CAPTIONS, True)


def test_a_caption_model_converts_exactly_into_a_description_model() -> None:
    config = preset("tiny-ref")
    old = _randomised(build_model(config), 0)
    state, described = describing_from_caption_model(old.state_dict(), config)
    assert described.unet.attribute_slots == SLOTS and "embed.condition.weight" in state
    new = build_model(described).eval()
    new.load_state_dict(state)
    assert reads_descriptions(new) and not reads_descriptions(old)
    x, t = _x(config), torch.tensor([400])
    with torch.no_grad():
        for index in range(3):  # no caption, the paper's two
            a = old(x, t, caption_condition(index, config.captions, False))
            b = new(x, t, caption_condition(index, config.captions, True))
            assert torch.allclose(a.video, b.video, atol=1e-6) and torch.allclose(a.audio, b.audio, atol=1e-6)
        # untrained, it reads the gender only: the other attributes' columns are zero
        said = new(x, t, caption_condition(RED_GLASSES, config.captions, True))
        woman = new(x, t, caption_condition(2, config.captions, True))
        assert torch.allclose(said.video, woman.video, atol=1e-6)
    with pytest.raises(ValueError, match="already"):
        describing_from_caption_model(state, described)
    with pytest.raises(ValueError, match="description vector"):
        new(x, t, torch.tensor([1]))
    with pytest.raises(ValueError, match="caption index"):
        old(x, t, caption_condition(1, config.captions, True))


def test_a_caption_classifier_converts_exactly_and_guides_by_attribute() -> None:
    config = classifier_preset("tiny")
    old = _randomised(build_model(config), 1)
    state, described = describing_from_caption_model(old.state_dict(), config)
    new = build_model(described).eval()
    new.load_state_dict(state)
    assert described.num_classes == SLOTS and reads_descriptions(new)
    x, t = _x(config, 2), torch.tensor([10, 900])
    with torch.no_grad():
        before = torch.log_softmax(old(x, t), -1)
        after = new(x, t)
    for index in (1, 2):
        label = caption_condition(index, config.captions, True).expand(2, -1)
        assert torch.allclose(value_log_prob(after, label), before[:, index - 1], atol=1e-5)
    # attributes it has not learnt are uniform: they add log(1 / values) each, and no gradient
    extra = value_log_prob(after, caption_condition(RED_GLASSES, config.captions, True).expand(2, -1))
    assert torch.allclose(extra, before[:, 1] + np.log(1 / 5) + np.log(1 / 2), atol=1e-5)


def test_guidance_takes_a_description(tmp_path) -> None:
    config = _describing(preset("tiny"))
    net = _randomised(build_model(config), 2)
    plain = generate_av(build_guidance(net, config, caption=RED_GLASSES), steps=2, seed=0)
    other = generate_av(build_guidance(net, config, caption={"gender": "female", "hair": "black"}), steps=2, seed=0)
    assert not np.array_equal(plain[0], other[0])  # the network reads more than the gender
    cfg = generate_av(build_guidance(net, config, caption=RED_GLASSES, guidance=GuidanceConfig(cfg_scale=3.0)), steps=2, seed=0)
    assert not np.array_equal(plain[0], cfg[0])
    null = generate_av(build_guidance(net, config), steps=2, seed=0)
    same_null = generate_av(build_guidance(net, config, caption={}), steps=2, seed=0)
    assert np.array_equal(null[0], same_null[0])  # nothing said is the null caption

    clf = _randomised(build_model(_describing(classifier_preset("tiny"))), 3)
    weak = generate_av(build_guidance(net, config, caption=RED_GLASSES, classifier=clf,
                                      guidance=GuidanceConfig(classifier_scale=0.0)), steps=2, seed=0)
    strong = generate_av(build_guidance(net, config, caption=RED_GLASSES, classifier=clf,
                                        guidance=GuidanceConfig(classifier_scale=50.0)), steps=2, seed=0)
    assert np.array_equal(null[0], weak[0])  # with a classifier the network gets the null caption
    assert not np.array_equal(null[0], strong[0])

    # a caption-index network (and classifier) given a description reads its gender
    index_config = preset("tiny")
    index_net = _randomised(build_model(index_config), 2)
    a = generate_av(build_guidance(index_net, index_config, caption=RED_GLASSES), steps=2, seed=0)
    b = generate_av(build_guidance(index_net, index_config, caption=2), steps=2, seed=0)
    assert np.array_equal(a[0], b[0])
    # ... so the shipped autoguide network (a caption-index one) can guide a description model's audio
    guided = generate_av(build_guidance(net, config, caption=RED_GLASSES, audio_guide=index_net,
                                        guidance=GuidanceConfig(audio_guide_scale=2.0)), steps=2, seed=0)
    assert np.array_equal(guided[0].shape, plain[0].shape) and not np.array_equal(guided[1], plain[1])


def _described_toy(n: int = 16) -> Segments:
    config = preset("tiny")
    toy = toy_segments(n, config.unet.frames, config.unet.image_size, config.unet.audio_samples)
    hair = ["red" if c == 1 else "black" for c in toy.caption]
    description = np.stack([vector({"gender": "male" if c == 1 else "female", "hair": h}) for c, h in zip(toy.caption, hair)])
    return dataclasses.replace(toy, description=description)


def test_segments_give_descriptions_or_their_captions_gender() -> None:
    toy = _described_toy()
    assert toy.descriptions(DEFAULT_CAPTIONS).shape == (16, SLOTS)
    assert toy.subset(np.arange(4)).description.shape == (4, SLOTS)
    bare = dataclasses.replace(toy, description=None)
    assert np.array_equal(bare.descriptions(DEFAULT_CAPTIONS)[0], vector({"gender": "male" if toy.caption[0] == 1 else "female"}))
    with pytest.raises(ValueError, match="one vector per segment"):
        dataclasses.replace(toy, description=toy.description[:3])


def test_a_description_model_trains_from_caption_weights(tmp_path) -> None:
    """``init`` from a caption-index model converts it; the map over the vector gets its own lr."""
    config = preset("tiny")
    segments = _described_toy()
    run_training(config, TrainConfig(steps=2, batch_size=4, save_every=2, lr=1e-3), segments, tmp_path / "index", progress=False)
    described = _describing(config)
    train = TrainConfig(steps=6, batch_size=4, save_every=6, lr=1e-3, init=str(tmp_path / "index"), condition_lr_scale=20.0,
                        attribute_dropout=0.5)
    last = run_training(described, train, segments, tmp_path / "describe", progress=False)
    assert np.isfinite(last["loss"])
    net, loaded = load_model(tmp_path / "describe")
    assert loaded.unet.attribute_slots == SLOTS and reads_descriptions(net)
    card = (tmp_path / "describe" / "README.md").read_text()
    assert "description vectors" in card and "x20" in card
    # the hair columns learnt something (they started at zero)
    from safetensors.torch import load_file

    weight = load_file(str(tmp_path / "describe" / "model.safetensors"))["embed.condition.weight"]
    hair = slice(3, 9)
    assert weight[:, hair].abs().sum() > 0

    clf_config = _describing(classifier_preset("tiny"))
    last = run_training(clf_config, TrainConfig(steps=2, batch_size=4, save_every=2, lr=1e-3, caption_dropout=0.0),
                        segments, tmp_path / "clf", progress=False)
    assert 0.0 <= last["accuracy"] <= 1.0


def test_a_step_with_non_finite_gradients_is_skipped(tmp_path, monkeypatch) -> None:
    config = preset("tiny")
    segments = _described_toy(8)
    calls = {"n": 0}
    clip = torch.nn.utils.clip_grad_norm_

    def failing(params, max_norm):
        calls["n"] += 1
        norm = clip(params, max_norm)
        return torch.tensor(float("nan")) if calls["n"] == 2 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", failing)
    last = run_training(config, TrainConfig(steps=3, batch_size=2, save_every=3, lr=1e-3, amp=False), segments,
                        tmp_path / "run", progress=False)
    assert calls["n"] == 3 and np.isfinite(last["loss"])
    net, _ = load_model(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_save_and_load_a_description_model(tmp_path) -> None:
    config = _describing(preset("tiny"))
    net = _randomised(build_model(config), 4)
    save_model(tmp_path, net, config)
    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config == config and reads_descriptions(loaded)


def test_the_caption_eval_can_judge_the_joint_models_own_faces(tmp_path) -> None:
    """``textcall eval captions --generator joint``: caption-only chunks of the joint model, judged."""
    from pathlib import Path

    from model.describe.encoder import CaptionEncoder
    from model.describe.evaluate import CaptionEvalConfig, JointFaces, markdown, run_caption_eval

    class Judge:
        meta = {"metrics": {"heldout_accuracy": {"gender": 1.0}, "corpus_accuracy": {"gender": 1.0}}}

        def predict(self, frames):
            # a bright frame is a woman with red hair, anything else a man with black hair
            return [{"gender": "female" if f.mean() > 127 else "male", "hair": "red" if f.mean() > 127 else "black",
                     "skin": "light", "glasses": "no", "facial_hair": "none", "hair_style": "short", "shirt": "blue"}
                    for f in frames]

    config = _describing(preset("tiny"))
    save_model(tmp_path / "joint", _randomised(build_model(config), 5), config)
    faces = JointFaces.load(tmp_path / "joint", sampler="ddim", steps=2)
    frame = faces.sample(vector(RED_GLASSES), seed=0)
    assert frame.shape == (1, config.unet.image_size, config.unet.image_size, 3) and frame.dtype == np.uint8
    encoder = CaptionEncoder.load(Path(__file__).resolve().parents[3] / "model" / "weights" / "captions")
    report = run_caption_eval(faces, encoder, Judge(), tmp_path / "out",
                              CaptionEvalConfig(captions=4, cfg_scales=(1.0, 2.0), sampler="ddim", steps=2), progress=False)
    assert report["generator"]["kind"] == "joint" and report["generator"]["describes"]
    assert set(report["by_cfg"]) == {"1", "2"} and (tmp_path / "out" / "faces_cfg2.png").is_file()
    assert "the joint model" in markdown(report)
    with pytest.raises(ValueError, match="no classifier"):
        JointFaces.load(tmp_path / "joint", tmp_path / "joint")
