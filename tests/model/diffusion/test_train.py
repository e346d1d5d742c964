"""Training: the loss falls, checkpoints round-trip, a killed run resumes, DDP on two CPU processes."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model.diffusion.av import AV
from model.diffusion.checkpoint import load_model, save_model
from model.diffusion.config import ClassifierConfig, check_classifier, classifier_preset, load_config, preset, save_config
from model.diffusion.data import Segments, load_segments, toy_segments
from model.diffusion.schedule import eps_from_v, linear_schedule, q_sample, v_target
from model.diffusion.train import TrainConfig, run_training, setup_distributed, to_model_batch
from model.diffusion.unet import AVUNet


REPO = Path(__file__).resolve().parents[3]


def _toy(n: int = 8) -> Segments:
    return toy_segments(n, 4, 16, 4000, seed=0)


def test_loss_falls_when_overfitting_a_tiny_batch(tmp_path) -> None:
    torch.manual_seed(0)
    # float32: a 60-step run of a 16-channel net is what this checks; bf16 autocast (the default,
    # on CPU too) trains the same loop at a quarter of the cost and is covered by the other tests
    train = TrainConfig(steps=60, batch_size=4, lr=2e-3, save_every=1000, log_every=10, ema_decay=0.9, amp=False)
    run_training(preset("tiny"), train, _toy(4), tmp_path, device="cpu", progress=False)
    with open(tmp_path / "loss.csv") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert len(losses) == 6
    assert losses[-1] < 0.6 * losses[0], losses
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_v_prediction_loss_falls_and_loads_as_an_eps_network(tmp_path) -> None:
    """A v run trains on the v target; load_model hands samplers eps = sqrt(1 - ab) x_t + sqrt(ab) v."""
    config = dataclasses.replace(preset("tiny"), prediction="v")
    schedule = linear_schedule(config.schedule)
    toy = _toy(4)
    x0, _ = to_model_batch(toy, np.arange(4), config, "cpu")
    gen = torch.Generator().manual_seed(1)
    t_eval = torch.tensor([300, 600, 300, 600])  # mid noise: 4 memorizable clips (at t ~ T only their mean is)
    noise = AV.randn_like(x0, gen)
    target = v_target(schedule, x0, t_eval, noise)

    def v_mse(net) -> float:  # on a fixed set of (t, noise): the logged losses draw t at random
        with torch.no_grad():
            out = net.eval()(q_sample(schedule, x0, t_eval, noise), t_eval, torch.zeros(4, dtype=torch.long))
        return float(((out - target) * (out - target)).map(torch.mean).video)

    torch.manual_seed(0)
    before = v_mse(AVUNet(config.unet))  # run_training seeds the same initial weights
    train = TrainConfig(steps=60, batch_size=4, lr=2e-3, save_every=1000, log_every=10, ema_decay=0.9)
    run_training(config, train, toy, tmp_path, device="cpu", progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["prediction"] == "v"
    raw = AVUNet(config.unet)
    raw.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert v_mse(raw) < 0.6 * before

    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config.prediction == "v"
    x = AV(torch.randn(2, 4, 3, 16, 16), torch.randn(2, 1, 4000))
    t, c = torch.tensor([10, 990]), torch.tensor([1, 0])
    with torch.no_grad():
        eps, v = loaded(x, t, c), raw.eval()(x, t, c)
    want = eps_from_v(schedule, x, t, v)
    assert torch.allclose(eps.video, want.video) and torch.allclose(eps.audio, want.audio)
    assert not torch.allclose(eps.video, v.video)


def test_init_starts_a_new_run_from_given_weights_and_prediction_can_change(tmp_path) -> None:
    run_training(preset("tiny"), TrainConfig(steps=2, batch_size=1, save_every=2), _toy(), tmp_path / "eps", device="cpu", progress=False)
    out = tmp_path / "v"
    args = ["diffusion", "--toy", "4", "--config", "tiny", "--out", str(out), "--prediction", "v",
            "--init", str(tmp_path / "eps"), "--steps", "1", "--lr", "1e-12", "--ema-decay", "0", "--no-progress"]
    result = subprocess.run(_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert load_config(out).prediction == "v"
    before, after = load_file(str(tmp_path / "eps" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)  # lr ~0: still the init weights
    card = (out / "README.md").read_text()
    assert "network target: v" in card and f"started from the weights in `{tmp_path / 'eps'}`" in card
    # a run cannot switch its target halfway
    result = subprocess.run(_cli(*args[:-7], "--prediction", "eps", "--steps", "2", "--no-progress"),
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "v-prediction run" in result.stderr


def test_init_may_add_new_parameters_but_not_drop_any(tmp_path) -> None:
    plain = preset("tiny")
    grown = dataclasses.replace(plain, unet=dataclasses.replace(plain.unet, position_embedding=True))
    one = TrainConfig(steps=1, batch_size=1, save_every=1)
    run_training(plain, one, _toy(), tmp_path / "plain", device="cpu", progress=False)
    run_training(grown, dataclasses.replace(one, init=str(tmp_path / "plain")), _toy(), tmp_path / "grown", device="cpu", progress=False)
    assert "encoder.video_position" in load_file(str(tmp_path / "grown" / "model.safetensors"))
    with pytest.raises(ValueError, match="video_position"):
        run_training(plain, dataclasses.replace(one, init=str(tmp_path / "grown")), _toy(), tmp_path / "back", device="cpu", progress=False)


def test_prediction_is_validated_and_old_configs_read_as_eps(tmp_path) -> None:
    with pytest.raises(ValueError, match="prediction"):
        dataclasses.replace(preset("tiny"), prediction="x0")
    data = preset("tiny").to_dict()
    del data["prediction"]  # config.json written before v existed
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert load_config(tmp_path).prediction == "eps"
    assert preset("paper").prediction == "eps" and preset("small").prediction == "v"


def test_classifier_training_runs(tmp_path) -> None:
    train = TrainConfig(steps=20, batch_size=8, lr=1e-3, weight_decay=0.05, lr_decay=True, save_every=20, log_every=10)
    last = run_training(classifier_preset("tiny"), train, _toy(16), tmp_path, device="cpu", progress=False)
    assert 0.0 <= last["accuracy"] <= 1.0
    clf, config = load_model(tmp_path)
    assert clf(AV(torch.zeros(1, 4, 3, 16, 16), torch.zeros(1, 1, 4000)), torch.tensor([0])).shape == (1, 2)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    config = preset("tiny")
    net = AVUNet(config.unet)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(tmp_path, net, config)
    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config == config
    x = AV(torch.randn(1, 4, 3, 16, 16), torch.randn(1, 1, 4000))
    t, c = torch.tensor([7]), torch.tensor([1])
    with torch.no_grad():
        a, b = net.eval()(x, t, c), loaded(x, t, c)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    assert json.loads((tmp_path / "config.json").read_text())["unet"]["frames"] == 4


def test_resumed_run_equals_uninterrupted_run(tmp_path) -> None:
    config = preset("tiny")
    full = TrainConfig(steps=6, batch_size=2, save_every=3, log_every=1, lr=1e-3)
    run_training(config, full, _toy(), tmp_path / "a", device="cpu", progress=False)
    run_training(config, TrainConfig(steps=3, batch_size=2, save_every=3, log_every=1, lr=1e-3), _toy(), tmp_path / "b", device="cpu", progress=False)
    run_training(config, full, _toy(), tmp_path / "b", device="cpu", progress=False)
    a, _ = load_model(tmp_path / "a")
    b, _ = load_model(tmp_path / "b")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6), name


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "model.train_cli", *args]


def test_resume_after_a_kill_continues_the_step_count(tmp_path) -> None:
    out = tmp_path / "run"
    common = ["diffusion", "--toy", "8", "--config", "tiny", "--out", str(out), "--batch-size", "2",
              "--save-every", "2", "--log-every", "1", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(_cli(*common, "--steps", "100000"), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "train_state.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state.is_file() and json.loads(state.read_text())["step"] >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    result = subprocess.run(_cli(*common, "--steps", str(killed_at + 3)), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(state.read_text())["step"] == killed_at + 3
    with open(out / "loss.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == list(range(1, killed_at + 4))  # rows logged after the last save were dropped


def test_resume_refuses_another_architecture(tmp_path) -> None:
    run_training(preset("tiny"), TrainConfig(steps=1, batch_size=1, save_every=1), _toy(), tmp_path, device="cpu", progress=False)
    result = subprocess.run(_cli("diffusion", "--toy", "4", "--config", "small", "--out", str(tmp_path), "--steps", "2"),
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "another architecture" in result.stderr


def _ddp_train(out: str) -> None:
    train = TrainConfig(steps=2, batch_size=2, save_every=2, log_every=1, lr=1e-3)
    run_training(preset("tiny"), train, toy_segments(8, 4, 16, 4000), out, device="cpu", progress=False)


def test_ddp_two_cpu_processes_gloo(tmp_path) -> None:
    from tests.model.ddp import run_gloo

    run_gloo(_ddp_train, str(tmp_path))
    meta = json.loads((tmp_path / "train_state.json").read_text())
    assert meta["step"] == 2
    with open(tmp_path / "loss.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2]


def test_npz_data_folder(tmp_path) -> None:
    seg = _toy(3)
    np.savez(tmp_path / "part0.npz", video=seg.video, audio=seg.audio, caption=np.array(["A man is talking", "A woman is talking", ""]))
    loaded = load_segments(tmp_path)
    assert loaded.caption.tolist() == [1, 2, 0] and loaded.video.shape == seg.video.shape


def test_corpus_cache_folder(tmp_path) -> None:
    cache = pytest.importorskip("model.corpus.cache")
    writer = cache.CacheWriter(tmp_path, frames=4, size=16, samples=4000, fps=16, sample_rate=16000)
    seg = _toy(2)
    for i, caption in enumerate(["A woman is talking", "A man is talking"]):
        meta = {"caption": caption, "speaker": "s1", "sentence": "bin blue", "start": 0.0}
        writer.add("train", seg.video[i], seg.audio[i], meta)
    writer.close()
    loaded = load_segments(tmp_path)
    assert loaded.caption.tolist() == [2, 1]
    assert np.array_equal(loaded.video, seg.video)
    assert np.allclose(loaded.audio, seg.audio, atol=1e-4)


def test_bare_cuda_device_gets_this_process_gpu_index(monkeypatch) -> None:
    """``--device cuda`` (the default on a GPU machine) once crashed in torch.cuda.set_device, which
    wants an index: it now means this process's GPU (LOCAL_RANK under torchrun, else 0)."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert setup_distributed("cuda").device == torch.device("cuda", 1) and chosen == [torch.device("cuda", 1)]
    monkeypatch.delenv("LOCAL_RANK")
    assert setup_distributed("cuda:0").device == torch.device("cuda", 0)
    assert setup_distributed("cuda").device == torch.device("cuda", 0)
    assert setup_distributed("cpu").device == torch.device("cpu") and len(chosen) == 3


def test_sigterm_saves_the_current_step_and_exits(tmp_path) -> None:
    """A polite stop (SIGTERM, Ctrl-C) checkpoints the step it stopped at, not the last save."""
    out = tmp_path / "run"
    args = ["diffusion", "--toy", "8", "--config", "tiny", "--out", str(out), "--batch-size", "2",
            "--save-every", "100000", "--log-every", "1", "--threads", "1", "--no-progress", "--steps", "100000"]
    proc = subprocess.Popen(_cli(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    curve = out / "loss.csv"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (curve.is_file() and len(curve.read_text().splitlines()) > 3):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    step = json.loads((out / "train_state.json").read_text())["step"]
    assert step >= 3 and (out / "model.safetensors").is_file()


def test_crop_window_keeps_audio_under_its_frames() -> None:
    from model.diffusion.av import AV
    from model.diffusion.train import crop_window

    video = torch.arange(16).float().reshape(1, 16, 1, 1, 1).expand(2, 16, 3, 4, 4)
    audio = torch.arange(16_000).float().div(1000).floor().reshape(1, 1, -1).expand(2, 1, -1)
    x = crop_window(AV(video, audio), 4, 5)
    assert x.video.shape == (2, 4, 3, 4, 4) and x.audio.shape == (2, 1, 4000)
    assert x.video[0, :, 0, 0, 0].tolist() == [5, 6, 7, 8]
    assert x.audio[0, 0, ::1000].tolist() == [5, 6, 7, 8]  # the audio of exactly those frames


def test_training_on_windows_runs_and_says_so(tmp_path) -> None:
    from model.diffusion.config import preset
    from model.diffusion.data import toy_segments
    from model.diffusion.train import TrainConfig, run_training

    config = preset("tiny")
    u = config.unet
    segments = toy_segments(8, u.frames, u.image_size, u.audio_samples)
    last = run_training(config, TrainConfig(steps=3, batch_size=2, save_every=3, log_every=1, crop_frames=2), segments, tmp_path, device="cpu", progress=False)
    assert last["step"] == 3 and "2-frame windows" in (tmp_path / "README.md").read_text()


def test_classifier_init_adapts_a_classifier_to_another_audio_scale(tmp_path) -> None:
    tiny = preset("tiny")
    run_training(classifier_preset("tiny"), TrainConfig(steps=1, batch_size=2, save_every=1), _toy(), tmp_path / "clf",
                 device="cpu", progress=False)
    save_config(dataclasses.replace(tiny, audio_scale=4.0), tmp_path / "loud.json")
    out = tmp_path / "clf4"
    args = ["classifier", "--toy", "4", "--config", str(tmp_path / "loud.json"), "--out", str(out), "--init",
            str(tmp_path / "clf"), "--steps", "1", "--lr", "1e-12", "--ema-decay", "0", "--no-progress"]
    result = subprocess.run(_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    adapted = load_config(out)
    assert isinstance(adapted, ClassifierConfig) and adapted.audio_scale == 4.0
    before, after = load_file(str(tmp_path / "clf" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    check_classifier(dataclasses.replace(tiny, audio_scale=4.0), adapted)
    with pytest.raises(ValueError, match="audio_scale 1.0 vs 4.0"):
        check_classifier(tiny, adapted)


def test_the_audio_learning_rate_group_is_the_audio_branch() -> None:
    """``--audio-lr-scale``: the second optimizer group is the audio branch's own parameters (picked by
    structure, not by name), the first everything else."""
    from model.diffusion.train import _param_groups
    from model.diffusion.unet import audio_only_parameters

    net = AVUNet(preset("tiny").unet)
    assert len(_param_groups(net, 1.0)) == 1
    rest, audio = _param_groups(net, 5.0)
    assert [id(p) for p in audio["params"]] == [id(p) for p in audio_only_parameters(net)]
    ids = [id(p) for p in rest["params"] + audio["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()) and len(set(ids)) == len(ids)
