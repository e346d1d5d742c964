"""`textcall lipsync export`: our weights -> the official Wav2Lip checkpoint, loaded strictly by the
official layout with identical outputs, and back through `convert` with identical outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.lipsync.checkpoint import load_model, save_model
from model.lipsync.cli import _run_export
from model.lipsync.convert import convert
from model.lipsync.export import ExportError, export
from model.lipsync.networks import LipSyncConfig, SyncNet, Wav2Lip, build, preset


def _trained_folder(folder: Path, cls) -> torch.nn.Module:
    """A full-width network with random weights and batch-norm statistics, saved as the trainers save it."""
    torch.manual_seed(0)
    net = cls()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(11)
    save_model(folder, net, net.config)
    return net.eval()


def _outputs(net: torch.nn.Module, kind: str) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    mel = torch.randn(1, 1, 80, 16, generator=gen)
    faces = torch.rand(1, 6, 96, 96, generator=gen) if kind == "wav2lip" else torch.rand(1, 15, 48, 96, generator=gen)
    with torch.no_grad():
        out = net.eval()(mel, faces)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("cls,kind,name", [(Wav2Lip, "wav2lip", "wav2lip.pth"), (SyncNet, "syncnet", "lipsync_expert.pth")])
def test_export_loads_strictly_into_the_official_layout_and_converts_back(tmp_path: Path, cls, kind: str, name: str) -> None:
    net = _trained_folder(tmp_path / "ours", cls)
    want = _outputs(net, kind)
    path, config = export(tmp_path / "ours", tmp_path)  # a folder: the released file's name
    assert path == tmp_path / name and config.kind == kind

    blob = torch.load(str(path), map_location="cpu", weights_only=True)
    assert set(blob) == {"state_dict", "optimizer", "global_step", "global_epoch"} and blob["optimizer"] is None
    state = blob["state_dict"]
    # as the official scripts load them: inference.py / wav2lip_train.py strip "module." from the
    # generator's keys; color_syncnet_train.py loads the expert's keys as they are
    assert all(k.startswith("module.") for k in state) if kind == "wav2lip" else not any(k.startswith("module.") for k in state)
    official = cls()
    official.load_state_dict({k.replace("module.", ""): v for k, v in state.items()}, strict=True)
    assert all(v.dtype == torch.float32 for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert int(state[next(k for k in state if k.endswith("num_batches_tracked"))]) == 11
    for w, g in zip(want, _outputs(official, kind), strict=True):
        assert torch.equal(w, g)

    folder, back = convert(path, tmp_path / "back")  # kind guessed from the keys
    assert back == LipSyncConfig(kind=kind, name=kind) and back.official
    loaded, _ = load_model(folder, kind=kind)
    for w, g in zip(want, _outputs(loaded, kind), strict=True):
        assert torch.equal(w, g)


def test_a_reduced_width_is_refused_with_the_reason(tmp_path: Path, capsys) -> None:
    small = preset("syncnet", "tiny")
    save_model(tmp_path / "tiny", build(small), small)
    with pytest.raises(ExportError, match=r"width 0\.0625.*official Wav2Lip code builds only the full-width"):
        export(tmp_path / "tiny", tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()

    class Args:
        folder, out = str(tmp_path / "tiny"), str(tmp_path / "x.pth")

    assert _run_export(Args) == 2 and "reduced syncnet network" in capsys.readouterr().err
    Args.folder = str(tmp_path / "missing")
    assert _run_export(Args) == 2 and "holds no model.safetensors" in capsys.readouterr().err


def test_the_run_step_travels_as_global_step(tmp_path: Path, capsys) -> None:
    _trained_folder(tmp_path / "run", SyncNet)
    (tmp_path / "run" / "train_state.json").write_text(json.dumps({"step": 1234, "param_groups": []}))

    class Args:
        folder, out = str(tmp_path / "run"), str(tmp_path / "out" / "expert.pth")

    assert _run_export(Args) == 0 and "syncnet (syncnet) ->" in capsys.readouterr().out
    assert torch.load(str(tmp_path / "out" / "expert.pth"), weights_only=True)["global_step"] == 1234
