"""The reference restorer: its network, its training triples, training, and its place in a call."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model.diffusion.config import preset
from model.diffusion.data import Segments, toy_segments
from model.diffusion.unet import AVUNet
from model.restore.data import sdedit_clip, synthetic_degrade
from model.restore.network import RestoreConfig, RestoreNet
from model.restore.train import Batches, Restorer, RestoreTrainConfig, train_restore

TINY = RestoreConfig(image_size=16, width=16, blocks=1, mid_blocks=2, groups=8, head_channels=16)


def _segments(n: int = 8) -> Segments:
    rng = np.random.default_rng(0)
    toy = toy_segments(n, 4, 16, 4000, seed=0)
    video = rng.integers(0, 255, size=(n, 1, 3, 16, 16)).repeat(4, axis=1).astype(np.uint8)  # still "faces"
    return dataclasses.replace(toy, video=video, speaker=np.arange(n) % 3)


def test_a_new_restorer_returns_its_input() -> None:
    net = RestoreNet(TINY)
    x, ref = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(net(x, ref), x)
    assert RestoreNet(dataclasses.replace(TINY, attention=False))(x, ref).shape == x.shape
    with pytest.raises(ValueError):
        RestoreConfig(image_size=18)


def test_synthetic_degradation_softens_and_stays_in_range() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 3, 16, 16)
    x[..., ::2, :] = 1.0  # stripes: all edges
    y = synthetic_degrade(x * 2 - 1, gen)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert y.diff(dim=-2).abs().mean() < (x * 2 - 1).diff(dim=-2).abs().mean()


def test_batches_pair_targets_with_references_of_the_same_person(tmp_path) -> None:
    segments = _segments()
    generated = tmp_path / "generated.npz"
    np.savez(generated, generated=segments.video[:3].transpose(0, 1, 3, 4, 2), index=np.arange(3),
             reference=segments.video[:3, 0].transpose(0, 2, 3, 1))
    batches = Batches(segments, generated)
    x, ref, target = batches.draw(6, 0.5, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert x.shape == ref.shape == target.shape == (6, 3, 16, 16)
    assert torch.equal(x[:3], target[:3])  # the generated rows of this toy are the clips themselves


def test_training_lowers_the_error_and_the_restorer_loads(tmp_path) -> None:
    segments = _segments()
    train = RestoreTrainConfig(steps=30, batch_size=8, lr=3e-3, save_every=15, log_every=5, amp=False)
    last = train_restore(TINY, train, Batches(segments), tmp_path, val=Batches(segments), progress=False)
    assert last["step"] == 30 and last["val_synthetic"] < last["val_synthetic_input"]
    for name in ("model.safetensors", "config.json", "loss.png", "samples.png", "train_state.json"):
        assert (tmp_path / name).stat().st_size > 0
    restorer = Restorer.load(tmp_path)
    frames = segments.video[0].transpose(0, 2, 3, 1)
    out = restorer.restore(frames, frames[0])
    assert out.shape == frames.shape and out.dtype == np.uint8
    with pytest.raises(ValueError):
        restorer.restore(frames[:, :8], frames[0])
    again = train_restore(TINY, dataclasses.replace(train, steps=35), Batches(segments), tmp_path, progress=False)
    assert again["step"] == 35  # resumed


def test_sdedit_keeps_the_clip_shape() -> None:
    cfg = preset("tiny-ref")
    video = np.full((4, 16, 16, 3), 120, np.uint8)
    out = sdedit_clip(AVUNet(cfg.unet).eval(), cfg, video, np.zeros(4000, np.float32), video[0], 1, t0=400, steps=3, seed=0)
    assert out.shape == video.shape and out.dtype == np.uint8


def _ddp_train(out: str) -> None:
    train_restore(TINY, RestoreTrainConfig(steps=2, batch_size=4, save_every=2, log_every=1, amp=False), Batches(_segments()), out,
                  device="cpu", progress=False)


def test_ddp_two_cpu_processes_gloo(tmp_path) -> None:
    import json

    from tests.model.ddp import run_gloo

    run_gloo(_ddp_train, str(tmp_path))
    assert json.loads((tmp_path / "train_state.json").read_text())["step"] == 2


def test_train_restore_command(tmp_path, capsys) -> None:
    from model.corpus.cache import CacheWriter
    from sender.cli import main

    rng = np.random.default_rng(1)
    writer = CacheWriter(tmp_path / "cache", frames=2, size=64, samples=2000, fps=16, sample_rate=16000)
    for split in ("train", "val"):
        for k in range(4):
            writer.add(split, rng.integers(0, 255, size=(2, 3, 64, 64), dtype=np.uint8), np.zeros(2000, np.float32),
                       {"speaker": f"s{k % 2}", "sentence": f"x{k}", "caption": "A man is talking", "start": 0.0})
    writer.close()
    out = tmp_path / "run"
    argv = ["train", "restore", "--data", str(tmp_path / "cache"), "--out", str(out), "--steps", "2", "--batch-size", "2",
            "--save-every", "2", "--no-progress", "--no-amp"]
    assert main(argv) == 0 and "checkpoint in" in capsys.readouterr().out
    assert (out / "samples.png").is_file() and Restorer.load(out).net.cfg.image_size == 64
    assert main(argv[:4] + ["--out", str(tmp_path / "b"), "--generated", str(tmp_path / "none.npz")]) == 2
    assert "textcall corpus resample" in capsys.readouterr().err
