"""A loaded restorer for inference (``TalkingHead``'s clean-up and the portrait cleaner): no training code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from model.diffusion.generate import video_from_model
from model.evaluation.gender import frames_to_tensor
from model.restore.network import RestoreConfig, RestoreNet


def to_tensor(images: np.ndarray) -> Tensor:
    """uint8 ``[B, H, W, 3]`` -> float ``[B, 3, H, W]`` in [-1, 1] (at its own size)."""
    return frames_to_tensor(images, images.shape[1])


class Restorer:
    """A loaded restorer: ``restore(frames, reference)``. Not thread-safe (one generation thread)."""

    def __init__(self, net: RestoreNet) -> None:
        self.net = net.eval()

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Restorer:
        folder = Path(folder)
        if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} holds no restorer (model.safetensors + config.json)")
        net = RestoreNet(RestoreConfig.load(folder))
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()})
        return cls(net.to(device))

    @torch.no_grad()
    def restore(self, frames: np.ndarray, reference: np.ndarray, batch: int = 64) -> np.ndarray:
        """uint8 ``[F, S, S, 3]`` and uint8 ``[S, S, 3]`` -> uint8 ``[F, S, S, 3]``."""
        size = self.net.cfg.image_size
        if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or reference.shape != (size, size, 3):
            raise ValueError(f"the restorer takes {size}x{size} frames and reference, got {frames.shape} and {reference.shape}")
        device = next(self.net.parameters()).device
        ref = to_tensor(reference[None]).to(device)
        out = []
        for i in range(0, len(frames), batch):
            x = to_tensor(frames[i : i + batch]).to(device)
            out.append(video_from_model(self.net(x, ref.expand(len(x), -1, -1, -1))))
        return np.concatenate(out) if out else frames.copy()
