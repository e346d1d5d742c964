"""Checkpoints: ``model.safetensors`` + ``config.json`` in one folder; EMA of weights.

A shipped folder holds the (EMA) weights used for sampling and the architecture config, nothing else.
Training folders add ``train_state.safetensors`` (raw weights and optimizer moments) and
``train_state.json`` (step, data position) so a killed run resumes where its last save left it.
Writes go to a temporary file first and are renamed, so a kill never leaves a torn checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.diffusion.config import ClassifierConfig, DiffusionConfig, load_config, save_config

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # safetensors creates files owner-only
    os.replace(tmp, path)


def save_model(
    folder: str | Path, weights: nn.Module | dict[str, torch.Tensor], config: DiffusionConfig | ClassifierConfig
) -> Path:
    """Write ``model.safetensors`` (float32) and ``config.json``; ``weights`` is a module or a state dict."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = weights.state_dict().items() if isinstance(weights, nn.Module) else weights.items()
    state = {k: v.detach().float().cpu().contiguous() for k, v in items}
    _atomic(folder / WEIGHTS, lambda p: save_file(state, str(p), metadata={"name": config.name}))
    _atomic(folder / CONFIG, lambda p: save_config(config, p))
    return folder


def build_model(config: DiffusionConfig | ClassifierConfig) -> nn.Module:
    if isinstance(config, ClassifierConfig):
        from model.diffusion.classifier import AVClassifier

        return AVClassifier(config)
    from model.diffusion.unet import AVUNet

    return AVUNet(config.unet)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, DiffusionConfig | ClassifierConfig]:
    """Build the network from ``config.json`` and load ``model.safetensors`` into it (eval mode).

    A diffusion model always comes back as ``(x_t, t, caption) -> eps``, whatever it was trained to
    predict (``config.prediction``); ``build_model`` gives the raw network that training uses.
    """
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS} + {CONFIG}")
    config = load_config(folder / CONFIG)
    module = build_model(config)
    module.load_state_dict(load_file(str(folder / WEIGHTS)))
    if isinstance(config, DiffusionConfig) and config.prediction != "eps":
        from model.diffusion.prediction import EpsNetwork
        from model.diffusion.schedule import linear_schedule

        module = EpsNetwork(module, linear_schedule(config.schedule))  # samplers and guidance speak eps
    return module.to(device).eval(), config


class EMA:
    """Exponential moving average of a module's parameters (buffers copied).

    With ``warmup`` the decay at step n is ``min(decay, (1 + n) / (10 + n))``, so a short run's EMA
    is not dominated by the random initial weights (0.9999 ** 1000 still leaves 90 % of them).
    """

    def __init__(self, module: nn.Module, decay: float = 0.9999, *, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError("EMA decay must be in [0, 1)")
        self.decay = decay
        self.warmup = warmup
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    def decay_at(self, step: int | None) -> float:
        if not self.warmup or step is None:
            return self.decay
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int | None = None) -> None:
        """Blend in the module's weights; ``step`` (0-based optimisation step) drives the warmup."""
        decay = self.decay_at(step)
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach().float(), 1.0 - decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, module: nn.Module) -> None:
        module.load_state_dict({k: v.to(module.state_dict()[k].dtype) for k, v in self.shadow.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow


# -- training state --------------------------------------------------------------------------------
def save_train_state(
    folder: str | Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA, meta: dict
) -> None:
    """Raw weights, EMA weights and Adam moments as safetensors; step etc. as JSON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in module.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    for k, v in ema.state_dict().items():
        tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {**meta, "param_groups": opt["param_groups"]}
    _atomic(folder / "train_state.safetensors", lambda p: save_file(tensors, str(p)))
    _atomic(folder / "train_state.json", lambda p: p.write_text(json.dumps(meta, indent=2)))


def load_train_state(
    folder: str | Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA
) -> dict | None:
    """Restore what ``save_train_state`` wrote; returns its meta (with ``step``) or None if absent."""
    folder = Path(folder)
    if not (folder / "train_state.json").is_file():
        return None
    meta = json.loads((folder / "train_state.json").read_text())
    tensors = load_file(str(folder / "train_state.safetensors"))
    module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for k in ema.shadow:
        ema.shadow[k].copy_(tensors[f"ema.{k}"])
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    device = next(module.parameters()).device
    state = {i: {n: (v if n == "step" else v.to(device)) for n, v in s.items()} for i, s in state.items()}
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    return meta
