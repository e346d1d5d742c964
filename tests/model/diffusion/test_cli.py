"""The CLI plugins: light to import, ``textcall sample`` writes MP4s."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from model.diffusion.checkpoint import save_model
from model.diffusion.config import preset
from model.diffusion.unet import AVUNet


REPO = Path(__file__).resolve().parents[3]


def test_cli_modules_do_not_import_torch() -> None:
    code = "import sys, model.train_cli, model.diffusion.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def _parser() -> argparse.ArgumentParser:
    from model.diffusion.cli import register_sample
    from model.train_cli import register

    parser = argparse.ArgumentParser(prog="textcall")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    register_sample(sub)
    return parser


def test_train_has_diffusion_and_classifier() -> None:
    parser = _parser()
    args = parser.parse_args(["train", "classifier", "--toy", "4", "--out", "x"])
    assert args.lr == 1e-3 and args.weight_decay == 0.05
    args = parser.parse_args(["train", "diffusion", "--data", "d", "--out", "x"])
    assert args.lr == 1e-4 and callable(args.run)


def test_sample_writes_mp4s(tmp_path) -> None:
    torch.manual_seed(0)
    save_model(tmp_path / "ckpt", AVUNet(preset("tiny").unet), preset("tiny"))
    wav = tmp_path / "speech.wav"
    sf.write(wav, (0.2 * np.sin(np.arange(8000) / 9.0)).astype(np.float32), 22050)
    args = _parser().parse_args([
        "sample", "--checkpoint", str(tmp_path / "ckpt"), "--caption", "A woman is talking", "--audio", str(wav),
        "--sampler", "ddim", "--steps", "3", "--num", "2", "--out", str(tmp_path / "out.mp4"),
    ])
    assert args.run(args) == 0
    for k in range(2):
        with av.open(str(tmp_path / f"out_{k}.mp4")) as container:
            kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]


def test_sample_rejects_unknown_caption(tmp_path, capsys) -> None:
    save_model(tmp_path, AVUNet(preset("tiny").unet), preset("tiny"))
    args = _parser().parse_args(["sample", "--checkpoint", str(tmp_path), "--caption", "a dog barks"])
    assert args.run(args) == 2
    assert "not understood" in capsys.readouterr().err


def test_sample_refuses_a_classifier_trained_for_another_audio_scale(tmp_path, capsys) -> None:
    import dataclasses

    from model.diffusion.checkpoint import build_model
    from model.diffusion.config import classifier_preset

    save_model(tmp_path / "ckpt", AVUNet(preset("tiny").unet), preset("tiny"))
    loud = dataclasses.replace(classifier_preset("tiny"), audio_scale=4.0)
    save_model(tmp_path / "clf", build_model(loud), loud)
    args = _parser().parse_args([
        "sample", "--checkpoint", str(tmp_path / "ckpt"), "--caption", "A woman is talking", "--classifier",
        str(tmp_path / "clf"), "--steps", "2", "--out", str(tmp_path / "out.mp4"),
    ])
    assert args.run(args) == 2
    assert "audio_scale 1.0 vs 4.0" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_sample_autoguides_audio_with_a_matching_checkpoint_only(tmp_path, capsys) -> None:
    import dataclasses

    torch.manual_seed(0)
    save_model(tmp_path / "ckpt", AVUNet(preset("tiny").unet), preset("tiny"))
    save_model(tmp_path / "weak", AVUNet(preset("tiny").unet), preset("tiny"))
    loud = dataclasses.replace(preset("tiny"), audio_scale=4.0)
    save_model(tmp_path / "other", AVUNet(loud.unet), loud)
    common = ["sample", "--checkpoint", str(tmp_path / "ckpt"), "--sampler", "ddim", "--steps", "2"]
    args = _parser().parse_args([*common, "--autoguide", str(tmp_path / "weak"), "--out", str(tmp_path / "a.mp4")])
    assert args.run(args) == 0 and (tmp_path / "a.mp4").is_file()
    args = _parser().parse_args([*common, "--autoguide", str(tmp_path / "other"), "--out", str(tmp_path / "b.mp4")])
    assert args.run(args) == 2
    assert "autoguide" in capsys.readouterr().err and not (tmp_path / "b.mp4").exists()


def test_sample_takes_the_paper_literal_eq10_and_refuses_negative_scales(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    save_model(tmp_path / "ckpt", AVUNet(preset("tiny").unet), preset("tiny"))
    wav = tmp_path / "speech.wav"
    sf.write(wav, (0.2 * np.sin(np.arange(4000) / 9.0)).astype(np.float32), 16000)
    common = ["sample", "--checkpoint", str(tmp_path / "ckpt"), "--audio", str(wav), "--sampler", "ddim", "--steps", "2"]
    args = _parser().parse_args([*common, "--paper-eq10", "--out", str(tmp_path / "literal.mp4")])
    assert args.run(args) == 0 and (tmp_path / "literal.mp4").is_file()
    args = _parser().parse_args([*common, "--audio-contrast", "-1", "--out", str(tmp_path / "bad.mp4")])
    assert args.run(args) == 2
    assert "audio_contrast" in capsys.readouterr().err and not (tmp_path / "bad.mp4").exists()


def test_sample_reads_a_free_form_caption_for_a_description_model(tmp_path, capsys) -> None:
    import dataclasses

    from model.describe.attributes import SLOTS

    config = preset("tiny")
    config = dataclasses.replace(config, unet=dataclasses.replace(config.unet, attribute_slots=SLOTS))
    save_model(tmp_path / "ckpt", AVUNet(config.unet), config)
    args = _parser().parse_args(["sample", "--checkpoint", str(tmp_path / "ckpt"), "--caption",
                                 "a woman with red hair and a dragon", "--sampler", "ddim", "--steps", "2",
                                 "--out", str(tmp_path / "out.mp4")])
    assert args.run(args) == 0 and (tmp_path / "out.mp4").is_file()
    assert "passed over" in capsys.readouterr().err  # "dragon": noted, not an error


def test_train_describe_flags_resolve_to_a_description_model(tmp_path) -> None:
    from model.describe.attributes import SLOTS
    from model.diffusion import config as cfgs
    from model.diffusion.train_cli import _resolve

    args = _parser().parse_args(["train", "diffusion", "--data", "d", "--out", "x", "--describe", "--condition-lr-scale", "20"])
    assert args.describe and args.condition_lr_scale == 20 and args.attribute_dropout == 0.5
    args = _parser().parse_args(["train", "classifier", "--data", "d", "--out", "x", "--describe"])
    assert args.describe and not hasattr(args, "condition_lr_scale")
    assert _resolve(cfgs, "tiny", tmp_path, "diffusion", None, True).unet.attribute_slots == SLOTS
    clf = _resolve(cfgs, "tiny", tmp_path, "classifier", None, True)
    assert isinstance(clf, cfgs.ClassifierConfig) and clf.num_classes == SLOTS
    assert _resolve(cfgs, "tiny", tmp_path, "diffusion").unet.attribute_slots == 0
