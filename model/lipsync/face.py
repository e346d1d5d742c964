"""Face box, 96x96 crops, Wav2Lip's lower-half mask and a feathered paste-back.

The box comes from OpenCV's frontal-face Haar cascade (``cv2.data.haarcascades``; a second one where the
first finds nothing, its box mapped to the first's framing: ``CASCADES``), grown as Wav2Lip
pads its detections: squared on the box height, and 15 % longer downwards so the chin is in.
One box serves a whole clip (the median of detections on a few frames): per-frame boxes jitter.

Fallback for small frames: textcall's own video is 64x64 with the head filling the frame, where a
detector may miss (nothing in front of the face to frame it). When no face is found in an image of
at most ``SMALL_SIDE`` pixels whose content is not flat (grey-level standard deviation above
``FLAT_STD``), the whole frame is taken as the face box. A flat (blank) image, or a larger image
without a detection, raises :class:`NoFaceError`. A small textured non-face image therefore passes
as a face: the fallback trusts that 64x64 frames are face crops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

CROP = 96  # Wav2Lip's face size
SMALL_SIDE = 128
FLAT_STD = 4.0
CHIN = 0.15  # extra box height below the detection, as a share of its height


class NoFaceError(ValueError):
    """No face could be found in an image."""


@dataclass(frozen=True)
class FaceBox:
    """Pixel box ``[x0, x1) x [y0, y1)`` inside an image."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        if self.x1 <= self.x0 or self.y1 <= self.y0 or self.x0 < 0 or self.y0 < 0:
            raise ValueError(f"empty or negative face box {self}")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @classmethod
    def full(cls, image: np.ndarray) -> FaceBox:
        return cls(0, 0, image.shape[1], image.shape[0])


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image uint8 [H, W, 3], got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")
    if min(image.shape[:2]) < 16:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small for a face")


# The cascades tried in turn on images larger than SMALL_SIDE (small frames use the first only), each
# with how its box maps onto the first's framing (side x, top moved down by a share of the mapped
# side). ``alt2`` finds heavy beards and darker faces under long hair that
# ``default`` misses (6 of the 8 misses on 120 procedural portraits, seeds 0-59 of each gender); on the
# 110 portraits both found, its box's side was 0.903 (sd 0.051) of default's, its centre 0.002 (sd 0.008)
# of a side to the right and its top 0.058 (sd 0.029) lower: mapped back, every box frames a face alike.
CASCADES = (("haarcascade_frontalface_default.xml", 1.0, 0.0), ("haarcascade_frontalface_alt2.xml", 1 / 0.903, 0.058))
COARSE_STEP, FINE_STEP = 1.1, 1.05  # scale factor between the cascades' search sizes


@lru_cache(maxsize=len(CASCADES))
def _cascade(name: str = CASCADES[0][0]):
    import cv2  # noqa: PLC0415

    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load its face cascade {path}")
    return cascade


def detect(image: np.ndarray) -> FaceBox | None:
    """The largest Haar detection in an RGB image, grown for the chin and squared; None if none."""
    import cv2  # noqa: PLC0415

    _check_image(image)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    scale = 1.0
    if max(h, w) > 640:  # detection at most 640 px wide: fast, and faces are large enough
        scale = 640.0 / max(h, w)
        grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(20, int(0.15 * min(grey.shape)))
    images = (grey, cv2.equalizeHist(grey))
    # the next cascade only where none before it found a face, and not on small frames (their fallback
    # is the whole frame, as the lip-sync network learnt its boxes)
    large = max(h, w) > SMALL_SIDE
    # then, on larger images, the same cascades again at finer steps of scale (FINE_STEP): slower, and
    # it finds low-contrast faces the coarse steps step over
    for step in (COARSE_STEP, FINE_STEP) if large else (COARSE_STEP,):
        for name, grow, lower in CASCADES if large else CASCADES[:1]:
            found = _largest(_cascade(name), images, min_side, step)
            if found is not None:
                x, y, bw, bh = (float(v) / scale for v in found)
                cx, bh = x + bw / 2, bh * grow  # in the first cascade's framing
                side = bh * (1.0 + CHIN)
                return _fit(cx - side / 2, y - lower * bh, side, w, h)
    return None


def _largest(cascade, images, min_side: int, step: float = COARSE_STEP):
    """The largest detection ``(x, y, w, h)`` on the first of ``images`` where the cascade finds any; None."""
    for img in images:
        found = cascade.detectMultiScale(img, scaleFactor=step, minNeighbors=3, minSize=(min_side, min_side))
        if len(found):
            return max(found, key=lambda r: r[2] * r[3])
    return None


def _fit(x0: float, y0: float, side: float, w: int, h: int) -> FaceBox:
    """A square of ``side`` at (x0, y0), moved (then shrunk) to lie inside a w x h image."""
    side = min(side, w, h)
    x0 = min(max(x0, 0.0), w - side)
    y0 = min(max(y0, 0.0), h - side)
    x0i, y0i, s = int(round(x0)), int(round(y0)), int(round(side))
    return FaceBox(x0i, y0i, min(w, x0i + s), min(h, y0i + s))


def face_box(image: np.ndarray, *, fallback: bool = True, at: int | None = None) -> FaceBox:
    """Detected face box, or the whole frame for a small non-flat image (see the module docstring).
    ``at``: found on the image brought down to that side (``scaled``)."""
    if at:
        return scaled(lambda small: face_box(small[0], fallback=fallback), image[None], at)
    box = detect(image)
    if box is not None:
        return box
    h, w = image.shape[:2]
    if fallback and max(h, w) <= SMALL_SIDE and float(image.mean(axis=2).std()) > FLAT_STD:
        logger.debug("no face detected in a %dx%d image: using the whole frame", w, h)
        return FaceBox.full(image)
    if float(image.std()) <= FLAT_STD:
        raise NoFaceError(f"no face in the {w}x{h} image: it is blank (flat colour)")
    raise NoFaceError(f"no face found in the {w}x{h} image (OpenCV frontal-face cascade); "
                      "use a frontal photo or drawing with the face clearly visible")


def clip_box(frames: np.ndarray, *, probes: int = 3, at: int | None = None) -> FaceBox:
    """One box for a clip ``uint8 [F, H, W, 3]``: the median of boxes on ``probes`` spread frames
    (``4 * probes``, then every frame, when none of those shows a face).

    Falls back to the whole frame for small frames (see the module docstring) when no probe finds a face.
    ``at``: found on the frames brought down to that side (``scaled``).
    """
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be uint8 [F, H, W, 3] with F >= 1, got {frames.shape}")
    if at:
        return scaled(lambda small: clip_box(small, probes=probes), frames, at)
    boxes: list[FaceBox] = []
    for count in (probes, 4 * probes, len(frames)):  # a few frames first; more (then all) when none shows a face
        picks = np.unique(np.linspace(0, len(frames) - 1, max(1, count)).round().astype(int))
        boxes = [b for b in (detect(frames[i]) for i in picks) if b is not None]
        if boxes or len(picks) >= len(frames):
            break
    if not boxes:
        return face_box(frames[len(frames) // 2])
    x0, y0, x1, y1 = np.median(np.array([[b.x0, b.y0, b.x1, b.y1] for b in boxes]), axis=0)
    h, w = frames.shape[1:3]
    return _fit(x0, y0, max(x1 - x0, y1 - y0), w, h)


def scaled(find, frames: np.ndarray, at: int) -> FaceBox:
    """The box ``find`` gives on uint8 ``[F, H, W, 3]`` frames area-downsampled to ``at`` px on their
    longer side, scaled back to theirs (frames no larger than ``at`` are searched as they are). So a
    clip drawn at 256 is cropped as its 64-pixel version is: where the lip-sync networks learnt the box,
    and where a drawn face the cascade misses at 256 still gets the small-frame fallback."""
    import cv2  # noqa: PLC0415

    h, w = frames.shape[1:3]
    if max(h, w) <= at:
        return find(frames)
    k = at / max(h, w)
    size = (max(16, round(w * k)), max(16, round(h * k)))
    b = find(np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]))
    kx, ky = w / size[0], h / size[1]
    x0, y0 = min(w - 1, int(round(b.x0 * kx))), min(h - 1, int(round(b.y0 * ky)))
    return FaceBox(x0, y0, min(w, max(x0 + 1, int(round(b.x1 * kx)))), min(h, max(y0 + 1, int(round(b.y1 * ky)))))


def crop(image: np.ndarray, box: FaceBox, size: int = CROP) -> np.ndarray:
    """The box resized to ``size x size``: uint8 ``[size, size, 3]``."""
    import cv2  # noqa: PLC0415

    region = image[box.y0:box.y1, box.x0:box.x1]
    interp = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


def crop_frames(frames: np.ndarray, box: FaceBox, size: int = CROP) -> np.ndarray:
    """``uint8 [F, H, W, 3] -> uint8 [F, size, size, 3]``."""
    return np.stack([crop(f, box, size) for f in frames]) if len(frames) else np.zeros((0, size, size, 3), np.uint8)


def mask_lower_half(faces):
    """Wav2Lip's generator input: the lower half of ``[..., C, H, W]`` set to 0 (a copy; torch or numpy)."""
    out = faces.clone() if hasattr(faces, "clone") else faces.copy()
    out[..., faces.shape[-2] // 2:, :] = 0
    return out


@lru_cache(maxsize=32)
def _centres(n: int) -> np.ndarray:
    """Pixel centres of a side of ``n`` pixels as shares of it."""
    return (np.arange(n) + 0.5) / n


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, smooth in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def paste_mask(height: int, width: int, feather: float = 0.12) -> np.ndarray:
    """Blend weights ``float32 [H, W]`` for pasting a generated face back: 0 above 40 % of the box
    height rising smoothly to 1 at 55 % (the generator only redraws the lower half), and fading over
    ``feather`` of the box at the left, right and bottom edges so no seam shows."""

    def ramp(n: int, start: float, end: float) -> np.ndarray:
        return _smoothstep((_centres(n) - start) / max(end - start, 1e-6))

    vert = ramp(height, 0.40, 0.55) * (1.0 - ramp(height, 1.0 - feather / 2, 1.0))
    horiz = ramp(width, 0.0, feather) * ramp(width, 0.0, feather)[::-1]
    return (vert[:, None] * horiz[None, :]).astype(np.float32)


SAME, OTHER = 8.0, 24.0  # 8-bit levels between a generated face and its input, both low-passed
LOW_PASS = 2.0  # sigma at the crop's 96 pixels: a softer redraw of an edge is not a change
GROW = 3  # crop pixels by which a changed region grows
# What the generator changed is pasted only around the mouth: an ellipse (half-height, half-width as
# shares of the crop's side; full inside 0.8 of its radius, faded to 0 at its edge) centred on where the
# changes inside ``MOUTH_BAND`` (rows, columns) weigh most: the mouth sits at ~0.55 of a whole-frame
# crop and at ~0.7 of a detector's box. A speck drawn in long hair by a cheek, or the collar at the
# crop's bottom edge redrawn lighter, keeps the frame's own pixels.
MOUTH_BAND = ((0.45, 0.85), (0.3, 0.7))
MOUTH_RADII = (0.3, 0.36)  # half-height, half-width (docs/lipsync.md: a smaller one cut some jaw motion)


def changed(face: np.ndarray, given: np.ndarray) -> np.ndarray:
    """float32 ``[S, S]`` in [0, 1]: where a generated face (uint8 ``[S, S, 3]``) shows something else
    than the crop it was given (a mouth opened, a jaw moved), not merely the same drawn softer:
    the largest channel difference of the two low-passed, 0 below ``SAME``, 1 above ``OTHER``,
    grown by ``GROW``, the mouth's regions only (``mouths_only``)."""
    import cv2  # noqa: PLC0415

    a = cv2.GaussianBlur(face.astype(np.float32), (0, 0), LOW_PASS)
    b = cv2.GaussianBlur(given.astype(np.float32), (0, 0), LOW_PASS)
    diff = np.abs(a - b).max(-1)
    mask = np.clip((diff - SAME) / (OTHER - SAME), 0.0, 1.0)
    mask = cv2.dilate(mask, np.ones((2 * GROW + 1, 2 * GROW + 1), np.uint8))
    return mouths_only(mask)


def weighted_centre(weight: np.ndarray, ys: np.ndarray, xs: np.ndarray, default: tuple[float, float]) -> tuple[float, float]:
    """The centre ``(row, column)`` of a non-negative ``[H, W]`` weight map whose rows sit at ``ys`` and
    columns at ``xs``; ``default`` when it weighs nothing."""
    total = float(weight.sum())
    if total <= 0:
        return default
    return float((weight.sum(1) * ys).sum() / total), float((weight.sum(0) * xs).sum() / total)


def mouths_only(mask: np.ndarray) -> np.ndarray:
    """``mask`` (float32 ``[S, S]``) weighted by an ellipse (``MOUTH_RADII``) around the centre of its
    changes inside ``MOUTH_BAND`` (the band's centre when nothing there changed)."""
    h, w = mask.shape
    (r0, r1), (c0, c1) = MOUTH_BAND
    rows, cols = slice(int(r0 * h), int(np.ceil(r1 * h))), slice(int(c0 * w), int(np.ceil(c1 * w)))
    y, x = _centres(h), _centres(w)
    cy, cx = weighted_centre(mask[rows, cols] ** 2, y[rows], x[cols], ((r0 + r1) / 2, (c0 + c1) / 2))
    ry, rx = MOUTH_RADII
    r = np.hypot((y - cy)[:, None] / ry, (x - cx)[None, :] / rx)
    return mask * _smoothstep((1.0 - r) / 0.2).astype(np.float32)


def paste_weights(face: np.ndarray, box: FaceBox, keep: np.ndarray | None = None) -> np.ndarray:
    """float32 ``[box.height, box.width]`` in [0, 1]: how much of each pixel of the box ``paste`` takes
    from the generated face (``keep``: as ``paste``'s)."""
    import cv2  # noqa: PLC0415

    alpha = paste_mask(box.height, box.width)
    if keep is not None:
        moved = cv2.resize(changed(face, keep), (box.width, box.height), interpolation=cv2.INTER_LINEAR)
        moved = cv2.GaussianBlur(moved, (0, 0), max(1.0, box.width / face.shape[1]))
        alpha = alpha * moved
    return alpha


def paste(image: np.ndarray, face: np.ndarray, box: FaceBox, *, keep: np.ndarray | None = None,
          alpha: np.ndarray | None = None) -> np.ndarray:
    """Blend a generated ``uint8 [S, S, 3]`` face into a copy of ``image`` at ``box`` (feathered).

    ``keep``: the crop the generator was given (uint8 ``[S, S, 3]``); then only where the generated
    face differs from it (the mouth, the jaw it moves) is pasted, and the image keeps its own pixels
    wherever the generator redrew what was there: for a box larger than the crop, whose lower half
    the 96-pixel face would otherwise soften (``changed``). ``alpha``: ``paste_weights(face, box, keep)``
    when the caller has it already."""
    import cv2  # noqa: PLC0415

    out = image.copy()
    patch = cv2.resize(face, (box.width, box.height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    a = (paste_weights(face, box, keep) if alpha is None else alpha)[..., None]
    region = out[box.y0:box.y1, box.x0:box.x1].astype(np.float32)
    out[box.y0:box.y1, box.x0:box.x1] = np.clip(region * (1 - a) + patch * a + 0.5, 0, 255).astype(np.uint8)
    return out
