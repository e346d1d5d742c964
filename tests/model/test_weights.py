"""The embedded defaults shipped in model/weights: present, small enough, loadable, configs as documented."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from model.talking_head import WEIGHTS_DIR

SHIPPED = ("diffusion", "classifier", "autoguide", "syncnet", "lipsync", "gender", "identity", "portrait", "portrait/clean",
           "restore", "upscale")


@pytest.mark.parametrize("name", SHIPPED)
def test_each_checkpoint_has_weights_config_and_card(name) -> None:
    folder = WEIGHTS_DIR / name
    for part in ("model.safetensors", "config.json", "README.md"):
        assert (folder / part).is_file(), f"{folder / part} is missing"
    card = (folder / "README.md").read_text()
    assert "step" in card.lower() and "limit" in card.lower(), "a model card names its training and its limits"


def test_all_weights_together_stay_under_50_mb() -> None:
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert total <= 50 * 1024 * 1024, f"model/weights holds {total / 1e6:.1f} MB"


def test_diffusion_and_classifier_load_with_the_small_mel_ref_architecture() -> None:
    from model.diffusion.checkpoint import load_model
    from model.diffusion.config import ClassifierConfig, DiffusionConfig, check_classifier, preset

    diffusion, config = load_model(WEIGHTS_DIR / "diffusion")
    assert isinstance(config, DiffusionConfig) and config.unet == preset("small-mel-ref").unet
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in diffusion.parameters())
    classifier, cconfig = load_model(WEIGHTS_DIR / "classifier")
    assert isinstance(cconfig, ClassifierConfig)
    check_classifier(config, cconfig)  # it reads the diffusion model's x_t: same shape, schedule, audio scale
    from model.describe.attributes import SLOTS
    from model.diffusion.unet import reads_descriptions

    # a classifier of free-form captions' attributes (gender, hair, skin, ...): a softmax per attribute
    assert cconfig.num_classes == SLOTS and reads_descriptions(classifier) and not reads_descriptions(diffusion)


def test_autoguide_is_a_weaker_network_of_the_same_kind() -> None:
    from model.diffusion.checkpoint import load_model
    from model.diffusion.config import check_autoguide, load_config

    config = load_config(WEIGHTS_DIR / "diffusion" / "config.json")
    guide, gconfig = load_model(WEIGHTS_DIR / "autoguide")
    check_autoguide(config, gconfig)
    # the same network apart from the reference input, which autoguidance (audio only) does not read
    assert dataclasses.replace(gconfig.unet, reference=True) == config.unet
    assert all(torch.isfinite(p).all() for p in guide.parameters())


def test_lipsync_networks_load() -> None:
    from model.lipsync.checkpoint import load_model

    for name, kind in (("syncnet", "syncnet"), ("lipsync", "wav2lip")):
        net, config = load_model(WEIGHTS_DIR / name, kind=kind)
        assert config.kind == kind
        assert json.loads((WEIGHTS_DIR / name / "config.json").read_text())["kind"] == kind


def test_gender_judge_tells_corpus_like_faces_apart() -> None:
    from model.evaluation.gender import GenderClassifier

    judge = GenderClassifier.load(WEIGHTS_DIR / "gender")
    probs = judge.probabilities(np.zeros((2, 64, 64, 3), np.uint8))
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    # the instrument of caption adherence must know people it never saw, not only the corpus's 24
    metrics = json.loads((WEIGHTS_DIR / "gender" / "config.json").read_text())["metrics"]
    assert metrics["stills_test_accuracy"] >= 0.95 and metrics["stills_test_images"] >= 400


def test_identity_judge_keeps_its_threshold_and_knows_a_face_from_itself() -> None:
    from model.evaluation.identity import IdentityJudge

    judge = IdentityJudge.load(WEIGHTS_DIR / "identity")
    assert 0 < judge.threshold < 1 and judge.meta["val"]["equal_error_rate"] <= 0.05
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, size=(1, 64, 64, 3), dtype=np.uint8)
    assert judge.same_as_first(np.repeat(face, 3, axis=0)) == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)


def test_portrait_model_draws_faces_and_cleans_them() -> None:
    from model.portrait.sample import PortraitModel

    portrait = PortraitModel.load(WEIGHTS_DIR / "portrait")
    assert portrait.cleaner is not None  # portrait/clean ships with it
    faces = portrait.sample("A woman is talking", seed=3, count=2, steps=4)
    assert faces.shape == (2, 64, 64, 3) and faces.dtype == np.uint8 and faces.std() > 10


def test_restorer_copies_a_reference_into_a_frame() -> None:
    from model.restore.restorer import Restorer

    restorer = Restorer.load(WEIGHTS_DIR / "restore")
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, size=(3, 64, 64, 3), dtype=np.uint8)
    out = restorer.restore(frames, frames[0])
    assert out.shape == frames.shape and out.dtype == np.uint8


def test_default_generator_renders_a_short_utterance() -> None:
    """The receiver's default path end to end on the shipped weights (two steps to stay fast)."""
    from model.clip import Request
    from model.pipeline import load_generator

    generator = load_generator("default", sampler="dpm++", steps=2)
    clip = generator.generate(Request(caption="A woman is talking", text="Hi."))
    # 256 by default: the joint model's 64-pixel frames through the upscaler (model/weights/upscale)
    assert clip.video.shape[1:] == (256, 256, 3) and clip.video.shape[0] == int(np.ceil(clip.audio.size / 1000))
    assert clip.info["timings"].keys() >= {"voice", "sampling", "lipsync", "upscale"} and "upscale" in generator.sources
    assert "gender" in generator.sources  # a style picture's voice (model/talking_head._voice_gender)
    assert clip.info["speaker_gender"] == {"gender": "female", "from": "face"}
    quiet = generator.generate(Request(caption="A man is talking"))  # no text: audio from the mel branch
    assert quiet.audio.size == 16_000 and np.isfinite(quiet.audio).all() and 0 < np.abs(quiet.audio).max() <= 0.95
    assert "autoguide" in generator.sources and quiet.info["audio_autoguidance"] == 3.0
    assert clip.info["audio_autoguidance"] == 1.0  # speech text: the TTS audio, never guided
    plain = load_generator("default", sampler="dpm++", steps=2, audio_guidance=1.0)
    assert "autoguide" not in plain.sources and plain.audio_guide is None


def test_the_upscaler_gives_people_it_never_saw_their_reference_detail() -> None:
    """64 -> 256 on stills of the identity judge's people (no generator saw them): with another still of
    the person as the reference, closer to the 256 truth than bicubic upsampling; without one, no worse."""
    import cv2

    from model.corpus.stills import JUDGE_SEED, StillsConfig, render_speaker, stills_speakers
    from model.restore.restorer import Restorer

    upscaler = Restorer.load(WEIGHTS_DIR / "upscale")
    assert upscaler.scale == 4 and upscaler.output_size == 256 and upscaler.net.cfg.align
    people = stills_speakers(StillsConfig(out=None, speakers=6, size=256, seed=JUDGE_SEED, first_id=20_000))
    errors = {"upscaled": [], "alone": [], "bicubic": []}
    for person in people:
        target, reference = render_speaker((person, 2, 256, JUDGE_SEED, False))
        small = cv2.resize(target, (64, 64), interpolation=cv2.INTER_AREA)
        outputs = {"upscaled": upscaler.upscale(small[None], reference)[0], "alone": upscaler.upscale(small[None], None)[0],
                   "bicubic": cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC)}
        for name, out in outputs.items():
            errors[name].append(np.abs(out.astype(np.float32) - target.astype(np.float32)).mean())
    mean = {k: float(np.mean(v)) for k, v in errors.items()}
    assert mean["upscaled"] < 0.9 * mean["bicubic"], mean
    assert mean["alone"] <= 1.02 * mean["bicubic"], mean
