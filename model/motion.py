"""Head motion for a call's frames: small, smooth sway and tilt, continuous over the whole call.

Not in the paper. The reference-conditioned joint model copies the call's face so faithfully, and the
restorer pulls every frame so close to it, that heads hardly move: frame-to-frame change was 0.64x the
corpus's (``textcall eval calls``), and a frozen head reads as a photograph; an animated style image
(paper IV-E: only the mouth moves) was one. Talking-head systems commonly draw head pose apart from
the face (SadTalker's pose generator, for one); here the pose is the synthetic corpus's own motion
model (``model.corpus.synth._motion``: each axis a sum of three slow sinusoids, 0.15-1.1 Hz, random
phases and weights), with its amplitudes brought to the 64-pixel crop (the corpus's crop is about 175
pixels of its 360x288 frame, so its 4 and 2.5 pixel sways become about 1.5 and 0.9; roll, in degrees,
is kept). The phases are drawn once per call from its id, and time runs on across utterances, so one
utterance ends in the pose the next starts from.

The warp is the last step (``TalkingHead._render``): the clean-up, the upscaler's copy of the call's
face and lip sync all work on the face in its own pose, and the finished frames are moved rigidly at
the output size. (Until 2026-12-07 the 64-pixel frames were warped before the restorer, which pulled
part of the warp back towards the call's face, so the shifts were raised 1.6x to 2.4 and 1.45 to make
up for it; style images did not move.) Measured by phase correlation between consecutive frames
brought to 64: held-out corpus clips 0.197 pixels per frame; these amplitudes give 0.17 on average
over 300 call ids (translation alone, before roll).

``--head-motion off`` (``GeneratorSettings.head_motion``) leaves the frames as the model drew them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

ROLL_DEGREES = 2.5  # the synthesizer's wobble amplitudes (model/corpus/synth.py), at the crop's scale
SHIFT_X = 1.5  # the corpus's dx, dy brought to the 64-pixel crop (module docstring)
SHIFT_Y = 0.9
CENTRE = (0.5, 0.58)  # rotation centre as a share of width and height: about the middle of the face


@dataclass(frozen=True)
class HeadMotion:
    """One call's head pose as a function of call time: ``pose(t)`` -> roll degrees, dx, dy pixels at 64."""

    freqs: np.ndarray  # [3 axes, 3] Hz
    phases: np.ndarray  # [3, 3]
    weights: np.ndarray  # [3, 3]

    @classmethod
    def for_call(cls, call_id: str) -> HeadMotion:
        rng = np.random.default_rng(zlib.crc32(f"head-motion|{call_id}".encode()))
        return cls(rng.uniform(0.15, 1.1, (3, 3)), rng.uniform(0, 2 * np.pi, (3, 3)), rng.uniform(0.3, 1.0, (3, 3)))

    def pose(self, t: np.ndarray) -> np.ndarray:
        """``[N]`` seconds -> ``[N, 3]``: roll (degrees), dx, dy (pixels of a 64-pixel frame)."""
        t = np.asarray(t, np.float64)
        waves = np.sin(2 * np.pi * self.freqs[None] * t[:, None, None] + self.phases[None]) * self.weights[None]
        amplitude = np.array([ROLL_DEGREES, SHIFT_X, SHIFT_Y])
        return (amplitude * waves.sum(-1) / 2.0).astype(np.float32)


def apply_pose(frames: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` warped by ``pose`` ``[F, 3]`` (roll, dx, dy at 64 pixels; scaled to W),
    rotating about the face's middle; edges replicated."""
    import cv2

    if len(frames) != len(pose):
        raise ValueError(f"{len(frames)} frames but {len(pose)} poses")
    h, w = frames.shape[1:3]
    centre = (CENTRE[0] * w, CENTRE[1] * h)
    out = np.empty_like(frames)
    for k, (frame, (roll, dx, dy)) in enumerate(zip(frames, pose)):
        m = cv2.getRotationMatrix2D(centre, -float(roll), 1.0)
        m[:, 2] += (float(dx) * w / 64, float(dy) * w / 64)
        out[k] = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out
