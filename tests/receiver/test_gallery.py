from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from protocol import codec
from protocol.codec import Code, ProtocolError
from receiver.gallery import Gallery, Uploads, check_image, image_dimensions


def _png(width, height) -> bytes:
    ok, data = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    return data.tobytes()


def _png_header_only(width, height) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_dimensions_from_headers():
    assert image_dimensions(_png(40, 30)) == ("png", 40, 30)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))
    assert image_dimensions(jpeg.tobytes()) == ("jpeg", 40, 30)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ProtocolError) as info:
        check_image(_png_header_only(100_000, 100_000), max_bytes=1 << 20)
    assert info.value.code == Code.TOO_LARGE


@pytest.mark.parametrize("data", [b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"\xff\xd8\xff"])
def test_not_an_image(data):
    with pytest.raises(ProtocolError) as info:
        check_image(data, max_bytes=1 << 20)
    assert info.value.code == Code.BAD_IMAGE


def test_uploads_assemble_in_order(tmp_path):
    data = _png(300, 300) + b""  # a few KB
    uploads = Uploads(tmp_path, max_bytes=1 << 20)
    chunks = codec.style_image_chunks("me", data)
    for chunk in chunks[:-1]:
        assert uploads.add(chunk.style_image) is None
    path = uploads.add(chunks[-1].style_image)
    assert path is not None and path.read_bytes() == data and uploads.get("me") == path


def test_gallery_maps_stems(tmp_path):
    (tmp_path / "anna.png").write_bytes(_png(8, 8))
    (tmp_path / "notes.txt").write_text("x")
    gallery = Gallery(tmp_path)
    assert gallery.ids() == ["anna"] and gallery.get("anna") == tmp_path / "anna.png"
    with pytest.raises(ValueError):
        Gallery(tmp_path / "missing")


def _chunks(image_id: str, data: bytes, size: int):
    from protocol import textcall_pb2 as pb

    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [pb.StyleImage(id=image_id, chunk_index=k, chunk_count=len(pieces), total_bytes=len(data), data=p)
            for k, p in enumerate(pieces)]


def test_uploads_are_bounded_in_number_size_and_storage(tmp_path):
    """A peer cannot make the receiver hold unbounded unfinished uploads, nor keep unbounded files."""
    data = _png(64, 64)
    uploads = Uploads(tmp_path, max_bytes=1 << 16, max_partial=2, max_stored=3)
    first = {k: _chunks(k, data, len(data) // 3 + 1) for k in ("a", "b", "c")}
    assert uploads.add(first["a"][0]) is None and uploads.add(first["b"][0]) is None
    with pytest.raises(ProtocolError, match="unfinished") as info:
        uploads.add(first["c"][0])  # a third unfinished one
    assert info.value.code == Code.TOO_LARGE
    assert uploads.add(first["a"][0]) is None  # restarting an id does not count twice
    big = _chunks("big", b"\x89PNG" + b"0" * (1 << 17), 1 << 14)
    with pytest.raises(ProtocolError, match="exceeds"):  # refused at its first chunk, nothing buffered
        uploads.add(big[0])
    stored = Uploads(tmp_path / "s", max_bytes=1 << 16, max_stored=2)
    for k in ("x", "y"):
        assert stored.add(_chunks(k, data, len(data))[0]) is not None
    with pytest.raises(ProtocolError, match="keeps 2"):
        stored.add(_chunks("z", data, len(data))[0])
    assert stored.add(_chunks("x", data, len(data))[0]) is not None  # replacing one is fine


def test_all_sessions_together_are_bounded_in_memory_and_each_sender_on_disk(tmp_path):
    """Issue 28: unfinished uploads bounded across sessions (memory), stored ones per sender across its
    sessions (disk); a closed session's unfinished uploads give their share back."""
    from receiver.gallery import UploadBudget

    data = _png(64, 64)
    budget = UploadBudget(max_partial_bytes=2 * len(data), max_sender_bytes=3 * len(data))
    one, two = (Uploads(tmp_path / n, max_bytes=1 << 16, budget=budget) for n in ("one", "two"))
    one.sender = two.sender = "anna"
    halves = {k: _chunks(k, data, len(data) // 2 + 1) for k in ("a", "b", "c")}
    assert one.add(halves["a"][0]) is None and two.add(halves["b"][0]) is None
    with pytest.raises(ProtocolError, match="all its senders") as info:
        two.add(halves["c"][0])  # a third unfinished upload, in either session: over the shared budget
    assert info.value.code == Code.RATE_LIMITED and budget.partial_bytes == 2 * len(data)
    one.close()  # the session ends: its unfinished upload goes
    assert budget.partial_bytes == len(data)
    assert two.add(halves["c"][0]) is None
    two.add(halves["b"][1])  # finished: its share of memory is given back, its bytes count on disk
    assert budget.partial_bytes == len(data) and budget.stored == {"anna": len(data)}
    two.drop("c")
    assert budget.partial_bytes == 0
    three = Uploads(tmp_path / "three", max_bytes=1 << 16, budget=budget)  # a later session of anna's
    three.sender = "anna"
    for k in ("x", "y"):
        three.add(_chunks(k, data, len(data))[0])
    with pytest.raises(ProtocolError, match="'anna' keeps") as info:
        three.add(_chunks("z", data, len(data))[0])  # a fourth file of this sender's, across sessions
    assert info.value.code == Code.TOO_LARGE and not (tmp_path / "three" / "z.png").exists()
    three.add(_chunks("x", data, len(data))[0])  # replacing one of its own is fine
    assert budget.stored == {"anna": 3 * len(data)}
    other = Uploads(tmp_path / "other", max_bytes=1 << 16, budget=budget)
    other.sender = "ben"  # another sender has its own allowance
    assert other.add(_chunks("z", data, len(data))[0]) is not None
