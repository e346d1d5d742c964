"""Static style images (paper IV-E): decode with limits, a receiver-side gallery, and the 64x64 frame.

A sender picks a gallery id or uploads its own image once; the receiver turns it into a face it can
drive with speech (``LipSync.animate``). Every way this can go wrong is a :class:`StyleImageError`
naming the problem (a subclass of ``ValueError``; a missing face is ``face.NoFaceError``):

* more than ``max_bytes`` bytes, or not an image Pillow can read (PNG, JPEG, WebP, BMP, ...);
* more than ``max_pixels`` pixels (checked from the header, before anything is decoded);
* an unknown gallery id.

``style_frame`` crops the face the way the corpus does (a square 1.25 times the detected box,
lowered by a tenth so the chin is in) and resizes it, so a style image looks like the generated
64x64 talking heads.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.lipsync.face import NoFaceError, detect, face_box

logger = logging.getLogger(__name__)

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

__all__ = ["StyleImageError", "NoFaceError", "decode_image", "Gallery", "style_frame"]


class StyleImageError(ValueError):
    """A style image that cannot be used (not an image, too large, unknown id)."""


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes -> uint8 ``[H, W, 3]`` RGB (EXIF rotation applied, alpha over white)."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: PLC0415

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StyleImageError(f"style image must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise StyleImageError("style image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise StyleImageError(f"style image of {len(data):,} bytes is larger than the {max_bytes:,} allowed")
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            w, h = img.size  # header only: nothing decoded yet
            if w * h > max_pixels:
                raise StyleImageError(f"style image of {w}x{h} pixels is larger than the {max_pixels:,} pixels allowed")
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img)
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except StyleImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise StyleImageError(f"style image is not a readable image ({exc})") from exc
    if min(rgb.shape[:2]) < 16:
        raise StyleImageError(f"style image of {rgb.shape[1]}x{rgb.shape[0]} pixels is too small for a face")
    return np.ascontiguousarray(rgb)


def read_image(path: str | Path, **limits) -> np.ndarray:
    path = Path(path).expanduser()
    if not path.is_file():
        raise StyleImageError(f"{path}: no such image file")
    size = path.stat().st_size
    if size > limits.get("max_bytes", MAX_BYTES):
        raise StyleImageError(f"{path}: {size:,} bytes is larger than the {limits.get('max_bytes', MAX_BYTES):,} allowed")
    return decode_image(path.read_bytes(), **limits)


@dataclass(frozen=True)
class Gallery:
    """A receiver-side folder of style images; the id of ``alice.png`` is ``alice``."""

    folder: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder).expanduser())

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())

    def path(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or "\\" in image_id or image_id.startswith("."):
            raise StyleImageError(f"bad gallery id {image_id!r}")
        for p in sorted(self.folder.glob(f"{image_id}.*")) if self.folder.is_dir() else []:
            if p.suffix.lower() in EXTENSIONS and p.is_file():
                return p
        known = ", ".join(self.ids()[:20]) or "none"
        raise StyleImageError(f"no style image {image_id!r} in the gallery {self.folder} (known: {known})")

    def load(self, image_id: str, **limits) -> np.ndarray:
        return read_image(self.path(image_id), **limits)


def style_frame(image: np.ndarray, size: int = 64) -> np.ndarray:
    """The face of a style image framed like the corpus (1.25 x box, lowered a tenth), ``size x size``.

    Raises :class:`NoFaceError` when the image holds no face (small non-flat images are taken
    whole, as ``face.face_box`` does).
    """
    import cv2  # noqa: PLC0415

    if size < 16:
        raise ValueError("size must be at least 16 pixels")
    box = detect(image)
    if box is None:
        box = face_box(image)  # the small-image fallback, or NoFaceError
        region = image[box.y0:box.y1, box.x0:box.x1]
    else:
        # undo the chin growth of face.detect: the corpus frames the raw cascade box
        raw = box.height / 1.15
        cx, cy, side = (box.x0 + box.x1) / 2, box.y0 + raw / 2 + 0.1 * raw, 1.25 * raw
        half = side / 2
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        x1, y1 = x0 + int(round(side)), y0 + int(round(side))
        pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        region = padded[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    interp = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=interp)
