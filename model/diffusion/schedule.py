"""The DDPM noise schedule (paper section III) as tensors, and pure functions over it.

Every function takes a tensor ``x`` of any shape ``[B, ...]`` (or an ``AV`` pair, through
``over_av``) and integer timesteps ``t`` (an int or a long tensor ``[B]``), so the same lines serve
video ``[B, F, C, H, W]`` and audio ``[B, 1, S]``. Timesteps are 0-based: ``t = 0`` is the first noising
step and ``t = T - 1`` the last; ``t = -1`` stands for clean data (alphabar = 1) in the samplers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from model.diffusion.av import over_av
from model.diffusion.config import ScheduleConfig


@dataclass(frozen=True)
class Schedule:
    """Per-step coefficients, float64 ``[T]`` tensors on the CPU (cast on use)."""

    betas: Tensor
    alphas_cumprod: Tensor  # alphabar_t
    alphas_cumprod_prev: Tensor  # alphabar_{t-1}, with alphabar_{-1} = 1
    posterior_variance: Tensor  # beta tilde_t
    posterior_log_variance_clipped: Tensor
    posterior_mean_coef1: Tensor  # on x0
    posterior_mean_coef2: Tensor  # on x_t

    @property
    def timesteps(self) -> int:
        return self.betas.shape[0]

    def alphabar(self, t: int | Tensor) -> Tensor:
        """alphabar at t, with alphabar(-1) = 1 (clean data). Float64, shape of ``t``."""
        t = torch.as_tensor(t, dtype=torch.long)
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        return padded[t + 1]


def linear_schedule(config: ScheduleConfig | None = None) -> Schedule:
    """DDPM's linear betas (Ho et al.), T = 1000 from 1e-4 to 0.02 by default."""
    config = config or ScheduleConfig()
    betas = torch.linspace(config.beta_start, config.beta_end, config.timesteps, dtype=torch.float64)
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    # the variance is 0 at t = 0: clip the log like improved-diffusion
    log_var = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
    return Schedule(
        betas=betas,
        alphas_cumprod=alphas_cumprod,
        alphas_cumprod_prev=alphas_cumprod_prev,
        posterior_variance=posterior_variance,
        posterior_log_variance_clipped=log_var,
        posterior_mean_coef1=betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * torch.sqrt(alphas) / (1.0 - alphas_cumprod),
    )


def extract(coef: Tensor, t: int | Tensor, x: Tensor) -> Tensor:
    """``coef[t]`` shaped ``[B, 1, 1, ...]`` to broadcast against ``x`` ``[B, ...]``."""
    t = torch.as_tensor(t, dtype=torch.long, device=coef.device)
    value = coef[t].to(device=x.device, dtype=x.dtype)
    if value.ndim == 0:
        return value
    return value.reshape(-1, *([1] * (x.ndim - 1)))


@over_av
def q_sample(schedule: Schedule, x0: Tensor, t: int | Tensor, noise: Tensor) -> Tensor:
    """Eq. 3: x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) eps."""
    ab = extract(schedule.alphas_cumprod, t, x0)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


@over_av
def q_step_literal(schedule: Schedule, x0: Tensor, t: int | Tensor, noise: Tensor) -> Tensor:
    """Eq. 10 exactly as printed in the paper: N(sqrt(1 - beta_t) x0, beta_t I).

    Kept for comparison only: it is the one-step kernel q(x_t | x_{t-1}) applied to x0, not the
    marginal q(x_t | x_0) that replacement needs (see ``q_sample`` and guidance.with_replacement).
    """
    beta = extract(schedule.betas, t, x0)
    return (1.0 - beta).sqrt() * x0 + beta.sqrt() * noise


@over_av
def predict_x0(schedule: Schedule, x_t: Tensor, t: int | Tensor, eps: Tensor) -> Tensor:
    """x0 = (x_t - sqrt(1 - alphabar_t) eps) / sqrt(alphabar_t)."""
    ab = extract(schedule.alphas_cumprod, t, x_t)
    return (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()


@over_av
def predict_eps(schedule: Schedule, x_t: Tensor, t: int | Tensor, x0: Tensor) -> Tensor:
    """The eps that makes ``predict_x0`` return ``x0``."""
    ab = extract(schedule.alphas_cumprod, t, x_t)
    return (x_t - ab.sqrt() * x0) / (1.0 - ab).sqrt()


@over_av
def posterior_mean(schedule: Schedule, x0: Tensor, x_t: Tensor, t: int | Tensor) -> Tensor:
    """Mean of q(x_{t-1} | x_t, x0)."""
    c1 = extract(schedule.posterior_mean_coef1, t, x_t)
    c2 = extract(schedule.posterior_mean_coef2, t, x_t)
    return c1 * x0 + c2 * x_t


def posterior_variance(schedule: Schedule, t: int | Tensor) -> Tensor:
    """beta tilde_t = beta_t (1 - alphabar_{t-1}) / (1 - alphabar_t), float64 like ``t``."""
    return schedule.posterior_variance[torch.as_tensor(t, dtype=torch.long)]



@over_av
def v_target(schedule: Schedule, x0: Tensor, t: int | Tensor, noise: Tensor) -> Tensor:
    """v = sqrt(alphabar_t) eps - sqrt(1 - alphabar_t) x0 (Salimans & Ho, 2022)."""
    ab = extract(schedule.alphas_cumprod, t, x0)
    return ab.sqrt() * noise - (1.0 - ab).sqrt() * x0


@over_av
def eps_from_v(schedule: Schedule, x_t: Tensor, t: int | Tensor, v: Tensor) -> Tensor:
    """The eps that a v prediction implies: eps = sqrt(1 - alphabar_t) x_t + sqrt(alphabar_t) v."""
    ab = extract(schedule.alphas_cumprod, t, x_t)
    return (1.0 - ab).sqrt() * x_t + ab.sqrt() * v
