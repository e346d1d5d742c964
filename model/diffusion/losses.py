"""Training losses of the joint model (Eq. 5) and of the noisy caption classifier (section V-B).

A loss is ``loss_fn(model, x0, caption, gen, **conditions) -> (loss, {name: float})``: it draws the
timesteps and noise from ``gen``, so a resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.describe.conditioning import description_loss, drop_descriptions
from model.diffusion.av import AV
from model.diffusion.config import NULL_CAPTION
from model.diffusion.prediction import training_target
from model.diffusion.schedule import Schedule, q_sample

LossFn = Callable[..., tuple[Tensor, dict[str, float]]]


def drop_captions(caption: Tensor, share: float, gen: torch.Generator, attribute_share: float = 0.0) -> Tensor:
    """``caption`` with a random ``share`` replaced by the null caption (classifier-free guidance).

    Description vectors ``[B, SLOTS]`` also leave each attribute "not said" with chance
    ``attribute_share``, so the network learns every partial description a caption can give."""
    if caption.is_floating_point():
        return drop_descriptions(caption, attribute_share, share, gen)
    drop = torch.rand(caption.shape[0], generator=gen, device=caption.device) < share
    return torch.where(drop, torch.full_like(caption, NULL_CAPTION), caption)


def diffusion_loss(schedule: Schedule, caption_dropout: float, prediction: str = "eps", branch: str = "both",
                   attribute_dropout: float = 0.0) -> LossFn:
    """Eq. 5 on both modalities: ||eps - eps_theta(x_t, t, y)||^2, mean per modality, summed.

    With ``prediction="v"`` the target is v instead of eps (model/diffusion/prediction.py). With
    ``branch="audio"`` the loss is the audio term alone (the video term is still reported), and the
    network runs with ``branches_apart`` so its backward pass reaches the audio branch only.
    """

    def loss_fn(model: nn.Module, x0: AV, caption: Tensor, gen: torch.Generator, **conditions) -> tuple[Tensor, dict[str, float]]:
        b, device = x0.batch_size, x0.device
        t = torch.randint(0, schedule.timesteps, (b,), generator=gen, device=device)
        noise = AV.randn_like(x0, gen)
        caption = drop_captions(caption, caption_dropout, gen, attribute_dropout)
        out = model(q_sample(schedule, x0, t, noise), t, caption, branches_apart=branch == "audio", **conditions)
        target = training_target(prediction, schedule, x0, t, noise)
        lv = F.mse_loss(out.video.float(), target.video)
        la = F.mse_loss(out.audio.float(), target.audio)
        return (la if branch == "audio" else lv + la), {"loss_video": lv.item(), "loss_audio": la.item()}

    return loss_fn


def classifier_loss(schedule: Schedule) -> LossFn:
    """Cross-entropy of p_phi(y | x_t, t) with t uniform over [0, T) (section V-B); for a description
    classifier, the mean over attributes of each attribute's cross-entropy."""

    def loss_fn(model: nn.Module, x0: AV, caption: Tensor, gen: torch.Generator, **conditions) -> tuple[Tensor, dict[str, float]]:
        b, device = x0.batch_size, x0.device
        t = torch.randint(0, schedule.timesteps, (b,), generator=gen, device=device)
        x_t = q_sample(schedule, x0, t, AV.randn_like(x0, gen))
        logits = model(x_t, t).float()
        if caption.is_floating_point():  # descriptions: one cross-entropy per attribute said
            loss, accuracy = description_loss(logits, caption)
            return loss, {"accuracy": accuracy.item()}
        label = caption - 1
        loss = F.cross_entropy(logits, label)
        return loss, {"accuracy": (logits.argmax(-1) == label).float().mean().item()}

    return loss_fn

