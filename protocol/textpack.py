"""Caption and speech text as raw DEFLATE with a shared preset dictionary (``Utterance.packed``),
or coded by a PPM model primed with the same dictionary and the connection's history (:data:`PPM`).

A short sentence compresses poorly on its own: DEFLATE has nothing earlier to point back at. Both
sides therefore prime the compressor with the same preset dictionary of common English words
(``protocol/dictionaries/en-<version>.txt``, frozen once published: its SHA-256 is pinned below and
checked when it is loaded). Raw DEFLATE (no zlib header or checksum) saves six bytes a message; the
SCTP/DTLS layers below already protect integrity.

Inflating is the dangerous direction (a few bytes can expand to megabytes), so :func:`unpack`
stops at a fixed output cap and refuses anything longer.
"""

from __future__ import annotations

import hashlib
import zlib
from functools import lru_cache
from importlib import resources

from protocol import ppm

SEPARATOR = "\x1f"  # ASCII unit separator: a control character, so never inside a valid caption/text

# version -> SHA-256 of the dictionary file; a published version never changes
DICTIONARIES = {
    1: "7b966376e8dd6d87c3bf34cb6336564dc72fc28b216563ef3010f877cfef8f5d",
}
LATEST = max(DICTIONARIES)
# Utterance.dictionary = STREAM + version: primed with the dictionary and then with every earlier text of
# this connection (``History``), so a later sentence points back at what the call already said.
STREAM = 100
WINDOW = 32 * 1024  # DEFLATE looks back at most this far
# Utterance.dictionary = PPM + version: arithmetic-coded by a PPM model (protocol/ppm.py) that learnt the
# dictionary and then every earlier text of this connection (about 24 % fewer bytes than STREAM on a
# call's batches). Both wire numbers stay below 128: one byte of varint.
PPM = 120


class PackError(ValueError):
    """``packed`` bytes that cannot be (or must not be) inflated."""


def capability(version: int = LATEST) -> str:
    """The Welcome capability that announces support for one dictionary version."""
    return f"deflate-{version}"


def stream_capability(version: int = LATEST) -> str:
    """The Welcome capability for ``STREAM + version``: the dictionary plus the connection's history."""
    return f"deflate-stream-{version}"


def ppm_capability(version: int = LATEST) -> str:
    """The Welcome capability for ``PPM + version``: a PPM model of the dictionary and the history."""
    return f"ppm-stream-{version}"


class History:
    """One connection's texts so far, in the order the sender packed them and the receiver decoded
    them (the data channel is ordered and reliable, so both sides hold the same bytes). The last
    ``WINDOW`` bytes prime the next message's compressor after the preset dictionary.

    ``ppm=True`` (the sender's side, when the receiver announced :func:`ppm_capability`) packs with
    :data:`PPM`. A PPM model is built the first time a version is used (the dictionary, then
    ``data``) and then learns every added text, on both sides in the same order."""

    def __init__(self, ppm: bool = False) -> None:
        self.data = b""
        self.ppm = ppm
        self._models: dict[int, ppm.Model] = {}
        self._texts: list[bytes] = []  # the latest texts (at most WINDOW bytes), for a model built later
        self._held = 0

    def add(self, caption: str, text: str) -> None:
        if caption or text:
            self.data = (self.data + f"{caption}{SEPARATOR}{text}\n".encode("utf-8"))[-WINDOW:]
            # a text is added before it is validated (codec.decode): a control character that would end
            # a PPM message is left out here, alike on both sides, and the text is refused after
            message = _message(caption, text).replace(bytes((ppm.END,)), b"")
            for model in self._models.values():
                model.learn(message)
            self._texts.append(message)
            self._held += len(message)
            while self._held > WINDOW:
                self._held -= len(self._texts.pop(0))

    def model(self, version: int) -> ppm.Model:
        """The PPM model of dictionary ``version`` and this connection's texts so far."""
        model = self._models.get(version)
        if model is None:
            model = self._models[version] = _primed(version).copy()
            for message in self._texts:  # texts added before the first PPM message
                model.learn(message)
        return model


def _message(caption: str, text: str) -> bytes:
    return f"{caption}{SEPARATOR}{text}".encode("utf-8")


@lru_cache(maxsize=None)
def _primed(version: int) -> ppm.Model:
    """A PPM model that learnt dictionary ``version`` (copied for each connection; 0.2 s to build)."""
    model = ppm.Model()
    model.prime(dictionary(version) + b" ")
    return model


def _zdict(version: int, history: bytes) -> bytes:
    return (dictionary(version) + history)[-WINDOW:]


def _tag(history: bytes) -> bytes:
    """Two bytes of CRC-32 over the history a message was packed against: a receiver whose history
    differs (it would inflate other text without any error) refuses the message instead."""
    return (zlib.crc32(history) & 0xFFFF).to_bytes(2, "big")


@lru_cache(maxsize=None)
def dictionary(version: int) -> bytes:
    if version not in DICTIONARIES:
        raise PackError(f"unknown preset dictionary {version} (known: {sorted(DICTIONARIES)})")
    data = resources.files("protocol").joinpath("dictionaries", f"en-{version}.txt").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DICTIONARIES[version]:
        raise PackError(f"preset dictionary {version} is corrupt (sha256 {digest[:12]}...)")
    return data


def pack(caption: str, text: str, version: int = LATEST, history: bytes | None = None) -> bytes:
    """Raw DEFLATE of ``caption + SEPARATOR + text`` primed with dictionary ``version`` (and then
    ``history``, a connection's earlier texts: ``History.data``)."""
    if SEPARATOR in caption or SEPARATOR in text:
        raise PackError("caption and text may not contain the unit separator U+001F")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _zdict(version, history or b""))
    raw = f"{caption}{SEPARATOR}{text}".encode("utf-8")
    return (b"" if history is None else _tag(history)) + compressor.compress(raw) + compressor.flush()


def pack_ppm(caption: str, text: str, version: int, history: History) -> bytes:
    """``caption + SEPARATOR + text`` coded by ``history``'s PPM model of dictionary ``version``,
    after the two-byte tag of the history (as :func:`pack`). The model learns the text only when
    it is added to the history."""
    if SEPARATOR in caption or SEPARATOR in text:
        raise PackError("caption and text may not contain the unit separator U+001F")
    if chr(ppm.END) in caption or chr(ppm.END) in text:
        raise PackError("caption and text may not contain the record separator U+001E")
    return _tag(history.data) + history.model(version).encode(_message(caption, text))


def unpack_ppm(data: bytes, version: int, *, max_bytes: int, history: History) -> tuple[str, str]:
    """(caption, text) from ``packed`` coded by :func:`pack_ppm`; refuses a history that differs,
    output over ``max_bytes``, corrupt data, bad UTF-8, and a missing separator."""
    if len(data) < 2:
        raise PackError("packed is empty")
    if data[:2] != _tag(history.data):
        raise PackError("packed against another history of this connection's texts than the receiver's")
    try:
        raw = history.model(version).decode(data[2:], max_bytes)
    except ppm.DecodeError as exc:
        raise PackError(str(exc)) from None
    return _split(raw)


def unpack(data: bytes, version: int, *, max_bytes: int, history: bytes | None = None) -> tuple[str, str]:
    """(caption, text) from ``packed``; refuses output over ``max_bytes`` (decompression bombs),
    truncated or trailing data, bad UTF-8, and a missing separator."""
    if not data:
        raise PackError("packed is empty")
    if history is not None:  # packed against a connection's history: its tag first
        if data[:2] != _tag(history):
            raise PackError("packed against another history of this connection's texts than the receiver's")
        data = data[2:]
    inflater = zlib.decompressobj(-15, zdict=_zdict(version, history or b""))
    try:
        raw = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise PackError(f"packed is not valid DEFLATE: {exc}") from None
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise PackError(f"packed inflates to more than {max_bytes} bytes")
    if not inflater.eof:
        raise PackError("packed DEFLATE stream is truncated")
    if inflater.unused_data:
        raise PackError("packed has bytes after the end of its DEFLATE stream")
    return _split(raw)


def _split(raw: bytes) -> tuple[str, str]:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PackError("packed does not inflate to UTF-8 text") from None
    caption, sep, text = decoded.partition(SEPARATOR)
    if not sep:
        raise PackError("packed text lacks the caption separator")
    return caption, text
