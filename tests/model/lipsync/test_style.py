"""Style images: decoding limits, the gallery, and the corpus-like 64x64 face frame."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.corpus.face import FaceRenderer, FaceState
from model.corpus.speakers import make_speakers
from model.lipsync.style import Gallery, NoFaceError, StyleImageError, decode_image, style_frame


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return np.ascontiguousarray(FaceRenderer(make_speakers(1, 1)[1].look).render(FaceState(opening=0.2))[..., ::-1])


def test_decode_and_frame_a_face(portrait: np.ndarray) -> None:
    img = decode_image(_png(portrait))
    assert np.array_equal(img, portrait)
    frame = style_frame(img)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # a face, not a flat patch


def test_bad_images_are_named(portrait: np.ndarray) -> None:
    with pytest.raises(StyleImageError, match="not a readable image"):
        decode_image(b"GIF89a-but-not-really" * 10)
    with pytest.raises(StyleImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(StyleImageError, match="bytes is larger"):
        decode_image(_png(portrait), max_bytes=1000)
    with pytest.raises(StyleImageError, match="pixels is larger"):
        decode_image(_png(np.zeros((300, 300, 3), np.uint8)), max_pixels=200 * 200)
    with pytest.raises(NoFaceError, match="blank"):
        style_frame(decode_image(_png(np.full((64, 64, 3), 200, np.uint8))))
    with pytest.raises(NoFaceError, match="no face"):
        style_frame(decode_image(_png(np.full((300, 400, 3), 90, np.uint8))))


def test_gallery(tmp_path: Path, portrait: np.ndarray) -> None:
    (tmp_path / "anna.png").write_bytes(_png(portrait))
    (tmp_path / "notes.txt").write_text("not an image")
    gallery = Gallery(tmp_path)
    assert gallery.ids() == ["anna"]
    assert gallery.load("anna").shape == portrait.shape
    with pytest.raises(StyleImageError, match="known: anna"):
        gallery.load("bob")
    with pytest.raises(StyleImageError, match="bad gallery id"):
        gallery.load("../anna")
