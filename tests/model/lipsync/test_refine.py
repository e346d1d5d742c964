"""The LipSync facade: refinement of generated frames and still-image animation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.corpus.face import FaceRenderer, FaceState
from model.corpus.speakers import make_speakers
from model.lipsync.checkpoint import save_model
from model.lipsync.networks import build, preset
from model.lipsync.refine import LipSync, NoFaceError


@pytest.fixture(scope="module")
def lips(tmp_path_factory) -> LipSync:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("gen")
    save_model(folder, build(preset("wav2lip", "tiny")), preset("wav2lip", "tiny"))
    return LipSync.load(folder, batch_size=7)  # a batch size that does not divide the frame count


def _speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.clip(np.sin(2 * np.pi * 2 * t), 0, None) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def test_refine_keeps_shape_and_the_upper_face(lips: LipSync) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(60, 200, (16, 64, 64, 3), dtype=np.uint8)
    out = lips.refine(frames, _speech(1.0))
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[:, :20], frames[:, :20])  # only the lower face is redrawn
    assert not np.array_equal(out[:, 40:], frames[:, 40:])
    assert lips.refine(frames[:0], _speech(1.0)).shape == (0, 64, 64, 3)


def test_animate_a_still_face(lips: LipSync) -> None:
    portrait = np.ascontiguousarray(FaceRenderer(make_speakers(0, 1)[0].look).render(FaceState())[..., ::-1])
    clip = lips.animate(portrait, _speech(1.3))
    assert clip.shape == (21, *portrait.shape) and clip.dtype == np.uint8  # ceil(1.3 * 16)
    assert lips.animate(portrait[::4, ::4].copy(), _speech(0.5), fps=25).shape[0] == 13


def test_bad_input_is_named(lips: LipSync) -> None:
    with pytest.raises(NoFaceError, match="blank"):
        lips.animate(np.full((64, 64, 3), 255, np.uint8), _speech(1.0))
    with pytest.raises(NoFaceError, match="no face"):
        lips.animate(np.full((400, 300, 3), 30, np.uint8) + np.arange(300, dtype=np.uint8)[None, :, None] // 2, _speech(1.0))
    with pytest.raises(ValueError, match="empty"):
        lips.refine(np.zeros((4, 64, 64, 3), np.uint8), np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="uint8"):
        lips.refine(np.zeros((4, 64, 64, 3), np.float32), _speech(1.0))
    with pytest.raises(ValueError, match="mono"):
        lips.animate(np.zeros((64, 64, 3), np.uint8), np.zeros((2, 100), np.float32))


def test_load_refuses_a_syncnet_folder(tmp_path: Path) -> None:
    save_model(tmp_path, build(preset("syncnet", "tiny")), preset("syncnet", "tiny"))
    with pytest.raises(ValueError, match="syncnet"):
        LipSync.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        LipSync.load(tmp_path / "missing")
