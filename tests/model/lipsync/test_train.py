"""SyncNet and Wav2Lip training: losses fall on a tiny batch, runs resume, folders are complete."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.lipsync.checkpoint import load_model
from model.lipsync.data import LipData
from model.lipsync.networks import build, preset
from model.lipsync.train import TrainConfig, lipsync_loss, run_training, syncnet_loss


def toy_data(n: int = 3, frames: int = 10, seed: int = 0) -> LipData:
    """Textured 64x64 'faces' whose dark mouth opens with the loudness of a tone burst."""
    rng = np.random.default_rng(seed)
    video = rng.integers(90, 170, (n, frames, 3, 64, 64), dtype=np.uint8)
    t = np.arange(frames * 1000) / 16000
    audio = np.zeros((n, t.size), np.float32)
    for k in range(n):
        loud = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 3) * t + rng.uniform(0, 6)), 0, None)
        audio[k] = (0.3 * loud * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for f in range(frames):
            opening = int(10 * loud[f * 1000 + 500])
            video[k, f, :, 44:46 + opening, 22:42] = 20
    return LipData.from_arrays(video, audio, fps=16)


def test_data_shapes() -> None:
    data = toy_data()
    assert data.boxes.tolist()[0] == [0, 0, 64, 64]  # fallback: the 64x64 frame is the face
    mel, faces, label = data.sync_batch(np.random.default_rng(0), 6, other_segment=0.5)
    assert mel.shape == (6, 1, 80, 16) and faces.shape == (6, 15, 48, 96) and label.sum() == 3
    mels, inputs, target, sync_mel = data.gen_batch(np.random.default_rng(0), 2)
    assert mels.shape == (2, 5, 1, 80, 16) and inputs.shape == (2, 6, 5, 96, 96) and target.shape == (2, 3, 5, 96, 96)
    assert float(inputs[:, :3, :, 48:].abs().sum()) == 0 and float(inputs[:, 3:, :, 48:].abs().sum()) > 0
    assert sync_mel.shape == (2, 1, 80, 16)


def _overfit(loss_fn, net, batch, steps: int = 12) -> list[float]:
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        loss, _ = loss_fn(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_losses_fall_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    data = toy_data()
    sync = build(preset("syncnet", "tiny"))
    losses = _overfit(syncnet_loss, sync, data.sync_batch(np.random.default_rng(1), 8))
    assert min(losses[-3:]) < losses[0] * 0.9
    gen = build(preset("wav2lip", "tiny"))
    sync.eval()
    for p in sync.parameters():
        p.requires_grad_(False)
    losses = _overfit(lambda m, b: lipsync_loss(m, sync, 0.03, b), gen, data.gen_batch(np.random.default_rng(2), 2))
    assert min(losses[-3:]) < losses[0] * 0.9


def test_the_edge_term_charges_a_blurred_mouth_more_than_l1_alone() -> None:
    torch.manual_seed(0)
    data = toy_data()
    sync = build(preset("syncnet", "tiny")).eval()
    batch = data.gen_batch(np.random.default_rng(2), 2)
    target = batch[2]

    class Blur(torch.nn.Module):  # a "generator" that returns the target, blurred
        def forward(self, mels, inputs):
            b, c, f, h, w = target.shape
            flat = target.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
            soft = torch.nn.functional.avg_pool2d(flat, 5, stride=1, padding=2, count_include_pad=False)
            return soft.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)

    plain, _ = lipsync_loss(Blur(), sync, 0.0, batch)
    edged, parts = lipsync_loss(Blur(), sync, 0.0, batch, edge_weight=1.0)
    assert edged > plain > 0 and parts["l1"] == pytest.approx(edged.item())
    with pytest.raises(ValueError):
        TrainConfig(edge_weight=-1)


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_training_resumes_and_writes_a_complete_folder(tmp_path: Path) -> None:
    data, val = toy_data(), toy_data(2, seed=5)
    sync_dir = tmp_path / "syncnet"
    train = TrainConfig(steps=4, batch_size=4, lr=1e-3, save_every=2, log_every=1, ema_decay=0.9)
    run_training(preset("syncnet", "tiny"), train, data, sync_dir, val=val, progress=False)
    assert json.loads((sync_dir / "train_state.json").read_text())["step"] == 4
    run_training(preset("syncnet", "tiny"), TrainConfig(**{**train.__dict__, "steps": 6}), data, sync_dir, val=val, progress=False)
    assert json.loads((sync_dir / "train_state.json").read_text())["step"] == 6
    assert [int(r["step"]) for r in _rows(sync_dir / "loss.csv")] == [1, 2, 3, 4, 5, 6]
    assert [int(r["step"]) for r in _rows(sync_dir / "val.csv")] == [2, 4, 6]
    assert 0 <= float(_rows(sync_dir / "val.csv")[-1]["val_accuracy"]) <= 1 and 0 <= float(_rows(sync_dir / "val.csv")[-1]["val_auc"]) <= 1
    for name in ("model.safetensors", "config.json", "README.md", "loss.png"):
        assert (sync_dir / name).is_file()
    expert, config = load_model(sync_dir, kind="syncnet")
    assert config.name == "syncnet-tiny"

    gen_dir = tmp_path / "lipsync"
    gtrain = TrainConfig(steps=2, batch_size=1, save_every=1, log_every=1)
    run_training(preset("wav2lip", "tiny"), gtrain, data, gen_dir, val=val, expert_dir=sync_dir, progress=False)
    last = run_training(preset("wav2lip", "tiny"), TrainConfig(**{**gtrain.__dict__, "steps": 3}), data, gen_dir,
                        val=val, expert_dir=sync_dir, progress=False)
    assert last["step"] == 3 and {"l1", "sync", "val_l1", "val_sync"} <= last.keys()
    assert (gen_dir / "samples.png").is_file()
    assert "SyncNet" in (gen_dir / "README.md").read_text() or "expert" in (gen_dir / "README.md").read_text()
    with pytest.raises(ValueError, match="expert"):
        run_training(preset("wav2lip", "tiny"), gtrain, data, tmp_path / "x", progress=False)


def test_a_resumed_run_uses_the_new_learning_rate(tmp_path: Path) -> None:
    """The optimizer state comes back from the checkpoint, but --lr on the resuming command wins."""
    from safetensors.torch import load_file

    data = toy_data()
    train = TrainConfig(steps=2, batch_size=4, lr=1e-2, save_every=2, log_every=1)
    run_training(preset("syncnet", "tiny"), train, data, tmp_path, progress=False)
    before = {k: v for k, v in load_file(str(tmp_path / "train_state.safetensors")).items()
              if k.startswith("model.") and "running_" not in k and "num_batches" not in k}  # BatchNorm stats move anyway
    run_training(preset("syncnet", "tiny"), TrainConfig(**{**train.__dict__, "steps": 4, "lr": 1e-12}), data, tmp_path, progress=False)
    after = load_file(str(tmp_path / "train_state.safetensors"))
    assert json.loads((tmp_path / "train_state.json").read_text())["step"] == 4
    assert all(torch.allclose(before[k], after[k], atol=1e-8) for k in before)  # 1e-2 would have moved them


def test_a_new_run_can_start_from_trained_weights(tmp_path: Path) -> None:
    """--init: a new run starts from another folder's weights (not from random ones), says so in its
    card, keeps saying so when resumed, and refuses weights of another architecture."""
    from model.lipsync.train import load_or_default_config

    data = toy_data()
    first = tmp_path / "first"
    train = TrainConfig(steps=3, batch_size=4, lr=1e-2, save_every=3, log_every=1)
    run_training(preset("syncnet", "tiny"), train, data, first, progress=False)
    trained, _ = load_model(first, kind="syncnet")
    # lr 1e-12: the continued run's weights stay where the first run left them, and so does their
    # EMA (the saved weights), which must start from them rather than from random ones
    cont = tmp_path / "cont"
    config = load_or_default_config(cont, "syncnet", None, first)
    assert config == preset("syncnet", "tiny")  # the weights' architecture, not the small default
    still = TrainConfig(**{**train.__dict__, "lr": 1e-12, "seed": 1, "init": str(first), "ema_decay": 0.9})
    run_training(config, still, data, cont, progress=False)
    continued, _ = load_model(cont, kind="syncnet")
    for (name, a), b in zip(trained.state_dict().items(), continued.state_dict().values()):
        if "running_" not in name and "num_batches" not in name:  # BatchNorm statistics move anyway
            assert torch.allclose(a, b, atol=1e-6), name
    assert f"started from the weights in `{first}`" in (cont / "README.md").read_text()
    run_training(config, TrainConfig(**{**still.__dict__, "steps": 4, "init": ""}), data, cont, progress=False)
    assert f"`{first}`" in (cont / "README.md").read_text()
    with pytest.raises(ValueError, match="network"):
        run_training(preset("syncnet", "small"), TrainConfig(**{**still.__dict__, "init": str(first)}), data,
                     tmp_path / "other", progress=False)


def test_the_gan_variant_trains_a_discriminator_beside_and_resumes_it(tmp_path: Path) -> None:
    """--disc-weight: Wav2Lip's visual quality discriminator learns real from generated mouths, its state
    is kept in OUT/disc and comes back on resume; during --disc-warmup the generator ignores it."""
    from model.lipsync.networks import LipSyncConfig, QualityDisc
    from model.lipsync.train import disc_loss

    torch.manual_seed(0)
    data = toy_data()
    disc = QualityDisc(LipSyncConfig(kind="disc", width=0.0625, residuals=0, name="d"))
    real = data.gen_batch(np.random.default_rng(0), 2)[2]
    fake = torch.full_like(real, 0.5)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    first = None
    for _ in range(15):
        loss, parts = disc_loss(disc, real, fake)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first and parts["real"] > parts["fake"]  # it tells them apart
    sync_dir = tmp_path / "syncnet"
    run_training(preset("syncnet", "tiny"), TrainConfig(steps=1, batch_size=2, save_every=1), data, sync_dir, progress=False)
    gen_dir = tmp_path / "gan"
    train = TrainConfig(steps=2, batch_size=1, save_every=2, log_every=1, disc_weight=0.07, disc_warmup=1)
    last = run_training(preset("wav2lip", "tiny"), train, data, gen_dir, expert_dir=sync_dir, progress=False)
    assert {"fool", "disc", "real", "fake"} <= last.keys()
    assert json.loads((gen_dir / "disc" / "train_state.json").read_text())["step"] == 2
    before = load_file_keys(gen_dir / "disc" / "train_state.safetensors")
    run_training(preset("wav2lip", "tiny"), TrainConfig(**{**train.__dict__, "steps": 3}), data, gen_dir, expert_dir=sync_dir, progress=False)
    assert json.loads((gen_dir / "disc" / "train_state.json").read_text())["step"] == 3 and before
    assert "GAN variant" in (gen_dir / "README.md").read_text()
    with pytest.raises(ValueError):
        TrainConfig(sync_weight=0.5, disc_weight=0.5)


def load_file_keys(path: Path) -> list[str]:
    from safetensors.torch import load_file

    return sorted(load_file(str(path)))


def test_a_mix_draws_each_batch_from_every_part_by_share_and_the_expert_sees_soft_crops() -> None:
    """``LipMix`` (``--also``/``--shares``): windows from each cache in proportion; ``as_expert_sees``
    brings sharp generated crops to the expert's training sharpness (``--expert-size``)."""
    from model.lipsync.data import LipMix
    from model.lipsync.train import as_expert_sees

    small, big = toy_data(n=2, seed=1), toy_data(n=3, seed=2)
    big = LipData(np.zeros_like(big.video), big.boxes, big.windows)  # all-black frames: tell the parts apart
    mix = LipMix([small, big], [1.0, 3.0])
    assert len(mix) == 5
    mels, inputs, target, sync_mel = mix.gen_batch(np.random.default_rng(0), 8)
    assert mels.shape[0] == inputs.shape[0] == target.shape[0] == sync_mel.shape[0] == 8
    black = (target.flatten(1).amax(dim=1) == 0).sum().item()
    assert black == 6  # three quarters from the second part
    with pytest.raises(ValueError):
        LipMix([small], [1.0, 2.0])
    crisp = torch.zeros(1, 3, 5, 96, 96)
    crisp[..., ::2, :] = 1.0  # one-pixel stripes
    seen = as_expert_sees(crisp, 48)
    assert seen.shape == crisp.shape and float(seen.std()) < 0.1 * float(crisp.std())  # smoothed away
    assert as_expert_sees(crisp, 0) is crisp
    with pytest.raises(ValueError):
        TrainConfig(expert_size=200)


def test_the_train_command_mixes_a_cache_at_256_with_one_at_64(tmp_path: Path, capsys) -> None:
    """``textcall train lipsync --also DIR --shares ... --box-size 64 --expert-size 61``: generator
    windows from both caches, validation on the last, boxes found at 64 px."""
    from model.corpus.cache import CacheWriter
    from sender.cli import main

    data = toy_data(n=2, frames=8)
    for size in (64, 256):
        writer = CacheWriter(tmp_path / f"c{size}", frames=8, size=size, samples=8000, fps=16, sample_rate=16000)
        for split in ("train", "val"):
            for k in range(2):
                video = np.asarray(data.video[k])
                if size != 64:
                    video = video.repeat(size // 64, axis=2).repeat(size // 64, axis=3)
                audio = np.random.default_rng(k).normal(0, 0.1, 8000).astype(np.float32)
                writer.add(split, np.ascontiguousarray(video), audio,
                           {"speaker": f"s{k}", "sentence": f"x{k}", "caption": "A man is talking", "start": 0.0})
        writer.close()
    expert, gen = tmp_path / "expert", tmp_path / "gen"
    common = ["--preset", "tiny", "--steps", "2", "--batch-size", "4", "--save-every", "2", "--no-progress"]
    assert main(["train", "syncnet", "--data", str(tmp_path / "c64"), "--out", str(expert), *common]) == 0
    argv = ["train", "lipsync", "--data", str(tmp_path / "c64"), "--also", str(tmp_path / "c256"), "--shares", "1,3",
            "--box-size", "64", "--expert-size", "61", "--syncnet", str(expert), "--out", str(gen), *common]
    assert main(argv) == 0 and "checkpoint in" in capsys.readouterr().out
    assert (gen / "samples.png").is_file() and json.loads((gen / "train_state.json").read_text())["train"]["expert_size"] == 61
    bad = [("1,2,3" if a == "1,3" else str(tmp_path / "bad") if a == str(gen) else a) for a in argv]
    assert main(bad) == 2
    assert "--shares gives 3 shares for 2 caches" in capsys.readouterr().err
