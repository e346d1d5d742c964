"""The schedule against closed forms."""

from __future__ import annotations

import torch

from model.diffusion.av import AV
from model.diffusion.schedule import (
    linear_schedule,
    posterior_mean,
    posterior_variance,
    predict_eps,
    predict_x0,
    q_sample,
    eps_from_v,
    v_target,
)


def test_linear_betas() -> None:
    s = linear_schedule()
    assert s.timesteps == 1000
    assert torch.isclose(s.betas[0], torch.tensor(1e-4, dtype=torch.float64))
    assert torch.isclose(s.betas[-1], torch.tensor(0.02, dtype=torch.float64))
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - s.betas, 0))
    assert s.alphas_cumprod[-1] < 1e-4  # x_T is (almost) pure noise


def test_q_sample_statistics() -> None:
    s = linear_schedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((1, 200_000), 0.7)
    for t in (0, 100, 500, 999):
        xt = q_sample(s, x0, t, torch.randn(x0.shape, generator=g))
        ab = float(s.alphas_cumprod[t])
        assert abs(xt.mean().item() - ab**0.5 * 0.7) < 0.01
        assert abs(xt.var().item() - (1 - ab)) < 0.01 * max(1 - ab, 0.01) + 1e-3


def test_q_sample_maps_over_av_with_per_sample_t() -> None:
    s = linear_schedule()
    x0 = AV(torch.ones(2, 3, 3, 4, 4), torch.ones(2, 1, 8))
    noise = x0.map(torch.zeros_like)
    t = torch.tensor([0, 999])
    xt = q_sample(s, x0, t, noise)
    ab = s.alphas_cumprod[t].float().sqrt()
    assert torch.allclose(xt.video[:, 0, 0, 0, 0], ab) and torch.allclose(xt.audio[:, 0, 0], ab)


def test_posterior_against_closed_form() -> None:
    s = linear_schedule()
    for t in (1, 10, 500, 999):
        beta, ab, ab_prev = s.betas[t], s.alphas_cumprod[t], s.alphas_cumprod[t - 1]
        alpha = 1 - beta
        x0, xt = torch.tensor([0.3], dtype=torch.float64), torch.tensor([-1.2], dtype=torch.float64)
        mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * xt
        assert torch.allclose(posterior_mean(s, x0, xt, t), mean)
        assert torch.isclose(posterior_variance(s, t), (1 - ab_prev) / (1 - ab) * beta)
    assert posterior_variance(s, 0) == 0


def test_posterior_by_bayes_rule() -> None:
    """q(x_{t-1} | x_t, x0) from q(x_t | x_{t-1}) q(x_{t-1} | x0) by completing the square."""
    s = linear_schedule()
    t = 300
    beta, ab_prev = s.betas[t], s.alphas_cumprod[t - 1]
    x0, xt = torch.tensor([0.5], dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64)
    prec = (1 - beta) / beta + 1 / (1 - ab_prev)
    mean = ((1 - beta).sqrt() * xt / beta + ab_prev.sqrt() * x0 / (1 - ab_prev)) / prec
    assert torch.allclose(posterior_mean(s, x0, xt, t), mean)
    assert torch.isclose(posterior_variance(s, t), 1 / prec)


def test_x0_and_eps_predictions_invert() -> None:
    s = linear_schedule()
    x0, eps = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    t = torch.tensor([0, 5, 400, 999])
    xt = q_sample(s, x0, t, eps)
    assert torch.allclose(predict_x0(s, xt, t, eps), x0, atol=1e-6)
    assert torch.allclose(predict_eps(s, xt, t, x0), eps, atol=1e-6)


def test_v_prediction_inverts_to_the_noise_and_the_clean_data() -> None:
    """v = sqrt(ab) eps - sqrt(1 - ab) x0: eps_from_v gives eps back, and x0 = sqrt(ab) x_t - sqrt(1 - ab) v."""
    s = linear_schedule()
    x0, eps = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    t = torch.tensor([0, 5, 400, 999])
    xt, v = q_sample(s, x0, t, eps), v_target(s, x0, t, eps)
    assert torch.allclose(eps_from_v(s, xt, t, v), eps, atol=1e-9)
    ab = s.alphas_cumprod[t].unsqueeze(1)
    assert torch.allclose(ab.sqrt() * xt - (1 - ab).sqrt() * v, x0, atol=1e-9)
    # unit variance target at every t for unit-variance data (the point of v: no t is degenerate)
    assert torch.allclose(v_target(s, torch.zeros(1, 1, dtype=torch.float64), 999, torch.ones(1, 1, dtype=torch.float64)),
                          s.alphas_cumprod[999].sqrt().reshape(1, 1))


def test_v_error_is_not_amplified_at_high_noise_like_eps_error() -> None:
    """An output error e moves x0 by sqrt((1 - ab) / ab) e through eps but by sqrt(1 - ab) e through v."""
    s = linear_schedule()
    x0, eps = torch.randn(2, 1000, dtype=torch.float64), torch.randn(2, 1000, dtype=torch.float64)
    t = 999
    xt = q_sample(s, x0, t, eps)
    err = 0.01 * torch.randn_like(x0)
    x0_from_eps = predict_x0(s, xt, t, eps + err)
    x0_from_v = predict_x0(s, xt, t, eps_from_v(s, xt, t, v_target(s, x0, t, eps) + err))
    ratio = (x0_from_eps - x0).norm() / (x0_from_v - x0).norm()
    ab = float(s.alphas_cumprod[t])
    assert abs(float(ratio) - ab**-0.5) < 1e-6 * ab**-0.5  # 158x at t = 999
