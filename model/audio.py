"""Audio sample-rate conversion: the one resampler of the house (voices, corpora, lip-sync scores,
the report's codecs all call it).

    >>> resample(np.zeros(44_100, np.float32), 44_100, 16_000).shape
    (16000,)
"""

from __future__ import annotations

from math import gcd

import numpy as np

__all__ = ["resample"]


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """float ``audio`` ``[S]`` at ``rate`` Hz -> float32 ``[S * target / rate]`` at ``target`` Hz.

    scipy's polyphase filter (``resample_poly``, Kaiser window), computed in float64; no clipping, so
    a full-scale signal may ring a little past [-1, 1]. At the same rate: a float32 copy.
    """
    rate, target = int(rate), int(target)
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} -> {target} Hz")
    if rate == target or audio.size == 0:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly  # noqa: PLC0415 (scipy loads when audio is resampled)

    g = gcd(rate, target)
    return resample_poly(audio.astype(np.float64), target // g, rate // g).astype(np.float32)


def fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """float32 ``[S']`` -> ``[samples]``: trimmed, or padded with silence."""
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono [S], got shape {audio.shape}")
    out = np.zeros(samples, dtype=np.float32)
    n = min(samples, audio.shape[0])
    out[:n] = np.clip(audio[:n], -1.0, 1.0)
    return out
