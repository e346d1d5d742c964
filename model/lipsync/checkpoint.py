"""Lip-sync folders: ``model.safetensors`` + ``config.json`` (+ ``README.md``), built back into networks.

Training folders add the resumable training state (raw weights, EMA weights, Adam moments; step,
seed, ...). The files, the EMA and the training state are ``model.checkpoint``'s, shared by every
trainer; this module knows the lip-sync config and networks.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from model.checkpoint import CONFIG, STATE, STATE_META, WEIGHTS, save_weights
from model.lipsync.networks import LipSyncConfig, build, load_config, save_config

__all__ = ["CONFIG", "STATE", "STATE_META", "WEIGHTS", "load_model", "save_model"]


def save_model(folder: str | Path, weights: nn.Module | dict[str, torch.Tensor], config: LipSyncConfig) -> Path:
    """Write ``model.safetensors`` (tensors as they are) and ``config.json``."""
    return save_weights(folder, weights, config=lambda p: save_config(config, p),
                        metadata={"name": config.name, "kind": config.kind})


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
