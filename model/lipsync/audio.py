"""Mel features exactly as Wav2Lip's ``audio.py`` computes them, with torchaudio.

Wav2Lip's recipe (its ``hparams.py`` values, all fixed here):

1. pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``scipy.signal.lfilter([1, -0.97], [1], x)``);
2. STFT, n_fft 800, hop 200, window 800 (periodic Hann), centred with reflect padding as in the
   librosa 0.7 that Wav2Lip pins; magnitude;
3. 80 mel bands, 55-7600 Hz, Slaney mel scale and Slaney area normalisation (librosa's default);
4. ``20 log10(max(1e-5, m)) - 20`` (min_level_db -100, ref_level_db 20);
5. symmetric normalisation to [-4, 4]: ``clip(8 (S + 100) / 100 - 4, -4, 4)``.

At 16 kHz a hop of 200 samples gives **80 mel steps per second**; a waveform of ``S`` samples gives
``1 + S // 200`` steps (step ``k`` is centred on sample ``200 k``).

Mel windows per video frame (``mel_windows``): frame ``i`` of a ``fps`` video covers the time
``[i / fps, (i + 1) / fps)``; its window is the ``window`` (16, 200 ms) mel steps centred on the
frame's centre, starting at step ``floor(80 (i + 0.5) / fps - window / 2 + 0.5)`` (at 16 fps:
``5 i - 5``, so steps ``5 i - 5 .. 5 i + 10``, whose mean ``5 i + 2.5`` is the frame's centre in mel
steps), with the first/last step repeated where the window runs off either end. This
is the centring Wav2Lip's own training uses (the window of frame ``i`` starts two 25 fps frames
earlier); a SyncNet window of five frames ``i..i+4`` takes the window of its middle frame ``i + 2``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

SAMPLE_RATE = 16_000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS = 4.0
MEL_STEPS_PER_SECOND = SAMPLE_RATE / HOP  # 80.0
WINDOW_STEPS = 16  # mel steps the networks read per window (200 ms)


@lru_cache(maxsize=4)
def _mel_transform(device: str):
    import torchaudio  # noqa: PLC0415 (heavy; only when features are computed)

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=WIN, hop_length=HOP, f_min=FMIN, f_max=FMAX,
        n_mels=N_MELS, window_fn=torch.hann_window, power=1.0, center=True, pad_mode="reflect",
        norm="slaney", mel_scale="slaney",
    ).to(device)


def melspectrogram(audio: np.ndarray | Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Wav2Lip mel features of a mono waveform: float32 ``[80, 1 + S // 200]`` in [-4, 4].

    ``audio``: float ``[S]`` (or ``[B, S]`` -> ``[B, 80, T]``) at 16 kHz; anything else is refused,
    resample first (the features are defined at 16 kHz only).
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"mel features are defined at {SAMPLE_RATE} Hz, got {sample_rate} Hz: resample first")
    x = torch.as_tensor(np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else audio).float()
    if x.ndim not in (1, 2) or x.shape[-1] < 2:
        raise ValueError(f"audio must be [S] or [B, S] with S >= 2 samples, got {tuple(x.shape)}")
    if x.shape[-1] <= N_FFT // 2:  # reflect padding needs more samples than half the FFT
        x = torch.nn.functional.pad(x, (0, N_FFT // 2 + 1 - x.shape[-1]))
    if not torch.isfinite(x).all():
        raise ValueError("audio holds NaN or infinite samples")
    # pre-emphasis: y[0] = x[0], y[n] = x[n] - k x[n-1]
    y = torch.cat([x[..., :1], x[..., 1:] - PREEMPHASIS * x[..., :-1]], dim=-1)
    mel = _mel_transform(str(y.device))(y)  # [.., 80, T] magnitude
    min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * torch.log10(torch.clamp(mel, min=min_level)) - REF_LEVEL_DB
    norm = (2 * MAX_ABS) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS
    return torch.clamp(norm, -MAX_ABS, MAX_ABS).float()


def window_starts(n_frames: int, fps: float = 16.0, window: int = WINDOW_STEPS) -> np.ndarray:
    """First mel step of each frame's centred window (may be < 0 or run past the end): int64 ``[F]``."""
    if n_frames < 0 or fps <= 0 or window < 1:
        raise ValueError("n_frames must be >= 0, fps > 0 and window >= 1")
    centres = MEL_STEPS_PER_SECOND * (np.arange(n_frames) + 0.5) / fps
    return np.floor(centres - window / 2 + 0.5).astype(np.int64)


def mel_windows(mel: Tensor, n_frames: int, fps: float = 16.0, window: int = WINDOW_STEPS) -> Tensor:
    """Per-frame mel windows: ``mel [80, T]`` -> ``[n_frames, 1, 80, window]`` (edge steps repeated).

    Frame ``i``'s window is centred on the frame's centre (see the module docstring): at 16 fps and
    80 steps per second the windows start 5 steps apart.
    """
    if mel.ndim != 2 or mel.shape[1] < 1:
        raise ValueError(f"mel must be [n_mels, T] with T >= 1, got {tuple(mel.shape)}")
    starts = torch.as_tensor(window_starts(n_frames, fps, window), device=mel.device)
    idx = (starts[:, None] + torch.arange(window, device=mel.device)[None, :]).clamp_(0, mel.shape[1] - 1)
    return mel[:, idx].permute(1, 0, 2).unsqueeze(1).contiguous()  # [F, 1, 80, window]
