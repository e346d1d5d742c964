"""The frame clean-up before lip sync (model/postfilter.py): removes noise that does not repeat,
keeps what does, and leaves clean frames alone."""

from __future__ import annotations

import numpy as np
import pytest

from model.postfilter import TEMPORAL, _mirror, postfilter, smooth_in_time


def cartoon(frames: int = 8, size: int = 64) -> np.ndarray:
    """A flat-shaded drawn face, as the corpus draws them: background, skin, two eyes, a mouth
    that opens and closes."""
    video = np.zeros((frames, size, size, 3), np.uint8)
    video[:] = (70, 110, 90)
    yy, xx = np.mgrid[:size, :size]
    skin = (yy - size * 0.5) ** 2 / (size * 0.38) ** 2 + (xx - size * 0.5) ** 2 / (size * 0.3) ** 2 <= 1
    video[:, skin] = (225, 185, 150)
    for cx in (0.38, 0.62):
        eye = (yy - size * 0.42) ** 2 + (xx - size * cx) ** 2 <= (size * 0.05) ** 2
        video[:, eye] = (30, 40, 60)
    for i in range(frames):
        h = 1 + 3 * (i % 4)
        video[i, int(size * 0.68) : int(size * 0.68) + h, int(size * 0.4) : int(size * 0.6)] = (150, 40, 50)
    return video


def test_colour_noise_is_removed_and_the_drawing_kept() -> None:
    clean = cartoon()
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 12, clean.shape) + rng.normal(0, 6, clean.shape[:3] + (1,))  # colour + luma
    noisy = np.clip(clean + noise, 0, 255).astype(np.uint8)
    out = postfilter(noisy)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    before = np.abs(noisy.astype(float) - clean).mean()
    after = np.abs(out.astype(float) - clean).mean()
    assert after < 0.5 * before
    # the mouth still opens and closes: its per-frame size survives the temporal window
    mouth = lambda v: (np.abs(v[:, 40:60, 24:40].astype(float) - (225, 185, 150)).sum(-1) > 120).sum((1, 2))
    assert np.corrcoef(mouth(out), mouth(clean))[0, 1] > 0.9


def test_a_clean_drawing_keeps_its_colours() -> None:
    """Flat areas keep their colour; only pixels at edges between similar colours move a little
    (the chroma filter is strong enough to blend them: the price of removing the model's colour noise).
    The temporal smoothing after it leaves still parts alone and softens only what moves (the mouth)."""
    clean = cartoon()
    nlm = postfilter(clean, temporal=0).astype(float)
    assert np.abs(nlm - clean).mean() < 3.0
    for out in (nlm, postfilter(clean).astype(float)):
        assert np.abs(out[:, 32, 32] - clean[:, 32, 32]).max() <= 3  # skin
        assert np.abs(out[:, 2, 2] - clean[:, 2, 2]).max() <= 3  # background
        assert np.abs(out[:, :40] - clean[:, :40]).mean() < 3.0  # above the mouth nothing moves


def test_smoothing_in_time_removes_flicker_and_leaves_still_frames() -> None:
    """The model's faces change from frame to frame where the corpus's hold still; a Gaussian over time
    cuts that flicker and returns a still video exactly."""
    still = cartoon(1).repeat(12, axis=0)
    assert np.array_equal(smooth_in_time(still, TEMPORAL), still)
    rng = np.random.default_rng(1)
    flicker = np.clip(still + rng.normal(0, 15, still.shape[:3] + (1,)), 0, 255).astype(np.uint8)
    change = lambda v: np.abs(np.diff(v.astype(float), axis=0)).mean()
    out = smooth_in_time(flicker, TEMPORAL)
    assert out.dtype == np.uint8 and out.shape == flicker.shape
    assert change(out) < 0.5 * change(flicker)
    assert np.abs(out.astype(float) - still).mean() < 0.6 * np.abs(flicker.astype(float) - still).mean()
    assert np.array_equal(smooth_in_time(flicker, 0.0), flicker)
    assert np.array_equal(smooth_in_time(flicker[:1], TEMPORAL), flicker[:1])


@pytest.mark.parametrize("frames", [1, 2, 3, 16])
def test_any_clip_length(frames) -> None:
    video = cartoon(frames)
    assert postfilter(video).shape == video.shape


@pytest.mark.parametrize("frames,sigma", [(2, 1.0), (3, 1.0), (9, 0.6), (9, 1.3)])
def test_smoothing_is_the_written_gaussian(frames, sigma) -> None:
    """scipy's filter gives the Gaussian written out: taps to ceil(2 sigma) frames, normalised, ends
    reflected as ``_mirror`` reflects them (also when the taps reach past a short clip's far end)."""
    video = np.random.default_rng(frames).integers(0, 256, (frames, 4, 5, 3), dtype=np.uint8)
    reach = int(np.ceil(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    taps /= taps.sum()
    written = [sum(w * video[_mirror(i + o, frames)].astype(float) for o, w in zip(range(-reach, reach + 1), taps))
               for i in range(frames)]
    assert np.abs(smooth_in_time(video, sigma).astype(float) - np.rint(written)).max() <= 1e-9


def test_mirror_reflects_about_the_end_frames() -> None:
    assert [_mirror(i, 5) for i in range(-2, 7)] == [2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert [_mirror(i, 2) for i in range(-2, 4)] == [0, 1, 0, 1, 0, 1]
    assert _mirror(-2, 1) == 0 and _mirror(3, 1) == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        postfilter(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="odd"):
        postfilter(cartoon(4), window=4)
    with pytest.raises(ValueError, match="temporal"):
        postfilter(cartoon(4), temporal=-1.0)
    assert postfilter(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 8, 8, 3)
