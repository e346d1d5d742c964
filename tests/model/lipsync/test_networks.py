"""Wav2Lip and SyncNet: official sizes and names, reduced widths, official checkpoints load and convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.lipsync.checkpoint import load_model
from model.lipsync.cli import _run_convert
from model.lipsync.convert import ConversionError, convert, read_official
from model.lipsync.networks import LipSyncConfig, SyncNet, Wav2Lip, build, count_parameters, preset


def test_official_wav2lip_shapes_and_names() -> None:
    net = Wav2Lip().eval()
    assert 36_000_000 < count_parameters(net) < 36_600_000  # the released generator: 36.3 M
    keys = net.state_dict().keys()
    for key in ("face_encoder_blocks.0.0.conv_block.0.weight", "face_encoder_blocks.6.1.conv_block.1.running_var",
                "audio_encoder.12.conv_block.0.weight", "face_decoder_blocks.1.0.conv_block.0.weight",
                "face_decoder_blocks.6.2.conv_block.1.num_batches_tracked", "output_block.0.conv_block.0.weight",
                "output_block.1.weight"):
        assert key in keys
    assert net.face_decoder_blocks[1][0].conv_block[0].weight.shape == (1024, 512, 3, 3)  # ConvTranspose: [in, out, k, k]
    with torch.no_grad():
        assert net(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96)).shape == (2, 3, 96, 96)
        out = net(torch.randn(1, 5, 1, 80, 16), torch.rand(1, 6, 5, 96, 96))
    assert out.shape == (1, 3, 5, 96, 96) and 0 <= out.min() and out.max() <= 1


def test_official_syncnet_shapes_and_names() -> None:
    net = SyncNet().eval()
    assert 16_200_000 < count_parameters(net) < 16_600_000  # lipsync_expert: 16.4 M
    assert "face_encoder.16.conv_block.0.weight" in net.state_dict() and "audio_encoder.13.conv_block.1.bias" in net.state_dict()
    with torch.no_grad():
        a, v = net(torch.randn(3, 1, 80, 16), torch.rand(3, 15, 48, 96))
    assert a.shape == v.shape == (3, 512)
    assert torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5) and v.min() >= 0


@pytest.mark.parametrize("name", ["small", "tiny"])
def test_reduced_widths_keep_the_interfaces(name: str) -> None:
    gen, sync = build(preset("wav2lip", name)).eval(), build(preset("syncnet", name)).eval()
    assert count_parameters(gen) < count_parameters(Wav2Lip()) / 10
    with torch.no_grad():
        assert gen(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96)).shape == (2, 3, 96, 96)
        a, v = sync(torch.randn(2, 1, 80, 16), torch.rand(2, 15, 48, 96))
    assert a.shape == v.shape and a.shape[0] == 2


def test_config_validates() -> None:
    with pytest.raises(ValueError, match="kind"):
        LipSyncConfig(kind="gan")
    with pytest.raises(ValueError, match="96x96"):
        LipSyncConfig(image_size=64)
    cfg = preset("syncnet", "small")
    assert LipSyncConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def _official_file(path: Path, net: torch.nn.Module) -> Path:
    """A checkpoint as Wav2Lip's training scripts save it (DataParallel prefix, optimizer, step)."""
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                "optimizer": None, "global_step": 7, "global_epoch": 1}, path)
    return path


@pytest.mark.parametrize("cls,kind", [(Wav2Lip, "wav2lip"), (SyncNet, "syncnet")])
def test_official_checkpoint_converts_with_identical_outputs(tmp_path: Path, cls, kind: str) -> None:
    torch.manual_seed(0)
    net = cls()
    for m in net.modules():  # non-trivial batch-norm statistics, so a lost buffer would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    net.eval()
    path = _official_file(tmp_path / f"{kind}.pth", net)
    assert all(not k.startswith("module.") for k in read_official(path))
    folder, config = convert(path, tmp_path / kind)  # kind guessed from the keys
    assert config.kind == kind and config.official
    assert (folder / "model.safetensors").is_file() and json.loads((folder / "config.json").read_text())["kind"] == kind
    loaded, _ = load_model(folder, kind=kind)
    mel, faces = torch.randn(2, 1, 80, 16), torch.rand(2, 6 if kind == "wav2lip" else 15, 96 if kind == "wav2lip" else 48, 96)
    with torch.no_grad():
        want, got = net(mel, faces), loaded(mel, faces)
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        assert torch.equal(w, g)


def test_bad_checkpoints_are_refused(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConversionError, match="not a readable"):
        convert(junk, tmp_path / "out")
    small = _official_file(tmp_path / "small.pth", build(preset("syncnet", "tiny")))
    with pytest.raises(ConversionError, match="official syncnet layout"):
        convert(small, tmp_path / "out")
    with pytest.raises(ConversionError, match="neither"):
        torch.save({"state_dict": {"module.fc.weight": torch.zeros(2)}}, tmp_path / "other.pth")
        convert(tmp_path / "other.pth", tmp_path / "out")

    class Args:
        checkpoint, out, kind = str(junk), str(tmp_path / "out"), None

    assert _run_convert(Args) == 2 and "not a readable" in capsys.readouterr().err
