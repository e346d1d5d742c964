"""The joint U-Net's reference input (one face per call): zero start, per-sample dropout, training pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model.diffusion.av import AV
from model.diffusion.config import preset
from model.diffusion.data import Segments, load_segments, toy_segments
from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av
from model.diffusion.train import ReferencePicker, TrainConfig, augment_pair, run_training
from model.diffusion.unet import AVUNet


def _batch(config, b=2):
    u = config.unet
    gen = torch.Generator().manual_seed(0)
    x = AV(torch.randn(b, u.frames, 3, u.image_size, u.image_size, generator=gen), torch.randn(b, u.audio_channels, u.audio_length, generator=gen))
    return x, torch.tensor([10, 700][:b]), torch.tensor([1, 2][:b]), torch.rand(b, 3, u.image_size, u.image_size, generator=gen) * 2 - 1


def test_a_new_reference_encoder_leaves_the_network_as_it_was() -> None:
    plain_cfg, ref_cfg = preset("tiny"), preset("tiny-ref")
    torch.manual_seed(0)
    plain = AVUNet(plain_cfg.unet)
    for p in plain.parameters():  # a "trained" network: no zero heads left
        torch.nn.init.normal_(p, std=0.05)
    ref = AVUNet(ref_cfg.unet)
    missing, unexpected = ref.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("reference.") for k in missing)
    x, t, c, r = _batch(ref_cfg)
    with torch.no_grad():
        assert torch.allclose(plain(x, t, c).video, ref(x, t, c, reference=r).video, atol=1e-6)
        assert torch.equal(ref(x, t, c).video, plain(x, t, c).video)


def test_the_reference_reaches_the_video_and_drops_per_sample() -> None:
    cfg = preset("tiny-ref")
    torch.manual_seed(0)
    net = AVUNet(cfg.unet)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t, c, r = _batch(cfg)
    with torch.no_grad():
        none = net(x, t, c).video
        with_ref = net(x, t, c, reference=r).video
        dropped = net(x, t, c, reference=r, reference_keep=torch.tensor([True, False])).video
    assert (with_ref - none).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-4
    assert torch.allclose(dropped[1], none[1], atol=1e-6) and torch.allclose(dropped[0], with_ref[0], atol=1e-6)


def test_a_network_without_a_reference_input_refuses_one() -> None:
    cfg = preset("tiny")
    x, t, c, r = _batch(cfg)
    with pytest.raises(ValueError, match="without a reference"):
        AVUNet(cfg.unet)(x, t, c, reference=r)
    face = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="no reference input"):
        build_guidance(AVUNet(cfg.unet), cfg, reference=face)


def test_generate_av_takes_the_calls_face() -> None:
    cfg = preset("tiny-ref")
    stack = build_guidance(AVUNet(cfg.unet).eval(), cfg, guidance=GuidanceConfig(cfg_scale=2.0), caption=1,
                           reference=np.full((16, 16, 3), 200, np.uint8))
    video, audio = generate_av(stack, steps=2)
    assert video.shape == (4, 16, 16, 3) and audio.shape == (4000,)


def test_augment_pair_changes_a_clip_and_its_reference_alike() -> None:
    gen = torch.Generator().manual_seed(3)
    reference = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1
    video = reference[:, None].repeat(1, 5, 1, 1, 1)  # every frame is the reference
    chosen = torch.tensor([True, True, False, True])
    v2, r2 = augment_pair(video, reference, chosen, gen)
    assert torch.allclose(v2, r2[:, None].expand_as(v2))  # the same change for both
    assert torch.equal(v2[2], video[2]) and torch.equal(r2[2], reference[2])  # not chosen: untouched
    assert not torch.allclose(r2[chosen], reference[chosen])
    assert r2.min() >= -1 and r2.max() <= 1


def test_the_picker_takes_another_clip_of_the_same_person() -> None:
    toy = toy_segments(6, 4, 16, 4000, seed=0)
    video = np.stack([np.full((4, 3, 16, 16), 10 * i, np.uint8) for i in range(6)])  # segment i is all 10*i
    segments = Segments(video, toy.audio, toy.caption, np.array([0, 0, 1, 1, 1, 2]))
    picked = ReferencePicker(segments).pick(np.array([0, 2, 5]), np.random.default_rng(0))
    assert picked.shape == (3, 3, 16, 16)
    assert picked[0].max() == 10  # segment 1, the other clip of person 0
    assert picked[1].max() in (30, 40)  # segment 3 or 4
    assert picked[2].max() == 50  # person 2 has one clip: its own
    with pytest.raises(ValueError, match="who speaks"):
        ReferencePicker(toy)


def test_a_reference_model_trains_on_pairs(tmp_path) -> None:
    toy = toy_segments(8, 4, 16, 4000, seed=0)
    segments = dataclasses.replace(toy, speaker=np.arange(8) % 3)
    train = TrainConfig(steps=3, batch_size=4, save_every=3, log_every=1, ema_decay=0.9, reference_dropout=0.5)
    last = run_training(preset("tiny-ref"), train, segments, tmp_path, device="cpu", progress=False)
    assert last["step"] == 3 and np.isfinite(last["loss"])
    with pytest.raises(ValueError, match="who speaks"):
        run_training(preset("tiny-ref"), train, toy, tmp_path / "b", device="cpu", progress=False)
    with pytest.raises(ValueError, match="reference_dropout"):
        TrainConfig(reference_dropout=1.5)


def test_several_caches_load_as_one_with_speakers_kept_apart(tmp_path, monkeypatch) -> None:
    from model.corpus.cache import CacheWriter

    for name, speakers in (("a", ["s1", "s2"]), ("b", ["s1", "s9"])):
        writer = CacheWriter(tmp_path / name, frames=4, size=16, samples=4000, fps=16, sample_rate=16000)
        for k, spk in enumerate(speakers):
            writer.add("train", np.zeros((4, 3, 16, 16), np.uint8), np.zeros(4000, np.float32),
                       {"speaker": spk, "sentence": f"x{k}", "caption": "A man is talking", "start": 0.0})
        writer.close()
    both = load_segments(f"{tmp_path / 'a'},{tmp_path / 'b'}")
    assert len(both) == 4 and both.speaker.tolist() == [0, 1, 2, 3]  # s1 of a and s1 of b are two people
    # "~" after a comma reaches the program unexpanded by the shell
    home = tmp_path / "home"
    (home / ".c").mkdir(parents=True)
    (tmp_path / "b").rename(home / ".c" / "b")
    monkeypatch.setenv("HOME", str(home))
    assert len(load_segments(f"{tmp_path / 'a'},~/.c/b")) == 4
