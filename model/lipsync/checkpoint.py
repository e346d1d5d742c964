"""Lip-sync checkpoints: ``model.safetensors`` + ``config.json`` (+ ``README.md``) in one folder.

Training folders add ``train_state.safetensors`` (raw weights, EMA weights, Adam moments) and
``train_state.json`` (step, seed, ...) so a killed run resumes from its last save. Files are written
to a temporary name and renamed: a kill never leaves a torn checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.lipsync.networks import LipSyncConfig, build, load_config, save_config

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "train_state.safetensors"
STATE_META = "train_state.json"


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def save_model(folder: str | Path, weights: nn.Module | dict[str, torch.Tensor], config: LipSyncConfig) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = weights.state_dict().items() if isinstance(weights, nn.Module) else weights.items()
    state = {k: v.detach().cpu().contiguous() for k, v in items}
    _atomic(folder / WEIGHTS, lambda p: save_file(state, str(p), metadata={"name": config.name, "kind": config.kind}))
    _atomic(folder / CONFIG, lambda p: save_config(config, p))
    return folder


def load_model(folder: str | Path, device: str | torch.device = "cpu", kind: str | None = None) -> tuple[nn.Module, LipSyncConfig]:
    """Network from ``config.json`` + ``model.safetensors``, in eval mode."""
    folder = Path(folder).expanduser()
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS} + {CONFIG} (train one with `textcall train "
                                f"{kind or 'lipsync'}` or convert official weights with `textcall lipsync convert`)")
    config = load_config(folder / CONFIG)
    if kind is not None and config.kind != kind:
        raise ValueError(f"{folder} holds a {config.kind} network, expected {kind}")
    module = build(config)
    module.load_state_dict(load_file(str(folder / WEIGHTS)))
    return module.to(device).eval(), config


class EMA:
    """Exponential moving average of parameters and float buffers (integer buffers copied); the decay
    at step n is ``min(decay, (1 + n) / (10 + n))`` so short runs are not dominated by the init."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError("EMA decay must be in [0, 1)")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1.0 - d)
            else:
                self.shadow[k].copy_(v)


def save_train_state(folder: Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None, meta: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.shadow.items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {**meta, "param_groups": opt["param_groups"]}
    _atomic(folder / STATE, lambda p: save_file(tensors, str(p)))
    _atomic(folder / STATE_META, lambda p: p.write_text(json.dumps(meta, indent=2)))


def load_train_state(folder: Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None) -> dict:
    meta = json.loads((folder / STATE_META).read_text())
    tensors = load_file(str(folder / STATE))
    module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        shadow = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        current = module.state_dict()
        ema.shadow = {k: v.to(current[k].device) for k, v in shadow.items()} if shadow else {
            k: v.detach().clone() for k, v in current.items()}
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
