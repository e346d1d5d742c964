"""The one resampler (model/audio.py)."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import resample


def test_a_tone_keeps_its_pitch_and_level_across_rates() -> None:
    t = np.arange(44_100) / 44_100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, 44_100, 16_000)
    assert out.dtype == np.float32 and out.shape == (16_000,)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 1e-2  # the filter's edges aside
    back = resample(out, 16_000, 48_000)
    assert back.shape == (48_000,)


def test_same_rate_is_a_float32_copy_and_empty_stays_empty() -> None:
    audio = np.linspace(-1, 1, 11)
    same = resample(audio, 16_000, 16_000)
    assert same.dtype == np.float32 and np.array_equal(same, audio.astype(np.float32))
    same[0] = 5
    assert audio[0] == -1
    assert resample(np.zeros(0, np.float32), 22_050, 16_000).shape == (0,)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(4, np.float32), 0, 16_000)
