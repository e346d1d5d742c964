"""Lip sync: Wav2Lip's generator and SyncNet expert (official layouts), their training on the
corpus, the receiver's ``LipSync`` facade (refinement after denoising, still-image animation) and
lip-sync measures.

    >>> from model.lipsync import LipSync, NoFaceError
    >>> lips = LipSync.load("model/weights/lipsync")
    >>> frames = lips.refine(frames, audio)          # uint8 [F, H, W, 3], float32 [S] @ 16 kHz, 16 fps
    >>> clip = lips.animate(image, audio)            # uint8 [H, W, 3] -> [ceil(S / 16000 * 16), H, W, 3]

Importing the package is light (torch loads with the facade on first use).
"""

from __future__ import annotations

__all__ = ["LipSync", "NoFaceError"]


def __getattr__(name: str):
    if name == "LipSync":
        from model.lipsync.refine import LipSync

        return LipSync
    if name == "NoFaceError":
        from model.lipsync.face import NoFaceError

        return NoFaceError
    raise AttributeError(name)
