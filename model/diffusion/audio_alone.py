"""The audio-alone stage of a joint training step (``TrainConfig.audio_alone_steps``).

After every joint step, optimizer steps of the audio branch alone on whole clips' audio with no
video: on a CPU such a step costs a fraction of a joint one, so the audio branch sees many more clips
per hour, while the joint steps keep teaching it to read the video and the video to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from model.diffusion.audio_codec import audio_codec
from model.diffusion.config import DiffusionConfig
from model.diffusion.data import Segments
from model.diffusion.launch import Dist
from model.diffusion.losses import drop_captions
from model.diffusion.prediction import training_target
from model.diffusion.schedule import Schedule, q_sample

if TYPE_CHECKING:
    from model.diffusion.train import TrainConfig


def audio_alone_steps(model, optimizer, params, segments: Segments, config: DiffusionConfig, train: TrainConfig,
                      schedule: Schedule, rng: np.random.Generator, gen: torch.Generator, env: Dist) -> float:
    """``train.audio_alone_steps`` optimizer steps of the audio branch with no video; their mean loss.

    The loss is Eq. 5's audio term on whole clips through ``AVUNet.forward_audio``. Only ``params``
    (the audio branch, ``audio_only_parameters``) move: the shared time/caption embedding and every weight the
    video reads keep what the joint step left. With several processes the gradients are averaged
    by hand (the step bypasses the DDP wrapper).
    """
    codec = audio_codec(config)
    keep = {id(p) for p in params}
    losses = []
    for _ in range(train.audio_alone_steps):
        idx = rng.integers(0, len(segments), size=train.audio_alone_batch)
        x0 = codec.encode(torch.from_numpy(segments.audio[idx]).to(env.device).float())
        caption = torch.from_numpy(segments.caption[idx]).to(env.device).long()
        t = torch.randint(0, schedule.timesteps, (len(idx),), generator=gen, device=env.device)
        noise = torch.randn(x0.shape, generator=gen, device=env.device)
        caption = drop_captions(caption, train.caption_dropout, gen)
        out = model.forward_audio(q_sample(schedule, x0, t, noise), t, caption)
        loss = F.mse_loss(out.float(), training_target(config.prediction, schedule, x0, t, noise))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in model.parameters():
            if id(p) not in keep:
                p.grad = None
        if env.world > 1:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= env.world
        nn.utils.clip_grad_norm_(params, train.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))
