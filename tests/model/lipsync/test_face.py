"""Face box, 96x96 crop, lower-half mask and feathered paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.corpus.face import FaceRenderer, FaceState
from model.corpus.speakers import make_speakers
from model.lipsync.face import (FaceBox, NoFaceError, clip_box, crop, detect, face_box, mask_lower_half, paste,
                                paste_mask)


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """A drawn corpus face, 360x288 like GRID, RGB."""
    return np.ascontiguousarray(FaceRenderer(make_speakers(1, 0)[0].look).render(FaceState(opening=0.4))[..., ::-1])


def test_detects_a_drawn_face_and_keeps_the_chin(portrait: np.ndarray) -> None:
    box = detect(portrait)
    assert box is not None and box.width == box.height
    assert 60 < box.width < 260 and box.x0 < 180 < box.x1 and box.y0 < 144 < box.y1
    assert box.x1 <= portrait.shape[1] and box.y1 <= portrait.shape[0]


def test_small_frames_fall_back_to_the_whole_frame_and_blank_is_no_face() -> None:
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)  # no face, but a 64x64 face crop is assumed
    assert face_box(textured) == FaceBox(0, 0, 64, 64)
    with pytest.raises(NoFaceError, match="blank"):
        face_box(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="no face"):
        face_box(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), fallback=True)
    with pytest.raises(ValueError, match="RGB image"):
        face_box(np.zeros((64, 64), np.uint8))


def test_crop_then_paste_returns_the_frame(portrait: np.ndarray) -> None:
    box = face_box(portrait)
    face = crop(portrait, box)
    assert face.shape == (96, 96, 3) and face.dtype == np.uint8
    back = paste(portrait, face, box)
    assert back.shape == portrait.shape and back.dtype == np.uint8
    outside = np.ones(portrait.shape[:2], bool)
    outside[box.y0:box.y1, box.x0:box.x1] = False
    assert np.array_equal(back[outside], portrait[outside])  # nothing changes outside the box
    err = np.abs(back.astype(int) - portrait).mean()
    assert err < 2.0  # resize down and up again: only interpolation error


def test_paste_changes_only_the_lower_face(portrait: np.ndarray) -> None:
    box = face_box(portrait)
    black = np.zeros((96, 96, 3), np.uint8)
    out = paste(portrait, black, box)
    changed = np.abs(out.astype(int) - portrait).sum(axis=2) > 0
    ys = np.nonzero(changed)[0]
    assert ys.min() >= box.y0 + 0.38 * box.height  # the eyes and brows are left alone
    mask = paste_mask(60, 60)
    assert mask.max() == pytest.approx(1.0, abs=1e-3) and mask[:20].max() == 0 and mask[-1].max() < 0.2  # feathered


def test_mask_lower_half_both_array_kinds() -> None:
    x = np.ones((2, 3, 96, 96), np.float32)
    m = mask_lower_half(x)
    assert m[..., :48, :].min() == 1 and m[..., 48:, :].max() == 0 and x.min() == 1
    t = mask_lower_half(torch.ones(2, 6, 96, 96))
    assert float(t[..., 48:, :].abs().sum()) == 0


def test_clip_box_is_one_box_for_the_clip(portrait: np.ndarray) -> None:
    frames = np.stack([np.roll(portrait, s, axis=1) for s in (-2, 0, 2, 4)])
    box = clip_box(frames)
    single = face_box(portrait)
    assert abs(box.x0 - single.x0) <= 6 and abs(box.width - single.width) <= 12
