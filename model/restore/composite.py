"""Copying the call's face where a frame shows it unchanged: the upscaler's last step.

The upscaler (``model/restore``, scale 4) is a small network that fetches detail from the call's face
aligned to each frame, and it fetches only part of it: on whole calls its frames had 0.72x the
corpus's luma detail at 256 even where the face was the sender's sharp picture. But most of a talking
head's frame *is* the call's face in another pose (hair, forehead, eyes open, clothes, background);
only the mouth, blinks and what a rigid warp cannot match differ. So where the frame at 64 agrees with
the aligned face brought down to 64, the output takes the aligned face at 256 itself, pixel for pixel,
and the network's output elsewhere; a soft mask (the agreement, eroded by a pixel at 64 so that a
changed region keeps a margin, blurred at 256) joins the two.

This is the paste-back of Wav2Lip and MuseTalk turned around: those generate a mouth region and paste
it into the original frame; here the joint model makes the whole frame at 64 (so head motion, blinks
and mouth are its own) and the face is pasted back wherever the frame says it is unchanged. Frames
then carry exactly the face's detail from frame to frame, and no more than the face has: a call's face
drawn by the portrait model is only as sharp as its upscaling makes it.
"""

from __future__ import annotations

import cv2
import numpy as np

AGREE = 10.0  # 8-bit levels (largest channel difference at 64, blurred): below it the face is copied
DIFFER = 28.0  # above it the network's frame is kept; linear in between
GROW = 1  # pixels at 64 by which a changed region grows before blending
SOFTEN = 3.0  # sigma of the mask's blur at the output size, pixels


def agreement(frame: np.ndarray, face: np.ndarray) -> np.ndarray:
    """float32 ``[S, S]`` in [0, 1]: 1 where uint8 ``frame`` and ``face`` (same size) show the same picture."""
    diff = np.abs(frame.astype(np.float32) - face.astype(np.float32)).max(-1)
    diff = cv2.GaussianBlur(diff, (0, 0), 0.8)
    mask = np.clip((DIFFER - diff) / (DIFFER - AGREE), 0.0, 1.0)
    if GROW:
        mask = cv2.erode(mask, np.ones((2 * GROW + 1, 2 * GROW + 1), np.uint8))
    return mask


def paste_face(frames: np.ndarray, upscaled: np.ndarray, aligned: np.ndarray) -> np.ndarray:
    """uint8 ``[F, s, s, 3]`` frames, their upscaled ``[F, S, S, 3]`` and the face aligned to each
    ``[F, S, S, 3]`` -> uint8 ``[F, S, S, 3]``: the aligned face where the frame agrees with it."""
    if not (len(frames) == len(upscaled) == len(aligned)) or upscaled.shape != aligned.shape:
        raise ValueError(f"paste_face needs matching frames, got {frames.shape}, {upscaled.shape}, {aligned.shape}")
    s, big = frames.shape[1], upscaled.shape[1]
    out = np.empty_like(upscaled)
    for i, (frame, up, face) in enumerate(zip(frames, upscaled, aligned)):
        small = cv2.resize(face, (s, s), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(agreement(frame, small), (big, big), interpolation=cv2.INTER_LINEAR)
        mask = cv2.GaussianBlur(mask, (0, 0), SOFTEN)[..., None]
        out[i] = np.clip(mask * face + (1.0 - mask) * up, 0, 255).round().astype(np.uint8)
    return out
