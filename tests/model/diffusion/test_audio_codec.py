"""What the audio branch diffuses: the paper's waveform, or a log-mel spectrogram (audio_codec.py)."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

from model.diffusion.audio_codec import LOG_HIGH, LOG_LOW, MelCodec, WaveCodec, audio_codec
from model.diffusion.av import AV
from model.diffusion.checkpoint import build_model
from model.diffusion.config import DiffusionConfig, check_classifier, classifier_preset, preset
from model.diffusion.data import toy_segments
from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av
from model.diffusion.train import TrainConfig, run_training, to_model_batch
from model.diffusion.unet import patch_audio, unpatch_audio
from model.evaluation.envelope import envelope_stats

RATE = 16_000


def _tiny_mel() -> DiffusionConfig:
    """The tiny test config with a mel audio branch: 4 frames, 4,000 samples -> 16 bins x 16 frames
    (no more bins than the 16 channels of its first level, as in ``small-mel``)."""
    tiny = preset("tiny")
    unet = dataclasses.replace(tiny.unet, audio_features="mel", audio_patch=1, mel_bins=16, mel_hop=250, mel_fft=512)
    return dataclasses.replace(tiny, unet=unet)


def _syllables(seconds: float = 1.0, rate_hz: float = 4.0, seed: int = 0) -> np.ndarray:
    """Noise bursts at a syllable rate with near-silent gaps: a crude speech-like envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    gate = (np.sin(2 * np.pi * rate_hz * t) > 0.2).astype(np.float64)
    gate = np.convolve(gate, np.hanning(161) / np.hanning(161).sum(), mode="same")  # 10 ms ramps
    carrier = np.random.default_rng(seed).standard_normal(t.size) * 0.1 + 0.2 * np.sin(2 * np.pi * 180 * t)
    return (carrier * gate).astype(np.float32)


def test_wave_codec_is_the_scaled_waveform() -> None:
    wave = torch.linspace(-0.5, 0.5, 100).reshape(1, -1)
    codec = WaveCodec(100, scale=4.0)
    x = codec.encode(wave)
    assert x.shape == (1, 1, 100) and torch.allclose(x[0, 0], 4 * wave[0])
    assert torch.allclose(codec.decode(x), wave)
    assert isinstance(audio_codec(preset("small")), WaveCodec)  # the shipped paper path stays the waveform
    assert isinstance(audio_codec(preset("paper")), WaveCodec)


def test_mel_codec_shapes_range_and_silence() -> None:
    codec = audio_codec(preset("small-mel"))
    assert isinstance(codec, MelCodec) and (codec.channels, codec.length) == (32, 64)
    wave = torch.from_numpy(np.stack([_syllables(), np.zeros(RATE, np.float32)]))
    x = codec.encode(wave)
    assert x.shape == (2, 32, 64)
    assert torch.all(x[1] == -1.0)  # silence sits on the floor
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert codec.decode(x).shape == (2, RATE)


def test_griffin_lim_keeps_the_loudness_envelope() -> None:
    """Encode -> decode keeps what the speech-like bar measures: the level range and the syllable rhythm."""
    codec = audio_codec(preset("small-mel"))
    wave = _syllables()
    back = codec.decode(codec.encode(torch.from_numpy(wave)[None]), generator=torch.Generator().manual_seed(0))[0].numpy()
    before, after = envelope_stats(wave), envelope_stats(back)
    assert before["range_db"] > 30 and before["syllabic"] > 0.7  # the test signal is speech-like ...
    assert after["range_db"] > 0.7 * before["range_db"], (before, after)  # ... and stays so
    assert after["syllabic"] > 0.7, (before, after)
    hop = RATE // 50
    env = [np.sqrt(np.mean(w[: len(w) // hop * hop].reshape(-1, hop) ** 2, axis=1)) for w in (wave, back)]
    assert np.corrcoef(*env)[0, 1] > 0.9


def test_audio_patching_is_lossless_for_several_channels() -> None:
    x = torch.randn(2, 3, 40)
    y = patch_audio(x, 4)
    assert y.shape == (2, 12, 10)
    assert torch.equal(y[:, :4, 0], x[:, 0, :4])  # channel 0's first four positions become the first patch
    assert torch.equal(unpatch_audio(y, 4), x)
    assert patch_audio(x, 1) is x


def test_mel_config_validates_and_round_trips() -> None:
    cfg = preset("small-mel")
    assert cfg.unet.audio_features == "mel" and cfg.unet.audio_length == 64 and cfg.unet.audio_channels == 32
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg
    assert preset("paper").unet.audio_features == "wave"  # the paper's branch is kept as published
    with pytest.raises(ValueError, match="audio_features"):
        dataclasses.replace(cfg.unet, audio_features="spectrum")
    with pytest.raises(ValueError, match="mel_hop"):
        dataclasses.replace(cfg.unet, mel_hop=300)


def test_mel_network_trains_and_samples(tmp_path) -> None:
    """A tiny mel model: batches are spectrograms, the loss falls, and sampling hands back a waveform
    (decoded from noise) or exactly the condition (speech text)."""
    torch.manual_seed(0)
    config = _tiny_mel()
    toy = toy_segments(4, 4, 16, 4000, seed=0)
    x0, _ = to_model_batch(toy, np.arange(2), config, "cpu")
    assert x0.audio.shape == (2, 16, 16) and x0.video.shape == (2, 4, 3, 16, 16)
    train = TrainConfig(steps=60, batch_size=4, lr=2e-3, save_every=1000, log_every=10, ema_decay=0.9)
    run_training(config, train, toy, tmp_path, device="cpu", progress=False)
    with open(tmp_path / "loss.csv") as fh:
        rows = list(csv.DictReader(fh))
    first, last = rows[0], rows[-1]
    assert float(last["loss"]) < 0.75 * float(first["loss"]), rows
    assert float(last["loss_audio"]) < 0.9 * float(first["loss_audio"]), rows  # the spectrogram is learned too

    model = build_model(config).eval()
    video, audio = generate_av(build_guidance(model, config, caption=1), steps=3, seed=0)
    assert video.shape == (4, 16, 16, 3) and audio.shape == (4000,) and np.all(np.abs(audio) <= 1)
    speech = _syllables(0.25)
    _, same = generate_av(build_guidance(model, config), audio_condition=speech, steps=3, seed=0)
    assert np.array_equal(same, speech)


def test_a_wave_classifier_cannot_guide_a_mel_model() -> None:
    mel = _tiny_mel()
    wave_classifier = classifier_preset("tiny")
    with pytest.raises(ValueError, match="audio_features wave vs mel|audio_features mel vs wave"):
        check_classifier(mel, wave_classifier)
    check_classifier(mel, dataclasses.replace(wave_classifier, unet=mel.unet))


def test_init_from_wave_weights_keeps_what_fits(tmp_path) -> None:
    """Fine-tuning a wave model into a mel one: the audio stem and head start fresh, the rest carries over."""
    from safetensors.torch import load_file

    toy = toy_segments(4, 4, 16, 4000, seed=0)
    one = TrainConfig(steps=1, batch_size=1, save_every=1, lr=1e-12, ema_decay=0.0)
    run_training(preset("tiny"), one, toy, tmp_path / "wave", device="cpu", progress=False)
    run_training(_tiny_mel(), dataclasses.replace(one, init=str(tmp_path / "wave")), toy, tmp_path / "mel", device="cpu", progress=False)
    wave, mel = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("wave", "mel"))
    assert wave["encoder.audio_in.weight"].shape != mel["encoder.audio_in.weight"].shape
    assert torch.allclose(wave["encoder.video_in.weight"], mel["encoder.video_in.weight"], atol=1e-6)


def test_audio_lr_scale_moves_the_audio_branch_faster(tmp_path) -> None:
    """With ``audio_lr_scale`` the audio branch takes larger steps than the video branch (Adam's first
    step moves every weight by about its learning rate)."""
    from safetensors.torch import load_file

    toy = toy_segments(4, 4, 16, 4000, seed=0)
    one = TrainConfig(steps=1, batch_size=2, save_every=1, lr=1e-4, ema_decay=0.0)
    run_training(preset("tiny"), one, toy, tmp_path / "start", device="cpu", progress=False)
    scaled = dataclasses.replace(one, init=str(tmp_path / "start"), audio_lr_scale=10.0)
    run_training(preset("tiny"), scaled, toy, tmp_path / "scaled", device="cpu", progress=False)
    before, after = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("start", "scaled"))

    def moved(part: str) -> float:
        keys = [k for k in before if part in k and "weight" in k and "audio" in k] if part == "audio" else [
            k for k in before if "video" in k and "audio" not in k and "weight" in k]
        return float(np.mean([(after[k] - before[k]).abs().mean() for k in keys]))

    assert moved("audio") > 5 * moved("video")
    assert "lr 0.0001 (audio branch x10)" in (tmp_path / "scaled" / "README.md").read_text()
    with pytest.raises(ValueError, match="audio_lr_scale"):
        TrainConfig(audio_lr_scale=0)


def test_audio_branch_only_backward_reaches_no_video_weight() -> None:
    """``audio_branch_only``: an audio loss gives a gradient to every trainable weight and to nothing
    else, the video output carries no graph, and the forward values are those of the joint model."""
    from model.diffusion.unet import audio_branch_only

    torch.manual_seed(0)
    config = _tiny_mel()
    model = build_model(config)
    for p in model.parameters():  # zero-initialised outputs would hide which weights the loss reaches
        torch.nn.init.normal_(p, std=0.05)
    x = AV(torch.randn(2, config.unet.frames, 3, config.unet.image_size, config.unet.image_size),
           torch.randn(2, config.unet.audio_channels, config.unet.audio_length))
    t, caption = torch.tensor([3, 700]), torch.tensor([1, 2])
    with torch.no_grad():
        joint = model(x, t, caption)

    trainable = audio_branch_only(model)
    out = model(x, t, caption, branches_apart=True)  # as diffusion_loss(branch="audio") calls it
    assert torch.allclose(out.video, joint.video) and torch.allclose(out.audio, joint.audio)
    assert not out.video.requires_grad
    out.audio.square().mean().backward()
    named = dict(model.named_parameters())
    frozen = [n for n, p in named.items() if not p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in named.values() if p.requires_grad}
    assert all(named[n].grad is None for n in frozen)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert any("video" in n and "kv_video" not in n for n in frozen) and any("embed" in n for n in frozen)
    assert all("kv_audio" in n or "norm_audio" in n for n in frozen if "audio" in n)

    audio_branch_only(model, False)
    assert all(p.requires_grad for p in model.parameters())
    assert model(x, t, caption).video.requires_grad


def test_the_audio_branch_loss_runs_the_branches_apart() -> None:
    """``diffusion_loss(branch="audio")`` calls the network with ``branches_apart``: with the audio
    branch alone trainable, its backward pass reaches exactly the audio branch's weights."""
    from model.diffusion.losses import diffusion_loss
    from model.diffusion.schedule import linear_schedule
    from model.diffusion.unet import audio_branch_only

    torch.manual_seed(0)
    config = _tiny_mel()
    model = build_model(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    seen = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs.get("branches_apart")), with_kwargs=True)
    trainable = audio_branch_only(model)
    x0 = AV(torch.randn(2, config.unet.frames, 3, config.unet.image_size, config.unet.image_size),
            torch.randn(2, config.unet.audio_channels, config.unet.audio_length))
    loss_fn = diffusion_loss(linear_schedule(config.schedule), 0.0, branch="audio")
    loss, _ = loss_fn(model, x0, torch.tensor([1, 2]), torch.Generator().manual_seed(0))
    loss.backward()
    assert seen == [True]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    seen.clear()
    diffusion_loss(linear_schedule(config.schedule), 0.0)(model, x0, torch.tensor([1, 2]), torch.Generator())
    assert seen == [False]


def test_train_branch_audio_leaves_the_video_weights_as_they_were(tmp_path) -> None:
    from safetensors.torch import load_file

    from model.diffusion.unet import audio_only_parameters

    toy = toy_segments(4, 4, 16, 4000, seed=0)
    one = TrainConfig(steps=1, batch_size=2, save_every=1, lr=1e-3, ema_decay=0.0)
    run_training(_tiny_mel(), one, toy, tmp_path / "start", device="cpu", progress=False)
    audio = dataclasses.replace(one, steps=2, init=str(tmp_path / "start"), train_branch="audio")
    run_training(_tiny_mel(), audio, toy, tmp_path / "audio", device="cpu", progress=False)
    before, after = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("start", "audio"))
    built = build_model(_tiny_mel())
    names = {id(p): n for n, p in built.named_parameters()}
    audio_branch = {names[id(p)] for p in audio_only_parameters(built)}
    trained = [k for k in before if k in audio_branch]
    assert trained and all(torch.equal(before[k], after[k]) for k in before if k not in trained)
    assert sum(not torch.equal(before[k], after[k]) for k in trained) > len(trained) // 2
    rows = list(csv.DictReader(open(tmp_path / "audio" / "loss.csv")))
    assert float(rows[-1]["loss_video"]) > 0 and float(rows[-1]["loss"]) == float(rows[-1]["loss_audio"])
    assert "audio branch only (video frozen)" in (tmp_path / "audio" / "README.md").read_text()

    with pytest.raises(ValueError, match="cannot resume .* --train-branch"):  # one optimizer group vs two
        run_training(_tiny_mel(), dataclasses.replace(audio, steps=3, train_branch="both", audio_lr_scale=2.0),
                     toy, tmp_path / "audio", device="cpu", progress=False)
    with pytest.raises(ValueError, match="train_branch"):
        TrainConfig(train_branch="video")
    with pytest.raises(ValueError, match="classifier trains as a whole"):
        run_training(classifier_preset("tiny"), dataclasses.replace(one, train_branch="audio"), toy,
                     tmp_path / "cls", device="cpu", progress=False)


def test_forward_audio_is_the_audio_branch_with_nothing_to_attend_to() -> None:
    """``AVUNet.forward_audio`` equals the joint network's audio output when the cross-attention adds
    nothing to the audio (its output projection zero), for a batch and clip length of its own."""
    torch.manual_seed(0)
    config = _tiny_mel()
    model = build_model(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    audio = torch.randn(3, config.unet.audio_channels, config.unet.audio_length)
    t, caption = torch.tensor([3, 500, 999]), torch.tensor([1, 2, 0])
    alone = model.forward_audio(audio, t, caption)
    assert alone.shape == audio.shape
    video = torch.randn(3, config.unet.frames, 3, config.unet.image_size, config.unet.image_size)
    assert not torch.allclose(model(AV(video, audio), t, caption).audio, alone, atol=1e-4)  # the video matters
    for module in model.modules():
        if hasattr(module, "out_audio"):
            torch.nn.init.zeros_(module.out_audio.weight)
            torch.nn.init.zeros_(module.out_audio.bias)
    assert torch.allclose(model(AV(video, audio), t, caption).audio, alone, atol=1e-5)
    longer = torch.randn(1, config.unet.audio_channels, 2 * config.unet.audio_length)
    assert model.forward_audio(longer, t[:1], caption[:1]).shape == longer.shape


def test_audio_alone_steps_move_only_the_audio_branch(tmp_path) -> None:
    from model.diffusion.schedule import linear_schedule
    from model.diffusion.audio_alone import audio_alone_steps
    from model.diffusion.launch import Dist
    from model.diffusion.unet import audio_only_parameters

    torch.manual_seed(0)
    config = _tiny_mel()
    model = build_model(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    toy = toy_segments(6, 4, 16, 4000, seed=0)
    train = TrainConfig(audio_alone_steps=3, audio_alone_batch=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    params = audio_only_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    audio_branch = {names[id(p)] for p in params}
    loss = audio_alone_steps(model, optimizer, params, toy, config, train, linear_schedule(config.schedule),
                             np.random.default_rng(0), torch.Generator().manual_seed(0), Dist())
    assert np.isfinite(loss) and loss > 0
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and moved <= audio_branch
    assert any(k.startswith("encoder.audio_in") for k in moved)

    one = TrainConfig(steps=2, batch_size=2, save_every=2, lr=1e-3, ema_decay=0.0, audio_alone_steps=2, audio_alone_batch=3)
    run_training(config, one, toy, tmp_path / "run", device="cpu", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "loss.csv")))
    assert float(rows[-1]["loss_audio_alone"]) > 0
    assert "2 audio-alone steps of 3 whole clips" in (tmp_path / "run" / "README.md").read_text()
    with pytest.raises(ValueError, match="audio_alone"):
        TrainConfig(audio_alone_steps=-1)


def test_mel_inverse_is_a_non_negative_least_squares_fit() -> None:
    """``magnitude`` returns a spectrum >= 0 whose mel projection matches the encoded mel (the clipped
    pseudo-inverse it replaced missed it by several percent), and silence stays silent."""
    codec = audio_codec(preset("small-mel"))
    x = codec.encode(torch.from_numpy(np.stack([_syllables(), np.zeros(RATE, np.float32)])))
    mel = ((x[0] + 1) / 2 * (LOG_HIGH - LOG_LOW) + LOG_LOW).exp()
    voiced = x[0] > -1

    def misfit(spectrum: torch.Tensor) -> float:
        projected = torch.einsum("fl,fm->ml", spectrum[0], codec.filters(spectrum.device))
        return float((projected[voiced] - mel[voiced]).norm() / mel[voiced].norm())

    spectrum = codec.magnitude(x)
    assert spectrum.shape == (2, codec.n_fft // 2 + 1, codec.length) and float(spectrum.min()) >= 0
    assert misfit(spectrum) < 0.02 < misfit(codec.magnitude(x, iters=0))
    assert float(spectrum[1].max()) == 0.0


def test_fast_griffin_lim_fits_the_magnitude_at_least_as_well_as_plain() -> None:
    codec = audio_codec(preset("small-mel"))
    x = codec.encode(torch.from_numpy(_syllables())[None])
    target = codec.magnitude(x)

    def misfit(wave: torch.Tensor) -> float:
        got = codec._stft(wave).abs()[..., : codec.length]
        return float((got - target).norm() / target.norm())

    plain = misfit(codec.decode(x, generator=torch.Generator().manual_seed(0), momentum=0.0, clamp=False))
    fast = misfit(codec.decode(x, generator=torch.Generator().manual_seed(0), clamp=False))
    assert fast <= plain + 0.01, (fast, plain)


def test_limit_contrast_pulls_a_wide_spectrogram_in_to_the_spread_and_keeps_its_shape() -> None:
    """Each sample is scaled about its own mean: a too-contrasted one ends at the spread (whatever the
    codec's ``audio_scale``), one already inside it is untouched, and the shape is kept exactly."""
    from model.diffusion.audio_codec import SPEECH_SPREAD

    for scale in (1.0, 2.0):
        codec = MelCodec(16000, 8, 250, 512, RATE, scale)
        g = torch.Generator().manual_seed(0)
        wide = (torch.randn(1, 8, 64, generator=g) * 0.6 - 0.2) * scale
        narrow = (torch.randn(1, 8, 64, generator=g) * 0.1 + 0.3) * scale
        out = codec.limit_contrast(torch.cat([wide, narrow]), 0.3)
        assert codec.spread(out)[0].item() == pytest.approx(0.3, rel=1e-4)
        assert torch.allclose(out[1], narrow)  # never scaled up
        assert out[0].mean().item() == pytest.approx(wide.mean().item(), abs=1e-5)
        assert np.corrcoef(out[0].flatten().numpy(), wide.flatten().numpy())[0, 1] > 0.9999
    assert codec.spread(codec.limit_contrast(wide)).max().item() == pytest.approx(SPEECH_SPREAD, rel=1e-4)
    with pytest.raises(ValueError, match="spread"):
        codec.limit_contrast(wide, 0.0)


def test_speech_sits_about_the_speech_spread_and_the_receivers_default_is_it() -> None:
    """``SPEECH_SPREAD`` is speech's spread in the normalised log-mel: a syllable-shaped test signal
    encodes to about it (as corpus speech does, README), and the receiver caps no-text audio there."""
    from model import defaults
    from model.diffusion.audio_codec import SPEECH_SPREAD

    assert defaults.AUDIO_CONTRAST == SPEECH_SPREAD
    codec = audio_codec(preset("small-mel"))
    spread = codec.spread(codec.encode(torch.from_numpy(_syllables())[None])).item()
    assert 0.5 * SPEECH_SPREAD < spread < 2 * SPEECH_SPREAD, spread


def test_generate_av_limits_the_contrast_of_audio_from_noise_only() -> None:
    """``audio_contrast`` changes a mel model's audio sampled from noise (and not its video), and never
    touches speech given as the condition."""
    torch.manual_seed(0)
    config = _tiny_mel()
    model = build_model(config).eval()
    def run(contrast: float):
        torch.manual_seed(1)  # Griffin-Lim's phases come from the global generator: the same every run
        stack = build_guidance(model, config, guidance=GuidanceConfig(audio_contrast=contrast), caption=1)
        return generate_av(stack, steps=3, seed=0)

    v0, a0 = run(0.0)
    assert np.array_equal(run(0.0)[1], a0)  # so only the contrast can tell the runs apart
    v1, a1 = run(0.05)
    assert np.array_equal(v0, v1) and not np.allclose(a0, a1)
    codec = audio_codec(config)
    assert codec.spread(codec.encode(torch.from_numpy(a1)[None])).item() < codec.spread(codec.encode(torch.from_numpy(a0)[None])).item()
    speech = _syllables(0.25)
    limited = build_guidance(model, config, guidance=GuidanceConfig(audio_contrast=0.05))
    _, same = generate_av(limited, audio_condition=speech, steps=3, seed=0)
    assert np.array_equal(same, speech)
