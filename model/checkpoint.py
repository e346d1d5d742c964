"""Checkpoint folders and the EMA of weights: one writer and one training state for every trainer.

A model folder holds ``model.safetensors`` (the weights used for sampling: the EMA when a run keeps
one) and ``config.json`` (the architecture, written by its owner's config class). A training folder
adds ``train_state.safetensors`` (``model.*`` raw weights, ``ema.*`` EMA weights,
``optim.<param index>.<name>`` optimizer moments) and ``train_state.json`` (step, seed, ... and the
optimizer's param groups), so a killed run resumes where its last save left it. Every file is
written under a temporary name and renamed: a kill never leaves a torn checkpoint.

Each package keeps its own ``save_model`` / ``load_model``, because it knows its config and network
classes (``model.diffusion.checkpoint``, ``model.lipsync.checkpoint``, ``model.portrait.sample``,
``model.restore.train``, the judges in ``model.evaluation``); all of them write through
``save_weights``, and every trainer keeps its EMA and training state with ``EMA`` and
``save_train_state`` / ``load_train_state``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "train_state.safetensors"
STATE_META = "train_state.json"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path``: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # safetensors creates files owner-only
    os.replace(tmp, path)


def save_weights(
    folder: str | Path,
    weights: nn.Module | dict[str, torch.Tensor],
    *,
    config: Callable[[Path], None],
    dtype: torch.dtype | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``folder/model.safetensors`` and then ``folder/config.json`` (by ``config(path)``), each atomically.

    ``weights``: a module or a state dict (on any device). ``dtype``: what floating tensors are stored
    as (``None``: as they are); integer tensors (batch-norm step counts) are always kept.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = weights.state_dict().items() if isinstance(weights, nn.Module) else weights.items()
    tensors = {k: v.detach().to(dtype if dtype is not None and v.is_floating_point() else v.dtype).cpu().contiguous()
               for k, v in items}
    atomic_write(folder / WEIGHTS, lambda p: save_file(tensors, str(p), metadata=metadata))
    atomic_write(folder / CONFIG, config)
    return folder


class EMA:
    """Exponential moving average of a module's weights: floating parameters and buffers are averaged
    in float32, integer buffers (batch-norm step counts) copied.

    With ``warmup`` the decay at optimisation step n (0-based) is ``min(decay, (1 + n) / (10 + n))``,
    so a short run's EMA is not dominated by the random initial weights (0.9999 ** 1000 still leaves
    90 % of them).

    Why not ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``: its decay is fixed
    (the warmup above would need a custom average keyed on its own update count, which restarts at 0
    on a resume, because the training state has no place for it); its first update copies the weights
    where this one blends them at the warm-up decay; with ``use_buffers=True`` it blends integer
    buffers arithmetically instead of copying them, and without it leaves the batch-norm statistics
    at their initial values; and it keeps a deep copy of the module whose state dict carries a
    ``module.`` prefix and an ``n_averaged`` entry. Using it would change the numbers and the keys of
    every checkpoint written so far (``ema.*`` in ``train_state.safetensors``, ``model.safetensors``).
    """

    def __init__(self, module: nn.Module, decay: float = 0.9999, *, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError("EMA decay must be in [0, 1)")
        self.decay = decay
        self.warmup = warmup
        self.shadow = self._snapshot(module)

    @staticmethod
    def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                for k, v in module.state_dict().items()}

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
        own = module.state_dict()
        module.load_state_dict({k: v.to(own[k].dtype) for k, v in self.shadow.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy saved EMA weights in (the keys must be the module's)."""
        if state.keys() != self.shadow.keys():
            missing, extra = sorted(self.shadow.keys() - state.keys()), sorted(state.keys() - self.shadow.keys())
            raise ValueError(f"EMA weights do not match the network (missing {missing[:5]}, unexpected {extra[:5]})")
        for k, v in self.shadow.items():
            v.copy_(state[k])

    def reset(self, module: nn.Module) -> None:
        """Start over from the module's current weights."""
        self.shadow = self._snapshot(module)


# -- training state --------------------------------------------------------------------------------
def save_train_state(
    folder: str | Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None, meta: dict
) -> None:
    """Raw weights, EMA weights (if any) and optimizer moments as safetensors; ``meta`` (step, ...) as JSON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {**meta, "param_groups": opt["param_groups"]}
    atomic_write(folder / STATE, lambda p: save_file(tensors, str(p)))
    atomic_write(folder / STATE_META, lambda p: p.write_text(json.dumps(meta, indent=2)))


def load_train_state(
    folder: str | Path, *, module: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None
) -> dict | None:
    """Restore what ``save_train_state`` wrote; returns its meta (with ``step``) or None if there is none.

    A state saved without EMA weights (a run that turns the EMA on when it resumes) starts the EMA
    from the restored weights.
    """
    folder = Path(folder)
    if not (folder / STATE_META).is_file():
        return None
    meta = json.loads((folder / STATE_META).read_text())
    tensors = load_file(str(folder / STATE))
    module.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        saved = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        if saved:
            ema.load_state_dict(saved)
        else:
            ema.reset(module)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    device = next(module.parameters()).device
    state = {i: {n: (v if n == "step" else v.to(device)) for n, v in s.items()} for i, s in state.items()}
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    return meta
