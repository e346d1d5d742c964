"""Aligning the call's face to each frame before the upscaler copies its detail.

The upscaler's reference is the call's face at 256; a frame shows that face in another pose (the joint
model's, then the call's head motion). Fetching detail from a reference in another pose is what a
network learns slowly (a first run with cross-attention alone had not moved off bicubic upsampling
after 700 steps), while copying from an aligned one it learns in tens of steps. So each frame gets
its own reference: the face warped by the rigid transform (rotation + shift) that best maps the
face onto the frame at 64 pixels (OpenCV's ECC, Evangelidis & Psarakis 2008), applied at 256.
What a rigid warp cannot match (the mouth, blinks, yaw) the network takes from the frame.

The warp resamples bicubically: the fits are mostly sub-pixel (median corner displacement 0.6-0.9
pixels at 256 on whole calls, now that head motion comes after the upscaler), and a bilinear
half-pixel shift is a two-tap average, which softened every pasted face (luma detail of a style
call's spoken utterance 2.18 bilinear, 2.36 bicubic; the still itself 2.63).
"""

from __future__ import annotations

import cv2
import numpy as np

_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-4)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def rigid_warp(frame: np.ndarray, reference_small: np.ndarray) -> np.ndarray:
    """The 2x3 warp (frame pixel -> reference pixel, same size) that best aligns the two; identity when
    ECC does not converge (flat images, far-off poses)."""
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        _, warp = cv2.findTransformECC(_grey(frame), _grey(reference_small), warp, cv2.MOTION_EUCLIDEAN, _CRITERIA, None, 3)
    except cv2.error:
        return np.eye(2, 3, dtype=np.float32)
    if not np.isfinite(warp).all() or np.abs(warp[:, 2]).max() > frame.shape[0] / 4:  # a runaway fit
        return np.eye(2, 3, dtype=np.float32)
    return warp


def align_to(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """uint8 ``[F, S, S, 3]`` frames and uint8 ``[kS, kS, 3]`` reference -> uint8 ``[F, kS, kS, 3]``: the
    reference warped onto each frame's pose."""
    s, big = frames.shape[1], reference.shape[0]
    k = big / s
    small = cv2.resize(reference, (s, s), interpolation=cv2.INTER_AREA)
    out = np.empty((len(frames), big, big, 3), np.uint8)
    for i, frame in enumerate(frames):
        warp = rigid_warp(frame, small)
        a, t = warp[:, :2], warp[:, 2]
        # pixel centres: x_big = k x_small + (k - 1) / 2, in both images
        shift = k * t + (k - 1) / 2 * (1 - a.sum(axis=1))
        out[i] = cv2.warpAffine(reference, np.concatenate([a, shift[:, None]], axis=1).astype(np.float32), (big, big),
                                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out
