"""The noisy joint video-audio classifier p_phi(y | v_t, a_t, t) of classifier guidance (section IV-C).

The same U-Net blocks as the generator with its output (decoder) blocks removed, and a pooling
layer plus a fully connected layer as the head. It sees both modalities (the paper found a video-only
classifier let video and audio drift apart) and the timestep, not the caption. A description
classifier (``unet.attribute_slots``, free-form captions; not in the paper) has a logit per slot of the
description vector and a softmax per attribute (``model.describe.conditioning.value_log_prob``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.av import AV
from model.diffusion.config import ClassifierConfig
from model.diffusion.unet import ConditionEmbedding, Encoder, group_norm


class AVClassifier(nn.Module):
    """x: ``AV(video [B, F, C, H, W], audio [B, 1, S])``, t: long ``[B]`` -> logits ``[B, K]``."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        cfg = config.unet
        self.embed = ConditionEmbedding(cfg, with_caption=False)
        self.encoder = Encoder(cfg)
        ch = self.encoder.out_channels
        self.norm_video = group_norm(ch, cfg.norm_groups)
        self.norm_audio = group_norm(ch, cfg.norm_groups)
        self.head = nn.Linear(2 * ch, config.num_classes)
        self.describes = config.unet.describes  # one logit per description slot (a softmax per attribute)

    def forward(self, x: AV, t: Tensor) -> Tensor:
        h, _ = self.encoder(x, self.embed(t))
        video = F.silu(self.norm_video(h.video)).mean(dim=(2, 3, 4))  # [B, C]: pool over F, H, W
        audio = F.silu(self.norm_audio(h.audio)).mean(dim=2)  # [B, C]: pool over L
        return self.head(torch.cat([video, audio], dim=1))
