"""Guidance: ``network -> denoiser`` and ``denoiser -> denoiser`` wrappers with the sampler's signature.

A denoiser is ``(x: AV, t: long [B]) -> eps: AV``. Every conditioning mode of the paper is one of
these wrappers, and they compose:

1. no input (section IV-B): ``conditioned(net, null caption)``;
2. caption through the conditional model (AdaGN, section IV-C): ``conditioned(net, caption)``, or
   ``with_cfg(net, caption, scale)`` for classifier-free guidance against the learned null caption;
3. caption through classifier guidance (Eq. 8): ``with_classifier(denoiser, classifier, ...)``;
4. speech (section IV-D): ``with_replacement`` (Eq. 10) around ``with_reconstruction`` (Eq. 11).

Not in the paper: ``with_audio_autoguidance`` (Karras et al. 2024) for audio sampled from noise.
A request composes them once, from a ``GuidanceConfig`` (``generate.build_guidance``).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.diffusion.av import AV
from model.describe.conditioning import value_log_prob
from model.diffusion.captions import null_condition_like
from model.diffusion.sampling import Denoiser
from model.diffusion.schedule import Schedule, extract, predict_eps, predict_x0, q_sample

Network = Callable[..., AV]  # (x, t, caption, reference=None) -> eps
Renoise = Callable[[Schedule, Tensor, Tensor, Tensor], Tensor]  # (schedule, clean, t, noise) -> noisy, e.g. q_sample


def conditioned(net: Network, caption: Tensor, reference: Tensor | None = None) -> Denoiser:
    """Bind a caption per sample (an index ``[B]``, 0 = the learned null caption: no caption; or, for a
    network that reads them, description vectors ``[B, SLOTS]``) and, for a network with a reference
    input, the call's reference face ``[B, 3, H, W]`` (None: the paper's)."""
    extra = {} if reference is None else {"reference": reference}

    def denoiser(x: AV, t: Tensor) -> AV:
        return net(x, t, caption, **extra)

    return denoiser


def with_cfg(net: Network, caption: Tensor, scale: float, reference: Tensor | None = None) -> Denoiser:
    """Classifier-free guidance: eps_null + scale * (eps_caption - eps_null); scale 1 = plain caption.

    Conditional and null passes run as one batch of 2B (both with the reference, when one is bound).
    The null of a description vector is the vector with every attribute "not said".
    """
    if scale == 1.0:
        return conditioned(net, caption, reference)
    null = null_condition_like(caption)
    extra = {} if reference is None else {"reference": torch.cat([reference, reference])}

    def guided(x: AV, t: Tensor) -> AV:
        eps = net(x.cat(x), torch.cat([t, t]), torch.cat([caption, null]), **extra)
        cond, uncond = eps.chunk(2)
        return uncond + scale * (cond - uncond)

    return guided


def with_audio_autoguidance(
    denoiser: Denoiser, guide: Denoiser, scale: float, schedule: Schedule | None = None, rescale: float = 0.0
) -> Denoiser:
    """Autoguidance of the audio (Karras et al. 2024, "Guiding a diffusion model with a bad version
    of itself"): ``eps_a = eps_guide_a + scale * (eps_a - eps_guide_a)``; the video keeps
    ``denoiser``'s eps. ``guide`` is a less-trained network of the same kind, bound to the same
    caption, so the extrapolation pushes the audio away from the errors the weaker network makes
    and the stronger one has partly unlearned (for the shipped model: a spectrogram that flickers
    from frame to frame). ``scale`` 1 is ``denoiser`` itself. Not in the paper; used only where the
    audio comes from noise (no speech text), since replacement (Eq. 10) overrides it otherwise.

    Like classifier-free guidance, the extrapolation also inflates contrast: the guided x0
    estimate's spread grows with ``scale`` (louder, clipped audio). ``rescale`` in [0, 1] (with
    ``schedule``) pulls the guided x0's per-sample standard deviation back towards the unguided
    one's, as Lin et al. (2024, "Common diffusion noise schedules and sample steps are flawed",
    Eq. 15-16) do for classifier-free guidance: x0 <- rescale * x0 * std(x0_plain) / std(x0) +
    (1 - rescale) * x0.
    """
    if scale == 1.0:
        return denoiser
    if rescale and schedule is None:
        raise ValueError("rescale needs the schedule")

    def guided(x: AV, t: Tensor) -> AV:
        eps, weak = denoiser(x, t), guide(x, t)
        audio = weak.audio + scale * (eps.audio - weak.audio)
        if rescale:
            plain, pushed = predict_x0(schedule, x.audio, t, eps.audio), predict_x0(schedule, x.audio, t, audio)
            dims = tuple(range(1, audio.ndim))
            ratio = plain.std(dim=dims, keepdim=True) / pushed.std(dim=dims, keepdim=True).clamp(min=1e-8)
            audio = predict_eps(schedule, x.audio, t, pushed * (rescale * ratio + (1.0 - rescale)))
        return AV(eps.video, audio)

    return guided


def with_classifier(
    denoiser: Denoiser, classifier: nn.Module, schedule: Schedule, label: Tensor, scale: float
) -> Denoiser:
    """Classifier guidance (Eq. 8) for any sampler, through the score (Dhariwal & Nichol, Alg. 2).

    p(x_{t-1} | x_t, y) ~ p(x_{t-1} | x_t) p_phi(y | x_{t-1}) shifts the mean by
    ``s * Sigma * grad log p_phi(y | x_t, t)``; in eps form, with eps = -sqrt(1 - ab_t) * score,
    ``eps' = eps - s * sqrt(1 - ab_t) * grad_x log p_phi(y | x_t, t)``, taken on video and audio jointly.
    ``label`` is the classifier's class per sample ``[B]`` (caption index - 1), or, for a description
    classifier, description vectors ``[B, SLOTS]``: log p_phi(y | x_t) is then the sum over the
    attributes they say of each one's log-probability (a product of per-attribute classifiers).
    """

    def guided(x: AV, t: Tensor) -> AV:
        eps = denoiser(x, t)
        with torch.enable_grad():
            xi = x.detach().map(lambda v: v.requires_grad_(True))
            logits = classifier(xi, t).float()  # [B, K]
            if label.is_floating_point():
                chosen = value_log_prob(logits, label).sum()
            else:
                log_probs = F.log_softmax(logits, dim=-1)
                chosen = log_probs[torch.arange(label.shape[0], device=label.device), label].sum()
            gv, ga = torch.autograd.grad(chosen, [xi.video, xi.audio])
        grad = AV(gv, ga)
        sigma = grad.map(lambda g: extract((1.0 - schedule.alphas_cumprod).sqrt(), t, g))
        return eps - scale * sigma * grad

    return guided


def with_replacement(
    denoiser: Denoiser,
    schedule: Schedule,
    *,
    audio: Tensor | None = None,
    video_prefix: Tensor | None = None,
    generator: torch.Generator | None = None,
    renoise: Renoise = q_sample,
) -> Denoiser:
    """Replacement conditioning (Eq. 10): known audio (and/or the first video frames) is re-noised.

    audio: the clean condition a0-hat ``[B, 1, S]``; video_prefix: clean first frames ``[B, K, C, H, W]``
    (continuation from the previous chunk). At every step the network sees
    ``a_t-hat ~ q(a_t | a0-hat) = N(sqrt(ab_t) a0-hat, (1 - ab_t) I)`` in place of its own a_t, the
    marginal that Video Diffusion Models [32] use. Eq. 10 as printed, ``N(sqrt(1 - beta_t) a0-hat,
    beta_t I)``, is the one-step kernel q(x_t | x_{t-1}) applied to a0-hat; it leaves almost no noise at
    large t, which the network never saw in training. ``renoise=q_step_literal`` uses it anyway
    (research only: ``textcall sample --paper-eq10``).

    The eps returned for the known parts makes the sampler's own x0 prediction equal to the condition,
    so the sampler's state follows q(x_{t-1} | x_t, x0 = condition) and ends on the condition (up to
    float rounding; ``generate_av`` returns the condition verbatim).
    """
    if audio is None and video_prefix is None:
        return denoiser

    def noisy(clean: Tensor, t: Tensor) -> Tensor:
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        return renoise(schedule, clean, t, noise)

    def replaced(x: AV, t: Tensor) -> AV:
        video, aud = x.video, x.audio
        if video_prefix is not None:
            k = video_prefix.shape[1]
            video = torch.cat([noisy(video_prefix, t), video[:, k:]], dim=1)
        if audio is not None:
            aud = noisy(audio, t)
        eps = denoiser(AV(video, aud), t)
        eps_video, eps_audio = eps.video, eps.audio
        if video_prefix is not None:
            k = video_prefix.shape[1]
            pinned = predict_eps(schedule, x.video[:, :k], t, video_prefix)
            eps_video = torch.cat([pinned, eps_video[:, k:]], dim=1)
        if audio is not None:
            eps_audio = predict_eps(schedule, x.audio, t, audio)
        return AV(eps_video, eps_audio)

    return replaced


def with_reconstruction(denoiser: Denoiser, schedule: Schedule, audio: Tensor, scale: float) -> Denoiser:
    """Reconstruction guidance (Eq. 11): pull the video towards what explains the given audio.

    g = grad_{v_t} || a0-hat - a0_theta(v_t, a_t) ||^2, through the network (the cross-attention is
    what couples the branches), and the video's data prediction becomes ``v0_theta - scale * g``;
    this is [32]'s form, whose weight w_r * alpha_t / 2 is the user's constant C here. The audio eps
    is left as the network's. Use inside ``with_replacement`` (so a_t is the re-noised condition).
    """
    if scale == 0.0:
        return denoiser

    def guided(x: AV, t: Tensor) -> AV:
        with torch.enable_grad():
            video = x.video.detach().requires_grad_(True)
            eps = denoiser(AV(video, x.audio), t)
            a0 = predict_x0(schedule, x.audio, t, eps.audio)
            error = (audio - a0).pow(2).sum()
            # a network whose audio does not depend on the video (no cross-attention) gets no push
            if error.requires_grad:
                (grad,) = torch.autograd.grad(error, [video], allow_unused=True)
            else:
                grad = None
            if grad is None:
                grad = torch.zeros_like(video)
        eps = eps.detach()
        v0 = predict_x0(schedule, x.video, t, eps.video) - scale * grad
        return AV(predict_eps(schedule, x.video, t, v0), eps.audio)

    return guided


def speech_conditioned(
    denoiser: Denoiser,
    schedule: Schedule,
    audio: Tensor,
    scale: float,
    *,
    video_prefix: Tensor | None = None,
    generator: torch.Generator | None = None,
    renoise: Renoise = q_sample,
) -> Denoiser:
    """Section IV-D in one call: replacement of the audio (Eq. 10) + reconstruction guidance (Eq. 11)."""
    inner = with_reconstruction(denoiser, schedule, audio, scale)
    return with_replacement(inner, schedule, audio=audio, video_prefix=video_prefix, generator=generator, renoise=renoise)
