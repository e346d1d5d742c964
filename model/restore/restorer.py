"""A loaded restorer for inference (``TalkingHead``'s clean-up and the portrait cleaner): no training code."""

from __future__ import annotations

import contextlib
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

    def __init__(self, net: RestoreNet, paste: bool = True) -> None:
        self.net = net.eval()
        # an upscaler with aligned references pastes the aligned face where the frame shows it unchanged
        # (``model/restore/composite.py``); False: the network's output alone
        self.paste = paste

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Restorer:
        folder = Path(folder)
        if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} holds no restorer (model.safetensors + config.json)")
        net = RestoreNet(RestoreConfig.load(folder))
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()})
        return cls(net.to(device))

    @property
    def scale(self) -> int:
        return self.net.cfg.scale

    @property
    def output_size(self) -> int:
        return self.net.cfg.output_size

    @torch.no_grad()
    def restore(self, frames: np.ndarray, reference: np.ndarray | None, batch: int = 64) -> np.ndarray:
        """uint8 ``[F, S, S, 3]`` and uint8 ``[kS, kS, 3]`` -> uint8 ``[F, kS, kS, 3]`` (k = ``scale``: 1 the
        restorer, 4 the upscaler). ``reference`` None: no reference (the upscaler was trained for it; a
        restorer was not). A network trained with aligned references (``align``) gets the reference
        warped onto each frame's pose, and an upscaler then pastes it where the frame shows it unchanged
        (``paste``). The upscaler runs in float32 whatever the caller's autocast: bf16 convolutions
        of its shapes take a slow path on CPU (45x slower here)."""
        size, out_size = self.net.cfg.image_size, self.output_size
        if frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
            raise ValueError(f"this network takes {size}x{size} frames, got {frames.shape}")
        if reference is not None and reference.shape != (out_size, out_size, 3):
            raise ValueError(f"this network takes a {out_size}x{out_size} reference, got {reference.shape}")
        device = next(self.net.parameters()).device
        aligning = self.net.cfg.align and reference is not None  # then each batch gets its own, below
        ref = (torch.zeros(1, 3, out_size, out_size) if reference is None or aligning else to_tensor(reference[None])).to(device)
        out = []
        # the restorer keeps the caller's autocast as it is; the upscaler leaves it for float32
        with contextlib.nullcontext() if self.scale == 1 else torch.autocast(device.type, enabled=False):
            for i in range(0, len(frames), batch):
                part = frames[i : i + batch]
                aligned = None
                if aligning:  # the face in each frame's pose
                    from model.restore.align import align_to

                    aligned = align_to(part, reference)
                    ref = to_tensor(aligned).to(device)
                made = video_from_model(self.net(to_tensor(part).to(device), ref))
                if aligned is not None and self.paste and self.scale > 1:
                    from model.restore.composite import paste_face

                    made = paste_face(part, made, aligned)
                out.append(made)
        if out:
            return np.concatenate(out)
        return frames.copy() if self.scale == 1 else np.zeros((0, out_size, out_size, 3), np.uint8)

    upscale = restore  # the upscaler's verb (``scale`` > 1)
