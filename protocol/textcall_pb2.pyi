from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("hello", "welcome", "utterance", "ack", "error", "style_image", "ping", "pong", "bye")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STYLE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    BYE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    welcome: Welcome
    utterance: Utterance
    ack: Ack
    error: Error
    style_image: StyleImage
    ping: Ping
    pong: Pong
    bye: Bye
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., utterance: _Optional[_Union[Utterance, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., style_image: _Optional[_Union[StyleImage, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., bye: _Optional[_Union[Bye, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("sender_id", "protocol_version", "capabilities", "secret")
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    sender_id: str
    protocol_version: int
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    secret: bytes
    def __init__(self, sender_id: _Optional[str] = ..., protocol_version: _Optional[int] = ..., capabilities: _Optional[_Iterable[str]] = ..., secret: _Optional[bytes] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "protocol_version", "last_rendered_seq", "window", "max_text_chars", "max_style_image_bytes", "model", "capabilities")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_RENDERED_SEQ_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_STYLE_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol_version: int
    last_rendered_seq: int
    window: int
    max_text_chars: int
    max_style_image_bytes: int
    model: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., protocol_version: _Optional[int] = ..., last_rendered_seq: _Optional[int] = ..., window: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., max_style_image_bytes: _Optional[int] = ..., model: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ...) -> None: ...

class Utterance(_message.Message):
    __slots__ = ("seq", "caption", "text", "style_image_id", "sent_unix_ms", "packed", "dictionary")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STYLE_IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    DICTIONARY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    caption: str
    text: str
    style_image_id: str
    sent_unix_ms: int
    packed: bytes
    dictionary: int
    def __init__(self, seq: _Optional[int] = ..., caption: _Optional[str] = ..., text: _Optional[str] = ..., style_image_id: _Optional[str] = ..., sent_unix_ms: _Optional[int] = ..., packed: _Optional[bytes] = ..., dictionary: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq", "outcome", "media_seconds", "render_ms", "queue_depth", "first_seq")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[Ack.Outcome]
        QUEUED: _ClassVar[Ack.Outcome]
        RENDERED: _ClassVar[Ack.Outcome]
        DUPLICATE: _ClassVar[Ack.Outcome]
    OUTCOME_UNSPECIFIED: Ack.Outcome
    QUEUED: Ack.Outcome
    RENDERED: Ack.Outcome
    DUPLICATE: Ack.Outcome
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    outcome: Ack.Outcome
    media_seconds: float
    render_ms: int
    queue_depth: int
    first_seq: int
    def __init__(self, seq: _Optional[int] = ..., outcome: _Optional[_Union[Ack.Outcome, str]] = ..., media_seconds: _Optional[float] = ..., render_ms: _Optional[int] = ..., queue_depth: _Optional[int] = ..., first_seq: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "reason", "seq")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CODE_UNSPECIFIED: _ClassVar[Error.Code]
        BAD_FRAME: _ClassVar[Error.Code]
        BAD_MESSAGE: _ClassVar[Error.Code]
        TOO_LARGE: _ClassVar[Error.Code]
        EMPTY_FIELD: _ClassVar[Error.Code]
        UNEXPECTED: _ClassVar[Error.Code]
        QUEUE_FULL: _ClassVar[Error.Code]
        RATE_LIMITED: _ClassVar[Error.Code]
        UNKNOWN_STYLE: _ClassVar[Error.Code]
        BAD_IMAGE: _ClassVar[Error.Code]
        GENERATION_FAILED: _ClassVar[Error.Code]
        UNSUPPORTED_VERSION: _ClassVar[Error.Code]
        INTERNAL: _ClassVar[Error.Code]
        IDENTITY: _ClassVar[Error.Code]
        SEQ_GAP: _ClassVar[Error.Code]
    CODE_UNSPECIFIED: Error.Code
    BAD_FRAME: Error.Code
    BAD_MESSAGE: Error.Code
    TOO_LARGE: Error.Code
    EMPTY_FIELD: Error.Code
    UNEXPECTED: Error.Code
    QUEUE_FULL: Error.Code
    RATE_LIMITED: Error.Code
    UNKNOWN_STYLE: Error.Code
    BAD_IMAGE: Error.Code
    GENERATION_FAILED: Error.Code
    UNSUPPORTED_VERSION: Error.Code
    INTERNAL: Error.Code
    IDENTITY: Error.Code
    SEQ_GAP: Error.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    code: Error.Code
    reason: str
    seq: int
    def __init__(self, code: _Optional[_Union[Error.Code, str]] = ..., reason: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class StyleImage(_message.Message):
    __slots__ = ("id", "chunk_index", "chunk_count", "total_bytes", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    chunk_index: int
    chunk_count: int
    total_bytes: int
    data: bytes
    def __init__(self, id: _Optional[str] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("nonce", "sent_unix_ms")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    sent_unix_ms: int
    def __init__(self, nonce: _Optional[int] = ..., sent_unix_ms: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("nonce", "ping_sent_unix_ms")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    PING_SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    ping_sent_unix_ms: int
    def __init__(self, nonce: _Optional[int] = ..., ping_sent_unix_ms: _Optional[int] = ...) -> None: ...

class Bye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
