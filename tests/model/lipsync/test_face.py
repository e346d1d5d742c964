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


def test_the_second_cascade_finds_a_beard_the_first_misses_and_frames_it_alike(tmp_path, monkeypatch) -> None:
    """Procedural portraits the frontal-face default cascade misses (a full beard; long hair on darker
    skin) are found by the second (``CASCADES``), boxed as the first boxes the faces it finds."""
    import cv2

    from model.lipsync import face as face_module
    from model.pipeline import draw_portrait

    def rgb(gender: str, seed: int) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(str(draw_portrait(tmp_path / f"{gender}{seed}.png", gender=gender, seed=seed))),
                            cv2.COLOR_BGR2RGB)

    def detect_with(cascades, image):
        with monkeypatch.context() as patch:
            patch.setattr(face_module, "CASCADES", cascades)
            patch.setattr(face_module, "FINE_STEP", face_module.COARSE_STEP)  # one pass of scales
            return detect(image)

    first, second = face_module.CASCADES[:1], face_module.CASCADES[1:]
    for gender, seed in (("male", 2), ("female", 14)):
        image = rgb(gender, seed)
        assert detect_with(first, image) is None
        box = detect(image)
        assert box is not None and box.width == box.height and box.x0 < 180 < box.x1 and box.y0 < 144 < box.y1
    # where both find the face, the second's box (mapped) lies within 12 % of a side of the first's
    image = rgb("male", 4)
    default, mapped = detect_with(first, image), detect_with(second, image)
    assert default is not None and mapped is not None
    assert max(abs(mapped.width - default.width), abs(mapped.x0 - default.x0), abs(mapped.y0 - default.y0)) <= 0.12 * default.width



def test_finer_scale_steps_find_a_low_contrast_face_the_coarse_ones_step_over(tmp_path, monkeypatch) -> None:
    """A procedural portrait (a woman of darker skin under grey hair, seed 38) neither cascade finds at
    the coarse steps of scale is found at the fine ones, and framed as a face."""
    import cv2

    from model.lipsync import face as face_module
    from model.pipeline import draw_portrait

    image = cv2.cvtColor(cv2.imread(str(draw_portrait(tmp_path / "f38.png", gender="female", seed=38))), cv2.COLOR_BGR2RGB)
    with monkeypatch.context() as patch:
        patch.setattr(face_module, "FINE_STEP", face_module.COARSE_STEP)
        assert detect(image) is None
    box = detect(image)
    assert box is not None and box.width == box.height and box.x0 < 180 < box.x1 and box.y0 < 144 < box.y1
    assert 0.35 * 288 < box.width < 0.8 * 288

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


def test_a_box_found_at_a_smaller_size_is_the_small_frames_box_scaled(portrait: np.ndarray) -> None:
    """``at``: frames drawn at 256 are cropped where their 64-pixel versions are (the receiver's lip
    sync on upscaled frames), and a face the cascade misses at 256 still gets the small-frame box."""
    import cv2

    square = cv2.resize(portrait[:, 36:324], (256, 256), interpolation=cv2.INTER_AREA)
    small = cv2.resize(square, (64, 64), interpolation=cv2.INTER_AREA)
    frames = np.stack([square] * 3)
    big, little = clip_box(frames, at=64), clip_box(np.stack([small] * 3))
    assert (big.x0, big.y0, big.x1, big.y1) == tuple(4 * v for v in (little.x0, little.y0, little.x1, little.y1))
    assert face_box(square, at=64) == big
    assert clip_box(np.stack([small] * 3), at=64) == little  # frames no larger than ``at``: as they are
    textured = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)  # no face the cascade finds
    assert face_box(textured, at=64) == FaceBox(0, 0, 256, 256)  # the 64-pixel fallback, scaled


def test_paste_with_keep_changes_only_what_the_generator_redrew(portrait: np.ndarray) -> None:
    """A box larger than the crop: the frame keeps its own pixels wherever the generated face matches
    the crop it was given; where it differs (here a dark mouth), the generated face is pasted."""
    import cv2

    box = face_box(portrait)
    given = crop(portrait, box)
    drawn = crop(crop(portrait, box, 40), FaceBox(0, 0, 40, 40))  # the crop as a soft 40-pixel face redraws it
    drawn[66:80, 30:66] = 10  # and a mouth
    mouth = np.zeros((96, 96), np.uint8)
    mouth[66:80, 30:66] = 1
    near = cv2.dilate(mouth, np.ones((25, 25), np.uint8))  # the mouth and 12 crop pixels around it

    def on_image(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(portrait.shape[:2], bool)
        out[box.y0:box.y1, box.x0:box.x1] = cv2.resize(mask, (box.width, box.height), interpolation=cv2.INTER_NEAREST) > 0
        return out

    lower = np.zeros((96, 96), np.uint8)
    lower[56:88, 12:84] = 1  # where paste_mask pastes fully
    far = on_image(lower * (1 - near))
    plain, kept = paste(portrait, drawn, box), paste(portrait, drawn, box, keep=given)
    inner = on_image(cv2.erode(mouth, np.ones((5, 5), np.uint8)))
    assert np.abs(kept[inner].astype(int) - plain[inner]).mean() < 3  # the mouth is pasted either way
    soft = np.abs(plain[far].astype(int) - portrait[far]).mean()
    sharp = np.abs(kept[far].astype(int) - portrait[far]).mean()
    assert soft > 2 and sharp < 0.25 * soft  # away from it the frame keeps its own (sharper) pixels


def test_paste_with_keep_leaves_out_what_the_generator_changed_away_from_the_mouth(portrait: np.ndarray) -> None:
    """A speck drawn at the crop's side (in long hair by a cheek), or a collar redrawn at the bottom of a
    whole-frame crop, are changes too, but not the mouth's: with ``keep`` the frame keeps its own pixels."""
    import cv2

    from model.lipsync.face import mouths_only

    box = face_box(portrait)
    given = crop(portrait, box)
    drawn = given.copy()
    drawn[66:80, 30:66] = 10  # a mouth
    drawn[60:68, 8:16] = (200, 40, 40)  # a speck at the side
    kept = paste(portrait, drawn, box, keep=given)

    def on_image(y0: int, y1: int, x0: int, x1: int) -> tuple[slice, slice]:
        sy, sx = box.height / 96, box.width / 96
        return slice(box.y0 + int(y0 * sy), box.y0 + int(y1 * sy)), slice(box.x0 + int(x0 * sx), box.x0 + int(x1 * sx))

    mouth, speck = on_image(69, 77, 36, 60), on_image(61, 67, 9, 15)
    assert kept[mouth].mean() < 40  # the mouth is pasted
    assert np.abs(kept[speck].astype(int) - portrait[speck]).max() <= 8  # of the speck's ~100 levels
    # where a whole-frame crop has its mouth (~0.55 of the side), a change is the mouth's too
    mask = np.zeros((96, 96), np.float32)
    mask[50:58, 36:60] = 1.0  # a mouth
    mask[40:46, 6:12] = 1.0  # a speck in the hair by a cheek
    mask[88:96, :] = 1.0  # the collar
    kept = mouths_only(mask)
    assert kept[50:58, 38:58].min() == 1.0 and kept[40:46, 6:12].max() < 0.05 and not kept[88:96].any()
    assert cv2.resize(mouths_only(np.ones((48, 48), np.float32)), (96, 96)).any()  # any size
