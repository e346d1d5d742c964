"""The call's reference face as features of the U-Net's video branch (not in the paper)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.layers import zero_module
from model.diffusion.unet_config import UNetConfig


class ReferenceEncoder(nn.Module):
    """The call's reference face -> one feature map per U-Net level, added to every frame (not in the paper).

    reference ``[B, 3, H, W]`` in [-1, 1] -> one ``[B, C, 1, H_l, W_l]`` per level l: the same
    pixel-unshuffle stem as the video, a 3x3 convolution, then per level a stride-2 convolution
    (from level 1 on) and a zero-initialised 1x1 projection to the width of the video features
    where that level starts. So a network
    with a new encoder computes exactly what it did before, and learns to copy the person from the
    reference (MuseTalk and LatentSync condition on a reference image the same way: as input
    features of the video, not through the caption). Costs one 2-D pass per clip, not per frame.
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.patch = cfg.video_patch
        ch = cfg.channels(0)
        self.stem = nn.Conv2d(cfg.video_channels * cfg.video_patch**2, ch, 3, padding=1)
        self.down = nn.ModuleList()
        self.project = nn.ModuleList()
        for level in range(cfg.levels):
            out = cfg.channels(level)
            self.down.append(nn.Identity() if level == 0 else nn.Conv2d(ch, out, 3, stride=2, padding=1))
            # added where the level starts: after the stem, or after the downsample, which keeps the
            # width of the level above
            self.project.append(zero_module(nn.Conv2d(out, cfg.channels(max(level - 1, 0)), 1)))
            ch = out

    def forward(self, reference: Tensor) -> list[Tensor]:
        h = self.stem(F.pixel_unshuffle(reference, self.patch) if self.patch > 1 else reference)
        features = []
        for level, (down, project) in enumerate(zip(self.down, self.project)):
            h = down(F.silu(h)) if level else h
            features.append(project(h)[:, :, None])  # [B, C_l, 1, H_l, W_l]: broadcast over frames
        return features
