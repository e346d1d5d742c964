"""What the audio branch diffuses: the waveform (the paper) or a log-mel spectrogram (an option).

The paper, after MM-Diffusion, diffuses the 16 kHz waveform itself: ``[B, 1, S]``, here scaled by
``audio_scale``. That stays the default (``UNetConfig.audio_features = "wave"``).

``"mel"`` is not in the paper. Why it exists: on this project's CPU budget the waveform branch never
learned the slow structure of speech. Audio generated without speech text kept a loudness envelope
between noise and speech (README, Roadmap), because a syllable spans 2,000-8,000 samples and the
waveform model's reach stayed near +-35 ms; a loudness envelope is a feature of the waveform's
short-time power, and in the waveform the noise of x_t drowns it at the same level as the carrier.
A log-mel spectrogram puts that envelope in plain sight: ``[B, mel_bins, S / mel_hop]`` (``small-mel``:
32 bins at 64 frames per second, four spectrogram frames per video frame), a picture whose rows
rise and fall with the syllables, and a short sequence (64 positions instead of 16,000 samples).
The spectrogram loses the phase; ``decode`` recovers a waveform by fast Griffin-Lim from the
non-negative least-squares inverse of the filterbank, which keeps the envelope but not the timbre.
Measured on 60 one-second windows of held-out corpus speech against ``textcall eval``'s speech-like
bar (15.7 dB, 0.769 at 2-8 Hz): 46 pass as recorded; after the 32-bin round trip (3 Griffin-Lim
phases each) 73 % pass, median level range 18.6 dB and 2-8 Hz share 0.85. Until 2026-11-30 the
inverse was the pseudo-inverse clipped at zero, with plain Griffin-Lim: 69 % passed, and the spectral
convergence against the recorded STFT magnitude was 0.63 instead of 0.59. A ``mel`` model's
audio still sounds phasey. Where speech text is given the clip's audio is the TTS waveform itself
(Eq. 10 at t = 0), so only the no-text mode ever hears the decoded audio.

Both codecs map a float32 waveform ``[B, S]`` in [-1, 1] to the network's audio tensor and back;
replacement (Eq. 10) and reconstruction guidance (Eq. 11) then act on that tensor unchanged.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

# log-mel normalisation: ln(max(mel, FLOOR)) is mapped linearly from [LOG_LOW, LOG_HIGH] to [-1, 1].
# Corpus speech spans about ln = -8.9 (pauses) to 1.2 (the loudest bins), mean -4.3, std 1.8, so the
# network sees values in about [-1, 1] with std 0.33 (the video's is 0.44).
FLOOR = 1e-4
LOG_LOW, LOG_HIGH = math.log(FLOOR), 2.0
# The spread of speech in that normalisation: the median, over one-second windows of held-out corpus
# speech (60 test-split segments of the synthetic corpus, 32 bins), of a window's standard deviation
# about its own mean (10th-90th percentile 0.25-0.34). ``MelCodec.limit_contrast`` holds audio sampled
# from noise to it; ``tests/benchmarks/bench_no_text_audio.py`` re-measures it on any corpus cache.
SPEECH_SPREAD = 0.315
GRIFFIN_LIM_ITERS = 32
GRIFFIN_LIM_MOMENTUM = 0.99
NNLS_ITERS = 100


class WaveCodec:
    """The paper's audio: the waveform, times ``scale``. ``[B, S]`` <-> ``[B, 1, S]``."""

    def __init__(self, samples: int, scale: float = 1.0) -> None:
        self.samples, self.scale = samples, scale

    def encode(self, wave: Tensor) -> Tensor:
        return (wave * self.scale).unsqueeze(1)

    def decode(self, x: Tensor, *, clamp: bool = True) -> Tensor:
        wave = x[:, 0] / self.scale
        return wave.clamp(-1, 1) if clamp else wave


class MelCodec:
    """Normalised log-mel spectrogram: ``[B, S]`` <-> ``[B, bins, S / hop]`` (see the module doc).

    Frame k is the Hann-windowed spectrum centred on sample ``k * hop`` (the last centred frame, at
    sample S, belongs to the next chunk and is dropped). Mel filters: Slaney scale, 0-8 kHz.
    """

    def __init__(self, samples: int, bins: int, hop: int, n_fft: int, sample_rate: int, scale: float = 1.0) -> None:
        if samples % hop:
            raise ValueError(f"{samples} samples do not split into spectrogram frames of {hop}")
        self.samples, self.channels, self.hop, self.n_fft, self.scale = samples, bins, hop, n_fft, scale
        self.rate = sample_rate
        self._filters: Tensor | None = None

    @property
    def length(self) -> int:
        return self.samples // self.hop

    def filters(self, device: torch.device) -> Tensor:
        """Mel filterbank ``[n_fft / 2 + 1, bins]``."""
        if self._filters is None:
            import torchaudio.functional as AF  # noqa: PLC0415 (receiver-only dependency)

            self._filters = AF.melscale_fbanks(self.n_fft // 2 + 1, 0.0, self.rate / 2, self.channels, self.rate,
                                               norm="slaney", mel_scale="slaney")
        return self._filters.to(device)

    def _stft(self, wave: Tensor) -> Tensor:
        window = torch.hann_window(self.n_fft, device=wave.device)
        return torch.stft(wave, self.n_fft, self.hop, window=window, center=True, return_complex=True)

    def encode(self, wave: Tensor) -> Tensor:
        magnitude = self._stft(wave.float()).abs()[..., : self.length]  # [B, F, L]
        mel = torch.einsum("bfl,fm->bml", magnitude, self.filters(wave.device))
        log = torch.log(mel.clamp(min=FLOOR))
        return ((log - LOG_LOW) / (LOG_HIGH - LOG_LOW) * 2 - 1) * self.scale

    def magnitude(self, x: Tensor, iters: int = NNLS_ITERS) -> Tensor:
        """The non-negative linear-frequency magnitude ``[B, F, L]`` whose mel projection is closest to
        ``x``'s: non-negative least squares by multiplicative updates (Lee and Seung 2001),
        ``S <- S * (W mel) / (W W^T S)`` with ``W`` the filterbank. The pseudo-inverse clipped at zero,
        used until 2026-11-30, is no least-squares solution once clipped (7.8 % mel residual on held-out
        corpus speech, against 0.7 % after 100 updates) and leaves holes between the filters."""
        log = ((x.float() / self.scale).clamp(-1, 1) + 1) / 2 * (LOG_HIGH - LOG_LOW) + LOG_LOW
        mel = torch.exp(log)
        mel = torch.where(log <= LOG_LOW + 1e-3, torch.zeros_like(mel), mel)  # the floor means silence
        filters = self.filters(x.device)  # [F, M]
        target = torch.einsum("fm,bml->bfl", filters, mel)
        spread = filters / filters.sum(dim=0, keepdim=True).clamp(min=1e-8)
        spectrum = torch.einsum("bml,fm->bfl", mel, spread) + 1e-8  # start above zero: updates keep zeros
        for _ in range(iters):
            projected = torch.einsum("fm,bfl->bml", filters, spectrum)  # W^T S, through the 32 bins
            spectrum = spectrum * target / (torch.einsum("fm,bml->bfl", filters, projected) + 1e-10)
        return spectrum

    def spread(self, x: Tensor) -> Tensor:
        """Each sample's standard deviation about its own mean, in normalised units ``[B]``."""
        return (x.float() / self.scale).flatten(1).std(dim=1)

    def limit_contrast(self, x: Tensor, spread: float = SPEECH_SPREAD) -> Tensor:
        """Scale each sample's deviations from its own mean down (never up) so that its standard
        deviation is at most ``spread`` (normalised units, like ``SPEECH_SPREAD``). For spectrograms
        sampled from noise with autoguidance, which comes out with too much contrast (std 0.43 at
        w = 3 against speech's 0.31, a 29-31 dB level range against 20): the extrapolation inflates
        every deviation, and scaling them back restores speech's spread and frame-to-frame change
        (mean |dx/dt| 0.117 -> 0.087; speech 0.084) with the spectral and temporal shape kept.
        Rescaling inside the sampling loop instead (``rescale`` of ``with_audio_autoguidance``) undid
        the guidance's gain. Not in the paper; the paper's waveform branch has no spectrogram.

        >>> codec = MelCodec(16000, 4, 250, 1024, 16000)
        >>> x = torch.tensor([[[-0.9, 0.9], [0.9, -0.9]]])
        >>> codec.limit_contrast(x, 0.3).std().item() <= 0.3 + 1e-6
        True
        """
        if spread <= 0:
            raise ValueError(f"spread must be positive, got {spread}")
        mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        gain = (spread / self.spread(x).clamp(min=1e-8)).clamp(max=1.0).to(x.dtype)
        return mean + gain.view(-1, *[1] * (x.ndim - 1)) * (x - mean)

    def decode(self, x: Tensor, iters: int = GRIFFIN_LIM_ITERS, generator: torch.Generator | None = None, *,
               clamp: bool = True, momentum: float = GRIFFIN_LIM_MOMENTUM) -> Tensor:
        """Fast Griffin-Lim (Perraudin et al. 2013, torchaudio's default momentum): ``iters`` rounds of
        keeping the magnitude and taking the phase of the last estimate, extrapolated by ``momentum``
        (0 is plain Griffin-Lim). ``clamp=False`` leaves samples beyond [-1, 1] for the caller to scale
        (see ``generate.limit``)."""
        magnitude = self.magnitude(x)
        magnitude = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)  # the dropped end frame
        window = torch.hann_window(self.n_fft, device=x.device)
        phase = torch.rand(magnitude.shape, generator=generator, device="cpu").to(x.device) * (2 * math.pi)
        spec = torch.polar(magnitude, phase)
        previous = None
        for _ in range(iters):
            wave = torch.istft(spec, self.n_fft, self.hop, window=window, center=True, length=self.samples)
            estimate = self._stft(wave)
            pushed = estimate if previous is None else estimate - momentum / (1 + momentum) * previous
            previous = estimate
            spec = magnitude * torch.exp(1j * pushed.angle())
        wave = torch.istft(spec, self.n_fft, self.hop, window=window, center=True, length=self.samples)
        return wave.clamp(-1, 1) if clamp else wave


@functools.lru_cache(maxsize=8)
def audio_codec(config) -> WaveCodec | MelCodec:
    """The codec a ``DiffusionConfig`` or ``ClassifierConfig`` trains and samples with (one per config:
    training asks for it every batch, and the mel codec keeps its filterbank)."""
    unet = config.unet
    if unet.audio_features == "wave":
        return WaveCodec(unet.audio_samples, config.audio_scale)
    rate = getattr(config, "sample_rate", 16_000)
    return MelCodec(unet.audio_samples, unet.mel_bins, unet.mel_hop, unet.mel_fft, rate, config.audio_scale)
