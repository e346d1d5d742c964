"""The one checkpoint writer, EMA and training state that every trainer uses (model/checkpoint.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from model.checkpoint import EMA, load_train_state, save_train_state, save_weights


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))  # float parameters and buffers, an int64 buffer


def _step(net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    net.train()
    loss = net(torch.randn(4, 2, 5, 5)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_ema_blends_and_warms_up() -> None:
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, 0.5)
    with torch.no_grad():
        net.weight.add_(2.0)
    before = ema.shadow["weight"].clone()
    ema.update(net)
    assert torch.allclose(ema.shadow["weight"], before + 1.0)
    warm = EMA(net, 0.9999)
    assert warm.decay_at(0) == 0.1 and warm.decay_at(10**6) == 0.9999
    assert EMA(net, 0.9999, warmup=False).decay_at(0) == 0.9999
    with pytest.raises(ValueError, match="decay"):
        EMA(net, 1.0)


def test_ema_averages_float_buffers_and_copies_integer_ones() -> None:
    net = _net()
    ema = EMA(net, 0.5, warmup=False)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    _step(net, optimizer)
    ema.update(net)
    now = net.state_dict()
    for key in ("0.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(ema.shadow[key], (start[key] + now[key]) / 2), key
    assert ema.shadow["1.num_batches_tracked"].dtype == torch.int64 and int(ema.shadow["1.num_batches_tracked"]) == 1
    copy = _net()
    ema.copy_to(copy)
    assert torch.equal(copy.state_dict()["0.weight"], ema.shadow["0.weight"])
    with pytest.raises(ValueError, match="do not match"):
        ema.load_state_dict({"0.weight": torch.zeros(3, 2, 1, 1)})


def test_training_state_round_trips_in_its_documented_layout(tmp_path: Path) -> None:
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    ema = EMA(net, 0.9)
    for step in range(3):
        _step(net, optimizer)
        ema.update(net, step)
    save_train_state(tmp_path / "run", module=net, optimizer=optimizer, ema=ema, meta={"step": 3, "seed": 7})
    with safe_open(str(tmp_path / "run" / "train_state.safetensors"), "pt") as fh:
        keys = set(fh.keys())
    assert {"model.0.weight", "ema.1.num_batches_tracked", "optim.0.exp_avg", "optim.3.exp_avg_sq", "optim.0.step"} <= keys
    assert json.loads((tmp_path / "run" / "train_state.json").read_text())["param_groups"][0]["lr"] == 1e-2

    fresh = _net()
    with torch.no_grad():
        fresh[0].weight.zero_()
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    fresh_ema = EMA(fresh, 0.9)
    meta = load_train_state(tmp_path / "run", module=fresh, optimizer=fresh_opt, ema=fresh_ema)
    assert meta == {"step": 3, "seed": 7}
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
        assert torch.equal(fresh_ema.shadow[key], ema.shadow[key]), key
    for module, opt in ((net, optimizer), (fresh, fresh_opt)):  # the restored Adam moments give the same next step
        torch.manual_seed(1)
        _step(module, opt)
    assert torch.equal(fresh[0].weight, net[0].weight)
    assert load_train_state(tmp_path / "nothing", module=fresh, optimizer=fresh_opt, ema=fresh_ema) is None


def test_an_ema_turned_on_at_resume_starts_from_the_restored_weights(tmp_path: Path) -> None:
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    _step(net, optimizer)
    save_train_state(tmp_path, module=net, optimizer=optimizer, ema=None, meta={"step": 1})
    fresh = _net()
    ema = EMA(fresh, 0.9)
    load_train_state(tmp_path, module=fresh, optimizer=torch.optim.AdamW(fresh.parameters(), lr=1e-2), ema=ema)
    assert torch.equal(ema.shadow["0.weight"], net.state_dict()["0.weight"])


def test_save_weights_casts_floats_only_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    net = _net()
    folder = save_weights(tmp_path / "m", net, config=lambda p: p.write_text('{"name": "x"}\n'), dtype=torch.float16,
                          metadata={"name": "x"})
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        assert fh.metadata() == {"name": "x"}
        assert fh.get_tensor("0.weight").dtype == torch.float16
        assert fh.get_tensor("1.num_batches_tracked").dtype == torch.int64
    assert json.loads((folder / "config.json").read_text()) == {"name": "x"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o644
    kept = save_weights(tmp_path / "k", net.state_dict(), config=lambda p: p.write_text("{}"))
    with safe_open(str(kept / "model.safetensors"), "pt") as fh:
        assert fh.get_tensor("0.weight").dtype == torch.float32 and fh.metadata() is None
