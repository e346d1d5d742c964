"""Is a waveform's loudness shaped like speech? Two numbers for audio the joint model made from noise.

Speech alternates syllables and short pauses: its loudness envelope (RMS in 20 ms frames) spans a
wide range of levels and most of its slow variation lies at syllable rates, 2-8 Hz. Stationary noise
has a flat envelope (a range of about 1 dB) whose little variation is spread over all rates.

- ``range_db``: the 90th minus the 10th percentile of the frame levels, in dB;
- ``syllabic``: the share of the envelope's modulation power (above 0.5 Hz) that lies in 2-8 Hz.

``textcall eval`` calls a clip's audio speech-like when both numbers reach the 10th percentile of the
same numbers over one-second windows of held-out corpus speech (the reference), so the bar is set by
the corpus, not by a constant chosen here. No model is involved.
"""

from __future__ import annotations

import math

import numpy as np

from model.lipsync.metric import rms_envelope

FRAME_S = 0.02
MIN_FRAMES = 10
MIN_SECONDS = MIN_FRAMES * FRAME_S
SYLLABLE_HZ = (2.0, 8.0)


def envelope_stats(audio: np.ndarray, rate: int = 16000) -> dict[str, float]:
    """``{"range_db", "syllabic"}`` of a mono waveform at least ``MIN_SECONDS`` long."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    hop = int(round(rate * FRAME_S))
    n = len(audio) // hop
    if n < MIN_FRAMES:
        raise ValueError(f"need at least {MIN_SECONDS:.1f} s of audio, got {len(audio) / rate:.3f} s")
    rms = rms_envelope(audio, n, fps=rate / hop, rate=rate)
    level = 20 * np.log10(rms + 1e-6)
    spread = float(np.percentile(level, 90) - np.percentile(level, 10))
    power = np.abs(np.fft.rfft((rms - rms.mean()) * np.hanning(n))) ** 2
    freq = np.fft.rfftfreq(n, FRAME_S)
    slow = power[freq >= 0.5].sum()
    band = power[(freq >= SYLLABLE_HZ[0]) & (freq <= SYLLABLE_HZ[1])].sum()
    return {"range_db": round(spread, 2), "syllabic": round(float(band / slow) if slow > 0 else 0.0, 3)}


def windows(audio: np.ndarray, rate: int = 16000, seconds: float = 1.0) -> list[np.ndarray]:
    """Non-overlapping windows of ``seconds`` (the length the joint model generates)."""
    size = int(rate * seconds)
    audio = np.asarray(audio).reshape(-1)
    return [audio[i : i + size] for i in range(0, len(audio) - size + 1, size)]


def thresholds(reference: list[dict[str, float]], quantile: float = 10.0) -> dict[str, float]:
    """The reference's ``quantile``-th percentile of each number: the least a speech-like clip reaches."""
    return {key: round(float(np.percentile([r[key] for r in reference], quantile)), 3) for key in ("range_db", "syllabic")}


def speech_like(stats: dict[str, float], bar: dict[str, float]) -> bool:
    return stats["range_db"] >= bar["range_db"] and stats["syllabic"] >= bar["syllabic"]


def wilson_interval(passed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a pass rate (95 % for z = 1.96). The no-text clips of an eval are few
    (26 of 64 clips), so one clip moves the rate by 4 points; the interval says how far the measured
    rate could sit from the model's own."""
    if total <= 0:
        return (0.0, 1.0)
    p = passed / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3))
