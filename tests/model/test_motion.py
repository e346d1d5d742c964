"""Head motion for a call (model/motion.py), alone and on the real generator with the tiny stand-ins of
test_call."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model.clip import VIDEO_FPS, Request
from model.motion import ROLL_DEGREES, SHIFT_X, SHIFT_Y, HeadMotion, apply_pose
from model.talking_head import TalkingHead, TalkingHeadSettings
from tests.model.test_call import CopyFaceModel, FakePortrait
from tests.model.test_talking_head import MouthLipSync, SecondsVoice


def test_a_calls_pose_is_smooth_bounded_and_its_own() -> None:
    t = np.arange(0, 20, 1 / VIDEO_FPS)
    pose = HeadMotion.for_call("alice").pose(t)
    assert pose.shape == (len(t), 3)
    assert np.array_equal(pose, HeadMotion.for_call("alice").pose(t))  # the same call, the same motion
    assert not np.allclose(pose, HeadMotion.for_call("bob").pose(t))
    for axis, amplitude in enumerate((ROLL_DEGREES, SHIFT_X, SHIFT_Y)):
        assert np.abs(pose[:, axis]).max() <= 1.5 * amplitude  # three waves of weight <= 1, halved
        assert pose[:, axis].std() > 0.1 * amplitude  # it does move
        assert np.abs(np.diff(pose[:, axis])).max() < 0.5 * amplitude  # slowly: at most 1.1 Hz at 16 fps


def test_warping_moves_the_face_and_leaves_a_still_pose_alone() -> None:
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    frames[:, 30:34, 30:34] = 255  # a bright square in the middle
    assert np.array_equal(apply_pose(frames, np.zeros((2, 3), np.float32)), frames)
    moved = apply_pose(frames, np.array([[0, 2, 0], [0, 0, -3]], np.float32))
    cols = [np.argwhere(f[..., 0] > 127)[:, 1].mean() for f in moved]
    rows = [np.argwhere(f[..., 0] > 127)[:, 0].mean() for f in moved]
    assert cols[0] == pytest.approx(33.5, abs=0.3) and rows[1] == pytest.approx(28.5, abs=0.3)
    with pytest.raises(ValueError):
        apply_pose(frames, np.zeros((3, 3), np.float32))


class TexturedPortrait(FakePortrait):
    """A face with edges, so that motion shows (a flat one looks the same wherever it is)."""

    def sample(self, caption, **kwargs):
        face = super().sample(caption, **kwargs).copy()
        s = face.shape[1]
        face[:, s // 4 : s // 4 + 2, s // 4 : 3 * s // 4] = 0  # brows
        return face


def _head(**settings) -> TalkingHead:
    from model.diffusion.config import preset

    config = preset("tiny-ref")
    base = TalkingHeadSettings(sampler="ddim", steps=3, prefix_frames=1, unconditional_seconds=0.5, postfilter=False)
    return TalkingHead(CopyFaceModel(config), config, voice=SecondsVoice(), lipsync=MouthLipSync(),
                       portrait=TexturedPortrait(config.unet.image_size), settings=dataclasses.replace(base, **settings))


def test_the_head_moves_through_a_call_and_its_clock_runs_on() -> None:
    head = _head()
    call = head.open_call("carol")
    first = call.say(Request(caption="A woman is talking", text="0.75", seed=1))
    second = call.say(Request(text="0.5", seed=2))
    assert first.info["head_motion"] and second.info["head_motion"]
    half = first.video.shape[1] // 2
    upper = first.video[:, :half].astype(np.float32)
    assert np.abs(np.diff(upper, axis=0)).mean() > 0.5  # the head moves
    assert call.video_seconds == pytest.approx((len(first.video) + len(second.video)) / VIDEO_FPS)
    still = _head(head_motion=False).open_call("carol").say(Request(caption="A woman is talking", text="0.75", seed=1))
    assert not still.info["head_motion"]
    assert np.abs(np.diff(still.video[:, :half].astype(np.float32), axis=0)).max() <= 2  # a copied face stands still


class RecordingLipSync(MouthLipSync):
    """Keeps every frame lip sync was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def stream(self, audio, n_frames, fps=16, *, still=None, box_size=None):
        inner = super().stream(audio, n_frames, fps, still=still, box_size=box_size)
        push, seen = inner.push, self.seen

        def recording(frames: np.ndarray) -> np.ndarray:
            seen.append(np.array(frames))
            return push(frames)

        inner.push = recording
        return inner


def test_the_head_moves_last_so_lip_sync_sees_the_face_in_its_own_pose_and_a_style_image_moves_too(tmp_path) -> None:
    from model.pipeline import draw_portrait

    head = _head()
    head.lipsync = lips = RecordingLipSync()
    call = head.open_call("dave")
    path = draw_portrait(tmp_path / "dave.png", gender="male", seed=4)
    styled = call.say(Request(text="1.0", style_image=path, seed=1))
    assert styled.info["head_motion"] and lips.animated == 1
    handed = np.concatenate(lips.seen)
    assert (handed == handed[:1]).all()  # the still, unmoved, every frame
    half = styled.video.shape[1] // 2
    assert np.abs(np.diff(styled.video[:, :half].astype(np.float32), axis=0)).mean() > 0.5  # ... and the output moves
    assert call.video_seconds == pytest.approx(len(styled.video) / VIDEO_FPS)  # on the call's one clock
    lips.seen.clear()
    spoken = call.say(Request(text="0.75", seed=2))
    handed = np.concatenate(lips.seen)[:, :half].astype(np.float32)  # the upper face: untouched by the fake lip sync
    assert np.abs(np.diff(handed, axis=0)).max() <= 2  # the copied face, in its own pose
    assert np.abs(np.diff(spoken.video[:, :half].astype(np.float32), axis=0)).mean() > 0.5
    paper = _head(head_motion=False)
    assert not paper.open_call("dave").say(Request(text="1.0", style_image=path, seed=1)).info["head_motion"]
