"""The reference restorer: its network, its training triples, training, and its place in a call."""

from __future__ import annotations

import dataclasses
import json

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


def test_batches_pool_several_generated_files_and_hold_some_out(tmp_path) -> None:
    segments = _segments()
    paths = []
    for k, rows in enumerate((np.arange(0, 4), np.arange(4, 8))):
        paths.append(tmp_path / f"g{k}.npz")
        np.savez(paths[-1], generated=segments.video[rows].transpose(0, 1, 3, 4, 2), index=rows,
                 reference=segments.video[rows, 0].transpose(0, 2, 3, 1))
    batches = Batches(segments, paths, holdout=0.25)
    assert batches.generated["index"].tolist() == [0, 1, 2, 4, 5, 6]  # the last clip of each file is held out
    held = batches.held_out()
    assert held.generated["index"].tolist() == [3, 7] and held.held_out() is None
    x, ref, target = held.draw(4, 1.0, np.random.default_rng(0), torch.Generator().manual_seed(0))
    stored = {tuple(r.flatten()[:8].tolist()) for r in Batches(segments, paths).generated["reference"][[3, 7]]}
    assert {tuple(((r + 1) * 127.5).round().permute(1, 2, 0).flatten()[:8].int().tolist()) for r in ref} <= stored
    with pytest.raises(ValueError):
        Batches(_segments(2), paths)  # indexes past the loaded clips


def test_a_fine_tune_starts_from_the_init_weights(tmp_path) -> None:
    segments = _segments()
    first = RestoreTrainConfig(steps=20, batch_size=8, lr=3e-3, save_every=20, log_every=5, amp=False)
    trained = train_restore(TINY, first, Batches(segments), tmp_path / "a", val=Batches(segments), progress=False)
    still = dataclasses.replace(first, steps=1, lr=1e-12, ema_decay=0.0)
    tuned = train_restore(TINY, still, Batches(segments), tmp_path / "b", val=Batches(segments), init=tmp_path / "a", progress=False)
    fresh = train_restore(TINY, still, Batches(segments), tmp_path / "c", val=Batches(segments), progress=False)
    assert tuned["val_synthetic"] == pytest.approx(trained["val_synthetic"], abs=2e-3)
    assert tuned["val_synthetic"] < fresh["val_synthetic"]
    with pytest.raises(ValueError):
        train_restore(dataclasses.replace(TINY, width=32), still, Batches(segments), tmp_path / "d", init=tmp_path / "a", progress=False)


def test_lipsynced_inputs_restore_then_redraw_the_mouth(tmp_path, capsys) -> None:
    """`textcall corpus lipsynced` on a cache: same index and references, mouths redrawn, and the
    restorer trains on both files with a held-out share and a fine-tune start."""
    from model.corpus.cache import CacheWriter
    from model.lipsync.checkpoint import save_model
    from model.lipsync.networks import build, preset as lip_preset
    from model.restore.train import save_restorer
    from sender.cli import main

    rng = np.random.default_rng(2)
    cache = tmp_path / "cache"
    writer = CacheWriter(cache, frames=4, size=64, samples=4000, fps=16, sample_rate=16000)
    for split in ("train", "val"):
        for k in range(4):
            writer.add(split, rng.integers(40, 220, size=(4, 3, 64, 64), dtype=np.uint8), rng.normal(0, 0.1, 4000).astype(np.float32),
                       {"speaker": f"s{k % 2}", "sentence": f"x{k}", "caption": "A woman is talking", "start": 0.0})
    writer.close()
    video = load_cache_video(cache)
    generated = tmp_path / "resampled" / "generated.npz"
    generated.parent.mkdir()
    np.savez(generated, generated=video[[0, 2]], index=np.array([0, 2]), reference=video[[1, 3], 0], caches=np.array([str(cache)]))
    torch.manual_seed(0)
    restore_cfg = RestoreConfig(width=16, blocks=1, mid_blocks=1, groups=8, head_channels=16)
    save_restorer(tmp_path / "restore", RestoreNet(restore_cfg).state_dict(), restore_cfg)
    save_model(tmp_path / "lips", build(lip_preset("wav2lip", "tiny")), lip_preset("wav2lip", "tiny"))
    out = tmp_path / "synced"
    base = ["corpus", "lipsynced", str(generated), "--restore", str(tmp_path / "restore"), "--lipsync", str(tmp_path / "lips")]
    assert main(base + ["--data", str(cache), "--out", str(out)]) == 0
    with np.load(out / "generated.npz") as a, np.load(generated) as b:
        assert a["generated"].shape == b["generated"].shape and str(a["stage"]) == "lipsync"
        assert np.array_equal(a["index"], b["index"]) and np.array_equal(a["reference"], b["reference"])
        assert not np.array_equal(a["generated"][:, :, 40:], b["generated"][:, :, 40:])  # mouths redrawn
    assert main(base + ["--data", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "x")]) == 2  # not its caches
    run = tmp_path / "run"
    argv = ["train", "restore", "--data", str(cache), "--out", str(run), "--generated", f"{generated},{out / 'generated.npz'}",
            "--holdout", "0.5", "--init", str(tmp_path / "restore"), "--steps", "2", "--batch-size", "2", "--save-every", "2",
            "--no-progress", "--no-amp"]
    assert main(argv) == 0
    state = json.loads((run / "train.json").read_text())["last"]
    assert "val_generated" in state and "val_synthetic" in state
    assert RestoreConfig.load(run) == restore_cfg  # the fine-tune took the init's shape
    other = tmp_path / "other"  # a folder whose config is of another shape: a one-line error, no traceback
    save_restorer(other, RestoreNet(RestoreConfig(width=8, blocks=1, mid_blocks=1, groups=4, head_channels=8)).state_dict(),
                  RestoreConfig(width=8, blocks=1, mid_blocks=1, groups=4, head_channels=8))
    argv[argv.index(str(run))] = str(other)
    assert main(argv) == 2 and "another shape" in capsys.readouterr().err


def load_cache_video(cache) -> np.ndarray:
    from model.diffusion.data import load_segments

    return load_segments(str(cache)).video.transpose(0, 1, 3, 4, 2)
