"""``AV``: a video tensor and an audio tensor that travel together.

Arithmetic maps over both modalities (``AV + AV``, ``AV * scalar``, ``AV * AV``), and ``over_av``
lifts a function written for one tensor to pairs, so the schedule and sampler math is written once.

Layouts (paper section V-A): video ``[B, F, C, H, W]``, audio ``[B, 1, S]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


@dataclass(frozen=True)
class AV:
    video: Tensor  # [B, F, C, H, W]
    audio: Tensor  # [B, 1, S]

    def map(self, fn: Callable[[Tensor], Tensor]) -> AV:
        return AV(fn(self.video), fn(self.audio))

    def zip(self, other: AV, fn: Callable[[Tensor, Tensor], Tensor]) -> AV:
        return AV(fn(self.video, other.video), fn(self.audio, other.audio))

    def _binary(self, other, op) -> AV:
        if isinstance(other, AV):
            return self.zip(other, op)
        return self.map(lambda x: op(x, other))

    def __add__(self, other) -> AV:
        return self._binary(other, torch.add)

    def __radd__(self, other) -> AV:
        return self + other

    def __sub__(self, other) -> AV:
        return self._binary(other, torch.sub)

    def __rsub__(self, other) -> AV:
        return (-self) + other

    def __mul__(self, other) -> AV:
        return self._binary(other, torch.mul)

    def __rmul__(self, other) -> AV:
        return self * other

    def __truediv__(self, other) -> AV:
        return self._binary(other, torch.div)

    def __neg__(self) -> AV:
        return self.map(torch.neg)

    @property
    def batch_size(self) -> int:
        return self.video.shape[0]

    @property
    def device(self) -> torch.device:
        return self.video.device

    def detach(self) -> AV:
        return self.map(Tensor.detach)

    def to(self, *args, **kwargs) -> AV:
        return self.map(lambda x: x.to(*args, **kwargs))

    def clone(self) -> AV:
        return self.map(Tensor.clone)

    def cat(self, other: AV, dim: int = 0) -> AV:
        return self.zip(other, lambda a, b: torch.cat([a, b], dim))

    def chunk(self, n: int) -> tuple[AV, ...]:
        return tuple(AV(v, a) for v, a in zip(self.video.chunk(n), self.audio.chunk(n), strict=True))

    @staticmethod
    def randn_like(x: AV, generator: torch.Generator | None = None) -> AV:
        return x.map(lambda t: torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype))


def over_av(fn: Callable) -> Callable:
    """Lift ``fn(x: Tensor, ...) -> Tensor | tuple[Tensor, ...]`` to ``AV`` arguments.

    If any positional argument is an ``AV``, ``fn`` runs once on the video fields and once on the
    audio fields (other arguments are passed unchanged) and the results are paired up again.
    """

    @functools.wraps(fn)
    def lifted(*args, **kwargs):
        if not any(isinstance(a, AV) for a in args):
            return fn(*args, **kwargs)
        video = fn(*(a.video if isinstance(a, AV) else a for a in args), **kwargs)
        audio = fn(*(a.audio if isinstance(a, AV) else a for a in args), **kwargs)
        if isinstance(video, tuple):
            return tuple(AV(v, a) for v, a in zip(video, audio, strict=True))
        return AV(video, audio)

    return lifted
