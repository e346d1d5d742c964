"""Samplers, guidance wrappers and generate_av on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.diffusion.av import AV
from model.diffusion.classifier import AVClassifier
from model.diffusion.config import ScheduleConfig, classifier_preset, preset
from model.diffusion.data import toy_segments
from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av, limit
from model.diffusion.guidance import (
    conditioned,
    speech_conditioned,
    with_audio_autoguidance,
    with_cfg,
    with_classifier,
    with_reconstruction,
)
from model.diffusion.sampling import ddim, ddim_from, ddpm, dpmpp_2m, logsnr_timesteps, sample, spaced_timesteps
from model.diffusion.schedule import linear_schedule, predict_x0, q_sample
from model.diffusion.train import classifier_loss, to_model_batch
from model.diffusion.unet import AVUNet


SHORT = linear_schedule(ScheduleConfig(timesteps=50, beta_start=2e-3, beta_end=0.2))


def _awake(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give zero-initialised layers small random values so an untrained net has a non-zero output."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return net.eval()


@pytest.fixture(scope="module")
def net() -> AVUNet:
    return _awake(AVUNet(preset("tiny").unet))


def _noise(cfg, seed: int, b: int = 1) -> AV:
    g = torch.Generator().manual_seed(seed)
    return AV(
        torch.randn(b, cfg.frames, 3, cfg.image_size, cfg.image_size, generator=g),
        torch.randn(b, 1, cfg.audio_samples, generator=g),
    )


def _gaussian_denoiser(schedule, mu: float, s: float):
    """The exact eps-prediction for data ~ N(mu, s^2) per element."""

    def denoiser(x: AV, t: torch.Tensor) -> AV:
        ab = schedule.alphas_cumprod[t].float().reshape(-1, 1, 1)

        def eps(v):
            shape = v.shape
            v = v.reshape(shape[0], 1, -1)
            a, sig2 = ab.sqrt(), 1 - ab
            return (sig2.sqrt() * (v - a * mu) / (a * a * s * s + sig2)).reshape(shape)

        return x.map(eps)

    return denoiser


@pytest.mark.parametrize(
    "sampler,kwargs,tol",
    [
        (ddpm, {}, 0.01),
        (ddim, {"steps": 200}, 0.01),
        (ddim, {"steps": 50, "spacing": "logsnr"}, 0.015),
        (dpmpp_2m, {"steps": 20}, 0.01),
        (dpmpp_2m, {"steps": 10}, 0.01),
    ],
)
def test_samplers_recover_a_gaussian(sampler, kwargs, tol) -> None:
    """With the exact eps of data ~ N(mu, s^2), every sampler must return N(mu, s^2)."""
    schedule = linear_schedule()
    mu, s = 0.3, 0.2
    g = torch.Generator().manual_seed(1)
    noise = AV(torch.randn(2, 20_000, generator=g), torch.randn(2, 1, 5000, generator=g))
    out = sampler(_gaussian_denoiser(schedule, mu, s), schedule, noise, generator=g, **kwargs)
    for x in (out.video, out.audio):
        assert abs(x.mean().item() - mu) < 0.01
        assert abs(x.std().item() - s) < tol


def test_ddim_from_a_noised_sample_returns_it_under_the_exact_denoiser() -> None:
    """SDEdit's second half: x0 noised to t0, then denoised by DDIM with the eps that noised it, is x0."""
    schedule = linear_schedule()
    g = torch.Generator().manual_seed(3)
    x0 = AV(torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.rand(2, 1, 40, generator=g) * 2 - 1)
    noise = x0.map(lambda v: torch.randn(v.shape, generator=g))

    def exact(x: AV, t: torch.Tensor) -> AV:  # the eps that took x0 to x at t
        def eps(xt: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
            ab = schedule.alphas_cumprod[t].float().reshape(-1, *[1] * (xt.ndim - 1))
            return (xt - ab.sqrt() * clean) / (1 - ab).sqrt()

        return AV(eps(x.video, x0.video), eps(x.audio, x0.audio))

    t0 = 400
    x_t0 = AV(q_sample(schedule, x0.video, t0, noise.video), q_sample(schedule, x0.audio, t0, noise.audio))
    out = ddim_from(exact, schedule, x_t0, t0, steps=6)
    assert torch.allclose(out.video, x0.video, atol=1e-4) and torch.allclose(out.audio, x0.audio, atol=1e-4)


def test_spaced_timesteps() -> None:
    assert spaced_timesteps(1000, 1) == [999]
    grid = spaced_timesteps(1000, 20)
    assert grid[0] == 999 and grid[-1] == 0 and len(set(grid)) == 20
    with pytest.raises(ValueError):
        spaced_timesteps(1000, 0)
    for n in (1, 2, 10, 20, 50, 1000):
        grid = logsnr_timesteps(linear_schedule(), n)
        assert len(grid) == len(set(grid)) == n and grid == sorted(grid, reverse=True)
        assert grid[0] == 999 and (n == 1 or grid[-1] == 0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++"])
def test_samplers_are_deterministic_under_a_seed(net, sampler) -> None:
    den = conditioned(net, torch.tensor([1]))
    steps = None if sampler == "ddpm" else 8
    run = lambda seed: sample(sampler, den, SHORT, _noise(net.cfg, seed), steps, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    assert not torch.equal(a.video, c.video)


def test_ddim_eta_one_uses_the_generator(net) -> None:
    den = conditioned(net, torch.tensor([0]))
    run = lambda seed: ddim(den, SHORT, _noise(net.cfg, 0), 6, eta=1.0, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(run(1).video, run(1).video) and not torch.equal(run(1).video, run(2).video)


@pytest.mark.parametrize("sampler", [ddpm, ddim, dpmpp_2m])
def test_replacement_ends_on_the_given_audio(net, sampler) -> None:
    cfg = net.cfg
    audio = 0.5 * torch.sin(torch.linspace(0, 60, cfg.audio_samples)).reshape(1, 1, -1)
    g = torch.Generator().manual_seed(0)
    den = speech_conditioned(conditioned(net, torch.tensor([1])), SHORT, audio, 0.5, generator=g)
    kwargs = {} if sampler is ddpm else {"steps": 6}
    out = sampler(den, SHORT, _noise(cfg, 0), generator=g, **kwargs)
    assert (out.audio - audio).abs().max() < 1e-5


def test_generate_av_returns_the_condition_exactly(net) -> None:
    config = preset("tiny")
    audio = (0.3 * np.sin(np.arange(config.unet.audio_samples) / 7.0)).astype(np.float32)
    stack = build_guidance(net, config, guidance=GuidanceConfig(recon_scale=0.1), caption=2)
    video, out = generate_av(stack, audio_condition=audio, steps=5, seed=1)
    assert np.array_equal(out, audio)
    assert video.dtype == np.uint8 and video.shape == (4, 16, 16, 3)


def test_reconstruction_gradient_changes_video_not_audio(net) -> None:
    cfg = net.cfg
    x = _noise(cfg, 5)
    t = torch.tensor([30])
    target = torch.zeros(1, 1, cfg.audio_samples)
    base = conditioned(net, torch.tensor([1]))
    with torch.no_grad():
        plain = with_reconstruction(base, SHORT, target, 0.0)(x, t)
        guided = with_reconstruction(base, SHORT, target, 1.0)(x, t)
    assert not torch.allclose(plain.video, guided.video)
    assert torch.equal(plain.audio, guided.audio)


def test_video_prefix_replacement(net) -> None:
    config = preset("tiny")
    prefix = np.full((2, 16, 16, 3), 200, dtype=np.uint8)
    video, _ = generate_av(build_guidance(net, config), video_prefix=prefix, steps=4, seed=0)
    assert np.array_equal(video[:2], prefix)


def test_classifier_free_guidance_scale_one_is_the_conditional_model(net) -> None:
    x, t, cap = _noise(net.cfg, 1), torch.tensor([20]), torch.tensor([2])
    with torch.no_grad():
        a = with_cfg(net, cap, 1.0)(x, t)
        b = conditioned(net, cap)(x, t)
        c = with_cfg(net, cap, 3.0)(x, t)
    assert torch.equal(a.video, b.video)
    assert not torch.allclose(c.video, b.video)


def test_audio_autoguidance_extrapolates_the_audio_away_from_the_weaker_network() -> None:
    x, t = AV(torch.zeros(1, 2, 3, 4, 4), torch.randn(1, 2, 8)), torch.tensor([40])
    strong = AV(torch.full((1, 2, 3, 4, 4), 0.5), torch.full((1, 2, 8), 0.3))
    weak = AV(torch.full((1, 2, 3, 4, 4), -9.0), torch.full((1, 2, 8), 0.1))
    good, bad = (lambda x_, t_: strong), (lambda x_, t_: weak)
    assert with_audio_autoguidance(good, bad, 1.0) is good
    out = with_audio_autoguidance(good, bad, 3.0)(x, t)
    assert torch.equal(out.video, strong.video)  # the video keeps the stronger network's eps
    assert torch.allclose(out.audio, torch.full((1, 2, 8), 0.1 + 3.0 * (0.3 - 0.1)))
    # rescale 1: the guided x0 keeps the extrapolated direction but the unguided x0's spread
    spread = AV(strong.video, torch.linspace(-1, 1, 16).reshape(1, 2, 8))
    rescaled = with_audio_autoguidance(lambda x_, t_: spread, bad, 3.0, SHORT, rescale=1.0)(x, t)
    plain_x0, guided_x0 = predict_x0(SHORT, x.audio, t, spread.audio), predict_x0(SHORT, x.audio, t, rescaled.audio)
    assert torch.allclose(guided_x0.std(), plain_x0.std(), rtol=1e-4)
    with pytest.raises(ValueError, match="schedule"):
        with_audio_autoguidance(good, bad, 2.0, rescale=0.5)


def test_generate_av_autoguides_only_audio_it_samples_from_noise(net) -> None:
    config = preset("tiny")
    guide = _awake(AVUNet(config.unet))
    plain_stack = build_guidance(net, config)
    guided_stack = build_guidance(net, config, guidance=GuidanceConfig(audio_guide_scale=3.0), audio_guide=guide)
    _, plain = generate_av(plain_stack, steps=3, seed=0)
    _, same = generate_av(build_guidance(net, config, audio_guide=guide), steps=3, seed=0)  # scale 1: off
    _, guided = generate_av(guided_stack, steps=3, seed=0)
    assert np.array_equal(plain, same) and not np.allclose(plain, guided)
    assert np.abs(guided).max() <= 0.95 + 1e-6  # scaled, not clipped
    speech = (0.2 * np.sin(np.arange(config.unet.audio_samples) / 5.0)).astype(np.float32)
    a = generate_av(plain_stack, audio_condition=speech, steps=3, seed=0)
    b = generate_av(guided_stack, audio_condition=speech, steps=3, seed=0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])  # speech replaces the audio: no guide


def test_limit_scales_loud_audio_down_and_leaves_the_rest() -> None:
    quiet = np.array([0.1, -0.5, 0.9], np.float32)
    assert limit(quiet) is quiet
    loud = np.array([0.4, -3.0, 1.5], np.float32)
    out = limit(loud)
    assert out.dtype == np.float32 and np.isclose(np.abs(out).max(), 0.95)
    assert np.allclose(out / out[1], loud / loud[1])  # one gain: the envelope's shape is kept


@pytest.mark.parametrize("mode", ["none", "caption", "cfg", "speech", "caption+speech"])
def test_generate_av_modes(net, mode) -> None:
    config = preset("tiny")
    caption = 1 if "caption" in mode or mode == "cfg" else 0
    stack = build_guidance(net, config, guidance=GuidanceConfig(cfg_scale=2.0 if mode == "cfg" else 1.0), caption=caption)
    speech = np.zeros(1000, dtype=np.float32) if "speech" in mode else None
    video, audio = generate_av(stack, audio_condition=speech, steps=3, seed=0)
    assert video.shape == (4, 16, 16, 3) and audio.shape == (4000,) and audio.dtype == np.float32


def test_classifier_guidance_moves_the_sample_towards_the_class() -> None:
    """Toy task: class 0 ("man") is bright video + low tone, class 1 ("woman") dark + high tone."""
    torch.manual_seed(0)
    config = classifier_preset("tiny")
    clf = AVClassifier(config)
    data = toy_segments(64, 4, 16, 4000, seed=0)
    schedule = linear_schedule()
    loss_fn = classifier_loss(schedule)
    opt = torch.optim.AdamW(clf.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(40):
        idx = np.random.default_rng(step).integers(0, 64, 16)
        x0, caption = to_model_batch(data, idx, config, "cpu")
        loss, _ = loss_fn(clf, x0, caption, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    clf.eval()

    # the base denoiser knows nothing of the classes: data ~ N(0, 0.3^2)
    base = _gaussian_denoiser(schedule, 0.0, 0.3)
    cfg = config.unet
    t0 = torch.tensor([0])
    with torch.no_grad():
        unguided = clf(ddim(base, schedule, _noise(cfg, 7), 20), t0).softmax(-1)[0]
    means = {}
    for label in (0, 1):
        guided = with_classifier(base, clf, schedule, torch.tensor([label]), scale=30.0)
        out = ddim(guided, schedule, _noise(cfg, 7), 20)
        means[label] = out.video.mean().item()
        with torch.no_grad():
            probs = clf(out, t0).softmax(-1)[0]
        assert probs[label] > max(0.5, unguided[label]), (label, probs, unguided)
    assert means[0] > means[1]  # brighter for "man" than for "woman"
