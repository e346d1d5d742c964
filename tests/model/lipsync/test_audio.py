"""Wav2Lip mel features against a direct numpy implementation of its audio.py formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.lipsync.audio import MEL_STEPS_PER_SECOND, mel_windows, melspectrogram, window_starts


# -- numpy reference: Wav2Lip's audio.py with librosa's Slaney mel filterbank, written out -----------
def _hz_to_mel(f):
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m):
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _mel_filterbank(sr=16000, n_fft=800, n_mels=80, fmin=55.0, fmax=7600.0):
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]  # Slaney area normalisation
    return weights


def _reference(wav: np.ndarray) -> np.ndarray:
    wav = wav.astype(np.float64)
    y = np.concatenate([wav[:1], wav[1:] - 0.97 * wav[:-1]])  # lfilter([1, -0.97], [1], wav)
    n_fft, hop = 800, 200
    padded = np.pad(y, n_fft // 2, mode="reflect")  # librosa.stft(center=True) as in librosa 0.7
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    n = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop: i * hop + n_fft] * window for i in range(n)], axis=1)
    spec = np.abs(np.fft.rfft(frames, axis=0))  # [401, T]
    mel = _mel_filterbank() @ spec
    db = 20 * np.log10(np.maximum(np.exp(-100 / 20 * np.log(10)), mel)) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = 0.5 * (1 + np.sin(2 * np.pi * 3 * t)) ** 2
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1440, 3100), 1))
    return (0.2 * env * tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("seconds", [1.0, 0.37])
def test_mel_matches_numpy_reference(seconds: float) -> None:
    wav = _speechlike(seconds)
    ours = melspectrogram(wav).numpy()
    ref = _reference(wav)
    assert ours.shape == ref.shape == (80, 1 + wav.size // 200)
    assert ours.min() >= -4 and ours.max() <= 4 and ref.max() > 0  # normalised, and not all silence
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_silence_is_the_floor() -> None:
    assert torch.all(melspectrogram(np.zeros(16000, np.float32)) == -4)


def test_bad_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        melspectrogram(np.zeros(100, np.float32), sample_rate=22050)
    with pytest.raises(ValueError, match="NaN"):
        melspectrogram(np.full(1000, np.nan, np.float32))


def test_windows_are_centred_on_frames() -> None:
    assert MEL_STEPS_PER_SECOND == 80
    starts = window_starts(16, fps=16)
    assert starts[0] == -5 and np.all(np.diff(starts) == 5)  # 5 i - 5: 5 steps per 16 fps frame
    mel = torch.arange(81, dtype=torch.float32)[None].repeat(80, 1)  # value = step index
    win = mel_windows(mel, 16, fps=16)
    assert win.shape == (16, 1, 80, 16)
    centre = win[:, 0, 0].mean(dim=1)  # mean step index of each window
    assert torch.allclose(centre[1:-1], torch.tensor([5 * i + 2.5 for i in range(1, 15)]))  # centred exactly
    assert win[0, 0, 0, 0] == 0 and win[-1, 0, 0, -1] == 80  # edge steps repeated, never out of range
    assert mel_windows(mel, 25, fps=25)[10, 0, 0, 0] == 26  # floor(80 * 10.5 / 25 - 8 + 0.5)
