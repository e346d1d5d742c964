"""textcall's wire protocol: the ``textcall.v1`` messages and the codec that validates them.

Imports only the standard library and protobuf, so the sender stays light.
"""

from protocol import textcall_pb2 as pb
from protocol.codec import (
    CHANNEL_LABEL,
    DEFAULT_LIMITS,
    PROTOCOL_VERSION,
    Limits,
    ProtocolError,
    decode,
    encode,
)

__all__ = [
    "CHANNEL_LABEL",
    "DEFAULT_LIMITS",
    "PROTOCOL_VERSION",
    "Limits",
    "ProtocolError",
    "decode",
    "encode",
    "pb",
]
