"""Style images: a receiver-side gallery of id -> image file, plus images senders upload."""

from __future__ import annotations

import logging
import re
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from protocol import textcall_pb2 as pb
from protocol.codec import Code, ProtocolError

logger = logging.getLogger(__name__)

MAX_STYLE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Gallery:
    """Images in a folder, each addressed by its file stem (``anna.png`` -> ``anna``)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._images: dict[str, Path] = {}
        if folder is not None:
            if not folder.is_dir():
                raise ValueError(f"gallery folder {folder} does not exist")
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES and _ID.fullmatch(path.stem):
                    self._images[path.stem] = path
            logger.info("gallery %s: %d image(s)", folder, len(self._images))

    def ids(self) -> list[str]:
        return sorted(self._images)

    def get(self, image_id: str) -> Path | None:
        return self._images.get(image_id)


def image_dimensions(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from a PNG or JPEG header without decoding the pixels."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", width, height
            i += 2 + length
        raise ProtocolError("JPEG without a frame header", Code.BAD_IMAGE)
    raise ProtocolError("style image must be a PNG or JPEG file", Code.BAD_IMAGE)


def check_header(data: bytes, max_bytes: int, max_pixels: int = MAX_STYLE_PIXELS) -> tuple[str, int, int]:
    """Validate an uploaded image's size and header before anything decodes it: (kind, width, height)."""
    if len(data) > max_bytes:
        raise ProtocolError(f"style image of {len(data)} bytes exceeds {max_bytes}", Code.TOO_LARGE)
    kind, width, height = image_dimensions(data)
    if width < 1 or height < 1:
        raise ProtocolError(f"style image has no pixels ({width}x{height})", Code.BAD_IMAGE)
    if width * height > max_pixels:
        raise ProtocolError(
            f"style image of {width}x{height} pixels exceeds {max_pixels} pixels", Code.TOO_LARGE
        )
    return kind, width, height


def check_image(data: bytes, max_bytes: int, max_pixels: int = MAX_STYLE_PIXELS) -> str:
    """Validate an uploaded image (header first, then a full decode); returns its file suffix."""
    kind, _, _ = check_header(data, max_bytes, max_pixels)
    import cv2  # receiver extra
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ProtocolError(f"style image is not a readable {kind.upper()}", Code.BAD_IMAGE)
    return ".png" if kind == "png" else ".jpg"


@dataclass
class Upload:
    total_bytes: int
    chunk_count: int
    parts: list[bytes] = field(default_factory=list)


MAX_PARTIAL_UPLOADS = 4  # unfinished style images a session may hold at once
MAX_STORED_IMAGES = 64  # finished style images one session keeps (a new one with a known id replaces it)
MAX_PARTIAL_BYTES = 64 * 1024 * 1024  # announced bytes of unfinished uploads, all sessions together
MAX_SENDER_BYTES = 256 * 1024 * 1024  # style images one sender keeps on disk, all its sessions together


class UploadBudget:
    """What every session's uploads may hold together, this receiver run: the announced bytes of
    unfinished uploads (memory), and per sender the bytes of the style images stored (disk)."""

    def __init__(self, max_partial_bytes: int = MAX_PARTIAL_BYTES, max_sender_bytes: int = MAX_SENDER_BYTES) -> None:
        self.max_partial_bytes = max_partial_bytes
        self.max_sender_bytes = max_sender_bytes
        self.partial_bytes = 0
        self.stored: dict[str, int] = {}
        self._lock = threading.Lock()  # stores run on worker threads

    def reserve(self, n: int) -> bool:
        with self._lock:
            if self.partial_bytes + n > self.max_partial_bytes:
                return False
            self.partial_bytes += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.partial_bytes = max(0, self.partial_bytes - n)

    def store(self, sender: str, replaced: int, added: int) -> bool:
        """Count a stored file of ``added`` bytes (replacing one of ``replaced``); False when over."""
        with self._lock:
            total = self.stored.get(sender, 0) - replaced + added
            if total > self.max_sender_bytes:
                return False
            self.stored[sender] = total
            return True


class Uploads:
    """Style images one session's sender uploads, assembled from in-order chunks and stored under
    ``folder``. Bounded: an upload announcing more than ``max_bytes`` is refused at its first chunk,
    at most ``max_partial`` are unfinished at a time (so a session holds at most ``max_partial *
    max_bytes`` in memory), and at most ``max_stored`` finished ones are kept on disk (at most
    ``max_stored * max_bytes`` bytes)."""

    def __init__(self, folder: Path, max_bytes: int, *, max_partial: int = MAX_PARTIAL_UPLOADS,
                 max_stored: int = MAX_STORED_IMAGES, budget: UploadBudget | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_partial = max_partial
        self.max_stored = max_stored
        self.budget = budget if budget is not None else UploadBudget()
        self.sender = ""  # whose uploads (set at the session's Hello): the disk budget is per sender
        self._partial: dict[str, Upload] = {}
        self._done: dict[str, Path] = {}

    def drop(self, image_id: str) -> None:
        """Forget an unfinished upload (its budget share with it)."""
        upload = self._partial.pop(image_id, None)
        if upload is not None:
            self.budget.release(upload.total_bytes)

    def close(self) -> None:
        """The session ended: its unfinished uploads go, and their share of the budget."""
        for image_id in list(self._partial):
            self.drop(image_id)

    def get(self, image_id: str) -> Path | None:
        return self._done.get(image_id)

    def add(self, chunk: pb.StyleImage) -> Path | None:
        """Take one chunk; returns the stored file once the last chunk arrived (``assemble``, then
        ``store``, in the caller's thread)."""
        data = self.assemble(chunk)
        return None if data is None else self.store(chunk.id, data)

    def assemble(self, chunk: pb.StyleImage) -> bytes | None:
        """Take one chunk; returns the whole file's bytes once the last chunk arrived, checked as far as
        its header goes (format, size, pixel count: cheap). ``store`` decodes and keeps it; the
        receiver runs that off its event loop."""
        upload = self._partial.get(chunk.id)
        if chunk.chunk_index == 0:
            self.drop(chunk.id)  # a restart of the same id drops what came before
            if chunk.total_bytes > self.max_bytes:
                raise ProtocolError(f"style image {chunk.id!r} of {chunk.total_bytes} bytes exceeds {self.max_bytes}", Code.TOO_LARGE)
            if len(self._partial) >= self.max_partial:
                raise ProtocolError(f"style image {chunk.id!r}: {len(self._partial)} uploads are unfinished, the most a session "
                                    "may hold; finish one first", Code.TOO_LARGE)
            if chunk.id not in self._done and len(self._done) >= self.max_stored:
                raise ProtocolError(f"style image {chunk.id!r}: this session keeps {self.max_stored} style images, the most "
                                    "it may; reuse an id to replace one", Code.TOO_LARGE)
            if not self.budget.reserve(chunk.total_bytes):
                raise ProtocolError(f"style image {chunk.id!r}: the receiver holds {self.budget.partial_bytes >> 20} MiB of "
                                    "unfinished uploads from all its senders, its most; send it again later", Code.RATE_LIMITED)
            upload = self._partial[chunk.id] = Upload(chunk.total_bytes, chunk.chunk_count)
        if upload is None or chunk.chunk_index != len(upload.parts):
            self.drop(chunk.id)
            raise ProtocolError(f"style image {chunk.id!r}: chunk {chunk.chunk_index} out of order")
        if (upload.total_bytes, upload.chunk_count) != (chunk.total_bytes, chunk.chunk_count):
            self.drop(chunk.id)
            raise ProtocolError(f"style image {chunk.id!r}: chunk sizes disagree")
        upload.parts.append(chunk.data)
        received = sum(len(part) for part in upload.parts)
        if received > upload.total_bytes:
            self.drop(chunk.id)
            raise ProtocolError(f"style image {chunk.id!r}: more bytes than announced", Code.TOO_LARGE)
        if len(upload.parts) < upload.chunk_count:
            return None
        self.drop(chunk.id)
        data = b"".join(upload.parts)
        if len(data) != upload.total_bytes:
            raise ProtocolError(f"style image {chunk.id!r}: {len(data)} of {upload.total_bytes} bytes")
        check_header(data, self.max_bytes)
        return data

    def store(self, image_id: str, data: bytes) -> Path:
        """Decode ``data`` (the expensive check: up to the pixel limit) and keep it as ``image_id``."""
        suffix = check_image(data, self.max_bytes)
        old = self._done.get(image_id)
        replaced = old.stat().st_size if old is not None and old.exists() else 0
        if not self.budget.store(self.sender, replaced, len(data)):
            raise ProtocolError(f"style image {image_id!r}: sender {self.sender!r} keeps "
                                f"{self.budget.stored.get(self.sender, 0) >> 20} MiB of style images on this receiver, "
                                f"its most ({self.budget.max_sender_bytes >> 20} MiB); reuse an id to replace one", Code.TOO_LARGE)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{image_id}{suffix}"
        if old is not None and old != path:
            old.unlink(missing_ok=True)  # the same id in another format
        path.write_bytes(data)
        self._done[image_id] = path
        return path
