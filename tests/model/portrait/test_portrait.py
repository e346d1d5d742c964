"""The portrait model (a call's face): stills, training, resuming, sampling, its CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from model.corpus.stills import Stills, StillsConfig, make_stills, random_state, stills_speakers
from model.portrait.config import PRESETS, PortraitConfig, portrait_preset
from model.portrait.network import PortraitUNet
from model.portrait.sample import PortraitModel, save_portrait_model
from model.portrait.train import PortraitTrainConfig, captions_for, train_portrait


@pytest.fixture(scope="module")
def stills(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stills")
    make_stills(StillsConfig(out=out, speakers=6, per_speaker=2, size=16, workers=1), progress=False)
    return out


def test_stills_are_framed_faces_of_distinct_people(stills) -> None:
    data = Stills.load(stills)
    assert data.images.shape == (12, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.speaker.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert data.gender.tolist()[::2] == [1, 0, 1, 0, 1, 0]  # alternating, female first
    assert len(data.speakers) == 6 and (stills / "sheet.png").stat().st_size > 0
    assert data.images.std() > 20  # faces, not blank crops


def test_portrait_and_judge_people_never_overlap() -> None:
    portrait = {s.look for s in stills_speakers(StillsConfig(out=Path("."), speakers=50))}
    judge = {s.look for s in stills_speakers(StillsConfig(out=Path("."), speakers=50, seed=202, first_id=20_000))}
    assert not portrait & judge


def test_neutral_states_keep_eyes_open() -> None:
    rng = np.random.default_rng(0)
    assert all(random_state(rng, True).blink == 0 for _ in range(100))
    assert any(random_state(rng, False).blink > 0 for _ in range(400))


def test_config_round_trips_and_rejects_nonsense(tmp_path) -> None:
    config = PRESETS["tiny"]
    config.save(tmp_path / "config.json")
    assert PortraitConfig.load(tmp_path) == config
    assert portrait_preset(str(tmp_path / "config.json")) == config
    with pytest.raises(ValueError):
        PortraitConfig(image_size=20, patch=2, channel_mult=(1, 2, 2))
    with pytest.raises(ValueError):
        portrait_preset("nope")
    (tmp_path / "other.json").write_text('{"kind": "diffusion"}')
    with pytest.raises(ValueError, match="not a portrait"):
        PortraitConfig.load(tmp_path / "other.json")


def test_network_shapes_and_a_zero_head() -> None:
    net = PortraitUNet(PRESETS["tiny"])
    x = torch.randn(3, 3, 16, 16)
    out = net(x, torch.tensor([0, 500, 999]), torch.tensor([0, 1, 2]))
    assert out.shape == x.shape and out.abs().max() == 0  # zero-initialised output: v = 0 at the start


def test_training_lowers_the_loss_resumes_and_draws_faces(stills, tmp_path) -> None:
    data = Stills.load(stills)
    assert captions_for(data, PRESETS["tiny"]).tolist()[:4] == [2, 2, 1, 1]  # woman, woman, man, man
    out = tmp_path / "run"
    train = PortraitTrainConfig(steps=40, batch_size=8, lr=2e-3, warmup=1, save_every=20, log_every=10, amp=False)
    train_portrait(PRESETS["tiny"], train, data, out, progress=False)
    with open(out / "loss.csv") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert len(losses) == 4 and losses[-1] < losses[0]
    for name in ("model.safetensors", "config.json", "loss.png", "samples.png", "README.md", "train_state.json"):
        assert (out / name).stat().st_size > 0
    last = train_portrait(PRESETS["tiny"], PortraitTrainConfig(steps=50, batch_size=8, lr=2e-3, warmup=1, save_every=10, amp=False),
                          data, out, progress=False)
    assert last["step"] == 50
    model = PortraitModel.load(out)
    faces = model.sample("A woman is talking", seed=1, count=2, steps=4)
    assert faces.shape == (2, 16, 16, 3) and faces.dtype == np.uint8
    assert np.array_equal(faces, model.sample("A woman is talking", seed=1, count=2, steps=4))  # seeded
    assert model.sample("", steps=3, cfg_scale=2.0).shape == (1, 16, 16, 3)
    assert model.sample(1, sampler="ddim", steps=3).shape == (1, 16, 16, 3)
    ancestral = model.sample(1, sampler="ancestral", steps=3, seed=5)  # stochastic, yet seeded
    assert ancestral.shape == (1, 16, 16, 3) and np.array_equal(ancestral, model.sample(1, sampler="ancestral", steps=3, seed=5))
    assert not np.array_equal(ancestral, model.sample(1, sampler="ancestral", steps=3, seed=6))
    with pytest.raises(ValueError, match="not understood"):
        model.sample("A purple dragon is talking")


def test_half_precision_weights_load(tmp_path) -> None:
    net = PortraitUNet(PRESETS["tiny"])
    save_portrait_model(tmp_path, net.state_dict(), PRESETS["tiny"], half=True)
    model = PortraitModel.load(tmp_path)
    assert next(model.net.parameters()).dtype == torch.float32
    with pytest.raises(FileNotFoundError):
        PortraitModel.load(tmp_path / "missing")


def test_train_portrait_and_stills_commands(stills, tmp_path, capsys) -> None:
    from sender.cli import main

    assert main(["corpus", "stills", "--out", str(tmp_path / "s"), "--speakers", "3", "--per-speaker", "1",
                 "--size", "16", "--workers", "1"]) == 0
    assert Stills.load(tmp_path / "s").images.shape == (3, 16, 16, 3)
    out = tmp_path / "p"
    argv = ["train", "portrait", "--data", str(stills), "--out", str(out), "--config", "tiny", "--steps", "4",
            "--batch-size", "4", "--save-every", "2", "--no-progress", "--no-amp"]
    assert main(argv) == 0
    assert "checkpoint and samples.png" in capsys.readouterr().out
    assert main(argv[:-2] + ["--steps", "6", "--no-progress"]) == 0  # resumes with the run's own config
    assert main(["train", "portrait", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "q")]) == 2
    assert "no stills.npz" in capsys.readouterr().err


def _ddp_train(stills: str, out: str) -> None:
    train_portrait(PRESETS["tiny"], PortraitTrainConfig(steps=2, batch_size=2, save_every=2, log_every=1, amp=False),
                   Stills.load(stills), out, device="cpu", progress=False)


def test_ddp_two_cpu_processes_gloo(stills, tmp_path) -> None:
    """The same loop under torchrun-style ranks (gloo on CPU; nccl on GPUs)."""
    import json

    from tests.model.ddp import run_gloo

    run_gloo(_ddp_train, str(stills), str(tmp_path))
    assert json.loads((tmp_path / "train_state.json").read_text())["step"] == 2
    with open(tmp_path / "loss.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2]


def test_a_cleaner_in_the_model_folder_cleans_every_face(stills, tmp_path) -> None:
    from model.restore.data import make_generated_stills
    from model.restore.network import RestoreConfig
    from model.restore.train import RestoreTrainConfig, StillBatches, train_restore

    model_dir = tmp_path / "portrait"
    train_portrait(PRESETS["tiny"], PortraitTrainConfig(steps=2, batch_size=4, save_every=2, amp=False), Stills.load(stills),
                   model_dir, progress=False)
    generated = make_generated_stills(model_dir, stills, tmp_path / "clean-run", count=5, steps=2, batch=2, progress=False)
    with np.load(generated) as data:
        assert data["generated"].shape == (5, 16, 16, 3) and data["index"].shape == (5,)
    images = Stills.load(stills).images
    batches = StillBatches(images, generated)
    x, ref, target = batches.draw(4, 0.5, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert torch.equal(x, ref) and x.shape == target.shape == (4, 3, 16, 16)
    with np.load(generated) as data:  # a training prefix keeps only the re-samples of its own stills
        head = int(np.sort(data["index"])[2])
        assert len(StillBatches(images[:head], generated).generated["index"]) == int((data["index"] < head).sum()) == 2
    tiny = RestoreConfig(image_size=16, width=16, blocks=1, mid_blocks=1, groups=8, attention=False, name="portrait-clean")
    train_restore(tiny, RestoreTrainConfig(steps=2, batch_size=4, save_every=2, amp=False), batches, model_dir / "clean",
                  progress=False)
    model = PortraitModel.load(model_dir)
    assert model.cleaner is not None
    cleaned, raw = model.sample("", seed=3, steps=3), model.sample("", seed=3, steps=3, clean=False)
    assert cleaned.shape == raw.shape == (1, 16, 16, 3)
