"""The one place where bytes become trusted messages, and messages become bytes.

Everything the network hands us goes through :func:`decode`; anything that is not a well-formed,
in-limits ``textcall.v1.Envelope`` raises :class:`ProtocolError` carrying the ``Error.Code`` that the
peer should be told. Builders (``utterance()``, ``ack()``, ...) make envelopes that already satisfy
the same checks, so both sides speak the same dialect.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from protocol import textcall_pb2 as pb
from protocol import textpack

PROTOCOL_VERSION = 1
CHANNEL_LABEL = "textcall"

Code = pb.Error.Code
SECRET_BYTES = (16, 64)  # Hello.secret: the sender's proof of its id (see textcall.proto)
Outcome = pb.Ack.Outcome

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# C0 controls other than tab/newline, DEL, and C1 controls: never meaningful in a caption or speech.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts. The sender uses the same numbers to refuse early."""

    max_frame_bytes: int = 48 * 1024
    max_caption_chars: int = 200
    max_text_chars: int = 10_000
    max_style_image_bytes: int = 4 * 1024 * 1024
    max_style_chunk_bytes: int = 32 * 1024
    max_capabilities: int = 16

    def __post_init__(self) -> None:
        if self.max_style_chunk_bytes + 1024 > self.max_frame_bytes:
            raise ValueError("a style-image chunk with its envelope must fit in one frame")
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


DEFAULT_LIMITS = Limits()


class ProtocolError(Exception):
    """A frame or message that cannot be trusted. ``code`` is what the peer is told."""

    def __init__(self, reason: str, code: int = Code.BAD_MESSAGE, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.seq = seq


def decode(frame: bytes | str, limits: Limits = DEFAULT_LIMITS, *,
           history: textpack.History | None = None) -> pb.Envelope:
    """Parse and validate one data-channel frame. ``history``: the connection's texts so far (a
    receiver keeps one per session); each utterance's text is added to it, and text packed against
    it (``textpack.STREAM``) is unpacked with it."""
    if not isinstance(frame, bytes):
        raise ProtocolError("text frame on a binary channel: send serialized Envelopes", Code.BAD_FRAME)
    if len(frame) > limits.max_frame_bytes:
        raise ProtocolError(
            f"frame of {len(frame)} bytes exceeds {limits.max_frame_bytes}", Code.TOO_LARGE
        )
    envelope = pb.Envelope()
    try:
        envelope.ParseFromString(frame)
    except DecodeError as exc:
        raise ProtocolError("malformed protobuf: not a textcall.v1.Envelope", Code.BAD_FRAME) from exc
    if envelope.WhichOneof("body") == "utterance":
        if envelope.utterance.packed:
            _expand(envelope.utterance, limits, history)
        if history is not None:
            history.add(envelope.utterance.caption, envelope.utterance.text)
    validate(envelope, limits)
    return envelope


def _inflate(msg: pb.Utterance, limits: Limits, history: textpack.History | None = None) -> tuple[str, str]:
    seq = msg.seq or None
    if msg.caption or msg.text:
        raise ProtocolError("an utterance with packed text must leave caption and text empty", seq=seq)
    coded = msg.dictionary >= textpack.PPM
    streamed = msg.dictionary >= textpack.STREAM
    version = msg.dictionary - (textpack.PPM if coded else textpack.STREAM if streamed else 0)
    if version not in textpack.DICTIONARIES:
        raise ProtocolError(f"unknown text dictionary {msg.dictionary}", Code.BAD_MESSAGE, seq)
    if streamed and history is None:
        raise ProtocolError("text packed against the connection's history needs a session", Code.BAD_MESSAGE, seq)
    cap = 4 * (limits.max_caption_chars + limits.max_text_chars) + 1  # UTF-8: at most 4 bytes a char
    try:
        if coded:
            return textpack.unpack_ppm(msg.packed, version, max_bytes=cap, history=history)
        return textpack.unpack(msg.packed, version, max_bytes=cap, history=history.data if streamed else None)
    except textpack.PackError as exc:
        code = Code.TOO_LARGE if "more than" in str(exc) else Code.BAD_MESSAGE
        raise ProtocolError(str(exc), code, seq) from None


def _expand(msg: pb.Utterance, limits: Limits, history: textpack.History | None = None) -> None:
    """Replace ``packed`` by the caption and text it holds, so the rest of the receiver sees a
    plain utterance."""
    caption, text = _inflate(msg, limits, history)
    msg.ClearField("packed")
    msg.ClearField("dictionary")
    msg.caption, msg.text = caption, text


def encode(envelope: pb.Envelope, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Serialize an envelope after checking it as the receiving side will."""
    validate(envelope, limits)
    return envelope.SerializeToString()


def validate(envelope: pb.Envelope, limits: Limits = DEFAULT_LIMITS) -> None:
    kind = envelope.WhichOneof("body")
    if kind is None:
        raise ProtocolError(
            "envelope carries no known message (empty, or a body from a newer protocol)",
            Code.BAD_MESSAGE,
        )
    check = _CHECKS.get(kind)
    if check is not None:
        check(getattr(envelope, kind), limits)


def _check_id(value: str, what: str) -> None:
    if not _ID.fullmatch(value):
        raise ProtocolError(f"{what} {value[:80]!r} must be 1-64 of [A-Za-z0-9_.-]", Code.BAD_MESSAGE)


def _check_text(value: str, what: str, max_chars: int, seq: int | None) -> None:
    if not value:
        return  # unset: that input mode is simply absent
    if len(value) > max_chars:
        raise ProtocolError(
            f"{what} of {len(value)} characters exceeds {max_chars}", Code.TOO_LARGE, seq
        )
    if not value.strip():
        raise ProtocolError(
            f"{what} is set but blank; leave it unset to use the mode without it",
            Code.EMPTY_FIELD,
            seq,
        )
    if _CONTROL.search(value):
        raise ProtocolError(f"{what} contains control characters", Code.BAD_MESSAGE, seq)


def _check_hello(msg: pb.Hello, limits: Limits) -> None:
    if not msg.sender_id:
        raise ProtocolError("Hello.sender_id is required", Code.EMPTY_FIELD)
    _check_id(msg.sender_id, "sender id")
    if msg.protocol_version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {msg.protocol_version} is not supported (this side speaks "
            f"{PROTOCOL_VERSION})",
            Code.UNSUPPORTED_VERSION,
        )
    if len(msg.capabilities) > limits.max_capabilities:
        raise ProtocolError("too many capabilities", Code.TOO_LARGE)
    for capability in msg.capabilities:
        _check_id(capability, "capability")
    if msg.secret and not SECRET_BYTES[0] <= len(msg.secret) <= SECRET_BYTES[1]:
        raise ProtocolError(f"Hello.secret must be {SECRET_BYTES[0]}-{SECRET_BYTES[1]} bytes, got {len(msg.secret)}",
                            Code.BAD_MESSAGE)


def _check_welcome(msg: pb.Welcome, limits: Limits) -> None:
    _check_id(msg.session_id, "session id")
    if msg.window < 1:
        raise ProtocolError("Welcome.window must be at least 1")
    if len(msg.capabilities) > limits.max_capabilities:
        raise ProtocolError("too many capabilities", Code.TOO_LARGE)
    for capability in msg.capabilities:
        _check_id(capability, "capability")


def _check_utterance(msg: pb.Utterance, limits: Limits) -> None:
    if msg.seq < 1:
        raise ProtocolError("Utterance.seq must be 1 or more", Code.BAD_MESSAGE)
    seq = msg.seq
    if msg.packed and msg.dictionary >= textpack.STREAM:  # sending: its plain text was checked when packed
        caption, text = "", ""
    else:  # (a receiver's decode unpacks it with the session's history before this check)
        caption, text = _inflate(msg, limits) if msg.packed else (msg.caption, msg.text)
    if msg.dictionary and not msg.packed:
        raise ProtocolError("Utterance.dictionary is set without packed text", Code.BAD_MESSAGE, seq)
    _check_text(caption, "caption", limits.max_caption_chars, seq)
    _check_text(text, "speech text", limits.max_text_chars, seq)
    if msg.style_image_id:
        try:
            _check_id(msg.style_image_id, "style image id")
        except ProtocolError as exc:
            raise ProtocolError(exc.reason, exc.code, seq) from None


def _check_ack(msg: pb.Ack, limits: Limits) -> None:
    if msg.seq < 1:
        raise ProtocolError("Ack.seq must be 1 or more")
    if msg.outcome == Outcome.OUTCOME_UNSPECIFIED:
        raise ProtocolError("Ack.outcome is required")
    if msg.first_seq and (msg.outcome != Outcome.RENDERED or not 1 <= msg.first_seq <= msg.seq
                          or msg.seq - msg.first_seq >= MAX_ACK_RANGE):
        raise ProtocolError(f"Ack.first_seq must be 1..seq, at most {MAX_ACK_RANGE} apart, and only with RENDERED")


def _check_error(msg: pb.Error, limits: Limits) -> None:
    if len(msg.reason) > 1000:
        raise ProtocolError("Error.reason is too long", Code.TOO_LARGE)


def _check_style_image(msg: pb.StyleImage, limits: Limits) -> None:
    _check_id(msg.id, "style image id")
    if msg.total_bytes < 1 or msg.total_bytes > limits.max_style_image_bytes:
        raise ProtocolError(
            f"style image of {msg.total_bytes} bytes is outside 1..{limits.max_style_image_bytes}",
            Code.TOO_LARGE,
        )
    if msg.chunk_count < 1 or msg.chunk_index >= msg.chunk_count:
        raise ProtocolError("StyleImage chunk index/count are inconsistent")
    if not msg.data or len(msg.data) > limits.max_style_chunk_bytes:
        raise ProtocolError(
            f"StyleImage chunk must hold 1..{limits.max_style_chunk_bytes} bytes", Code.TOO_LARGE
        )


def _check_bye(msg: pb.Bye, limits: Limits) -> None:
    if len(msg.reason) > 1000:
        raise ProtocolError("Bye.reason is too long", Code.TOO_LARGE)


_CHECKS = {
    "hello": _check_hello,
    "welcome": _check_welcome,
    "utterance": _check_utterance,
    "ack": _check_ack,
    "error": _check_error,
    "style_image": _check_style_image,
    "bye": _check_bye,
}


# ---------------------------------------------------------------------------------------- builders


def now_ms() -> int:
    return int(time.time() * 1000)


def hello(sender_id: str, capabilities: tuple[str, ...] = (), secret: bytes = b"") -> pb.Envelope:
    return pb.Envelope(
        hello=pb.Hello(
            sender_id=sender_id, protocol_version=PROTOCOL_VERSION, capabilities=list(capabilities), secret=secret
        )
    )


def welcome(session_id: str, *, last_rendered_seq: int, window: int, model: str, limits: Limits = DEFAULT_LIMITS,
            capabilities: tuple[str, ...] = ()) -> pb.Envelope:
    return pb.Envelope(welcome=pb.Welcome(
        session_id=session_id, protocol_version=PROTOCOL_VERSION, last_rendered_seq=last_rendered_seq, window=window,
        max_text_chars=limits.max_text_chars, max_style_image_bytes=limits.max_style_image_bytes, model=model,
        capabilities=list(capabilities)))


def utterance(
    seq: int,
    *,
    caption: str = "",
    text: str = "",
    style_image_id: str = "",
    sent_unix_ms: int = 0,
    dictionary: int = 0,
    history: textpack.History | None = None,
    timestamp: bool = True,
) -> pb.Envelope:
    """An utterance; with ``dictionary`` (a version the receiver announced as ``deflate-N``),
    caption and text travel compressed in ``packed`` when that is smaller. With ``history`` (the
    connection's, when the receiver announced ``deflate-stream-N``) they are packed against the
    connection's earlier texts too, and this one is added to it; a history made with ``ppm=True``
    (the receiver announced ``ppm-stream-N``) codes them with its PPM model instead of DEFLATE. ``timestamp=False`` leaves out
    ``sent_unix_ms`` (7 bytes; the receiver knows when it arrived)."""
    message = pb.Utterance(seq=seq, style_image_id=style_image_id,
                           sent_unix_ms=(sent_unix_ms or now_ms()) if timestamp else 0)
    if history is not None:  # packed against the history, it can be checked only here
        _check_text(caption, "caption", DEFAULT_LIMITS.max_caption_chars, seq)
        _check_text(text, "speech text", DEFAULT_LIMITS.max_text_chars, seq)
    coded = history is not None and history.ppm
    packed = b""
    if dictionary and (caption or text):
        packed = (textpack.pack_ppm(caption, text, dictionary, history) if coded
                  else textpack.pack(caption, text, dictionary, history.data if history is not None else None))
    if packed and len(packed) < len(caption.encode()) + len(text.encode()):
        message.packed = packed
        message.dictionary = dictionary + (textpack.PPM if coded else textpack.STREAM if history is not None else 0)
    else:
        message.caption, message.text = caption, text
    if history is not None:  # the receiver adds every utterance's text, in the same order
        history.add(caption, text)
    return pb.Envelope(utterance=message)


def capabilities() -> tuple[str, ...]:
    """What a receiver with this codec understands beyond the core (Welcome.capabilities)."""
    return (tuple(textpack.capability(v) for v in sorted(textpack.DICTIONARIES))
            + tuple(textpack.stream_capability(v) for v in sorted(textpack.DICTIONARIES))
            + tuple(textpack.ppm_capability(v) for v in sorted(textpack.DICTIONARIES)) + (QUIET,))


# Hello/Welcome capability: the sender wants no QUEUED acks and pings only when the link is idle;
# the receiver then tolerates longer silences (see receiver/session.py).
QUIET = "quiet"
# Hello capability: the sender understands RENDERED acks for a range of seqs (Ack.first_seq), so a
# receiver may hold its acks for a while and send one for several (each ack costs a SACK back).
ACK_RANGES = "ack-ranges"
MAX_ACK_RANGE = 64


def ack(
    seq: int, outcome: int, *, media_seconds: float = 0.0, render_ms: int = 0, queue_depth: int = 0,
    first_seq: int = 0,
) -> pb.Envelope:
    """An ack; ``first_seq`` (RENDERED, to a sender with ``ACK_RANGES``): every seq from it to ``seq``."""
    return pb.Envelope(ack=pb.Ack(seq=seq, outcome=outcome, media_seconds=media_seconds, render_ms=render_ms,
                                  queue_depth=queue_depth, first_seq=first_seq if first_seq != seq else 0))


def error(code: int, reason: str, seq: int | None = None) -> pb.Envelope:
    message = pb.Error(code=code, reason=reason[:1000])
    if seq is not None:
        message.seq = seq
    return pb.Envelope(error=message)


def error_from(exc: ProtocolError) -> pb.Envelope:
    return error(exc.code, exc.reason, exc.seq)


def style_image_chunks(
    image_id: str, data: bytes, limits: Limits = DEFAULT_LIMITS
) -> list[pb.Envelope]:
    """Split an image file's bytes into StyleImage envelopes that each fit one frame."""
    if not data:
        raise ProtocolError("style image is empty", Code.EMPTY_FIELD)
    if len(data) > limits.max_style_image_bytes:
        raise ProtocolError(
            f"style image of {len(data)} bytes exceeds {limits.max_style_image_bytes}",
            Code.TOO_LARGE,
        )
    size = limits.max_style_chunk_bytes
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [
        pb.Envelope(
            style_image=pb.StyleImage(
                id=image_id,
                chunk_index=index,
                chunk_count=len(pieces),
                total_bytes=len(data),
                data=piece,
            )
        )
        for index, piece in enumerate(pieces)
    ]


def ping(nonce: int) -> pb.Envelope:
    return pb.Envelope(ping=pb.Ping(nonce=nonce, sent_unix_ms=now_ms()))


def pong(of: pb.Ping) -> pb.Envelope:
    return pb.Envelope(pong=pb.Pong(nonce=of.nonce, ping_sent_unix_ms=of.sent_unix_ms))


def bye(reason: str = "") -> pb.Envelope:
    return pb.Envelope(bye=pb.Bye(reason=reason))


def code_name(code: int) -> str:
    return pb.Error.Code.Name(code) if code in pb.Error.Code.values() else f"CODE_{code}"


def outcome_name(outcome: int) -> str:
    return pb.Ack.Outcome.Name(outcome) if outcome in pb.Ack.Outcome.values() else str(outcome)
