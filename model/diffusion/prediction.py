"""What the network predicts, and the one adapter that turns it into the eps every sampler expects.

``eps`` (the paper, Eq. 5)
    The network outputs the noise; the loss is ||eps - eps_theta||^2.

``v`` (Salimans & Ho, "Progressive distillation", 2022)
    The network outputs v = sqrt(ab) eps - sqrt(1 - ab) x0 and the loss is ||v - v_theta||^2. It is
    the same diffusion model (same forward process, same samplers); only the network's target moves.
    Why textcall's CPU-trained ``small`` default uses it: with eps, the clean-image estimate is
    x0 = (x_t - sqrt(1 - ab) eps_theta) / sqrt(ab), which multiplies the network's error by
    sqrt((1 - ab) / ab): 158x at t = 999 and 5.6x at t = 600 on the linear schedule. After 3,000 CPU
    steps the eps network was still worse at t >= 600 than the trivial guess eps = x_t / sqrt(1 - ab),
    so every sample from pure noise started from a wrong image and ended as a blob. With v,
    x0 = sqrt(ab) x_t - sqrt(1 - ab) v_theta: the error reaches x0 unamplified at every t.

Samplers and guidance (classifier, replacement, reconstruction) are written in eps; ``EpsNetwork``
converts a v network's output with ``eps_from_v`` so none of them change.
"""

from __future__ import annotations

from torch import Tensor, nn

from model.diffusion.av import AV
from model.diffusion.schedule import Schedule, eps_from_v, v_target


def training_target(prediction: str, schedule: Schedule, x0: AV, t: Tensor, noise: AV) -> AV:
    """What the network should output for ``x_t = q_sample(x0, t, noise)``."""
    if prediction == "eps":
        return noise
    if prediction == "v":
        return v_target(schedule, x0, t, noise)
    raise ValueError(f"unknown prediction {prediction!r}")


class EpsNetwork(nn.Module):
    """``(x_t, t, caption) -> eps`` from a network that predicts v (a no-op wrapper is never built)."""

    def __init__(self, net: nn.Module, schedule: Schedule) -> None:
        super().__init__()
        self.net = net
        self.schedule = schedule

    def forward(self, x: AV, t: Tensor, caption: Tensor, **conditions) -> AV:
        return eps_from_v(self.schedule, x, t, self.net(x, t, caption, **conditions))
