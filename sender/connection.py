"""One peer connection of a sender: its channel, the Welcome it waits for, what is in flight."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiortc import RTCDataChannel, RTCPeerConnection

from protocol import textpack
from protocol.rtc import dtls_counters


@dataclass
class Connection:
    """One peer connection to the receiver and what the sender knows about it."""

    pc: RTCPeerConnection
    channel: RTCDataChannel
    welcome: asyncio.Future
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str = "connection closed"
    in_flight: set[int] = field(default_factory=set)
    last_heard: float = field(default_factory=time.monotonic)
    last_ping: float = 0.0  # when the last heartbeat went out
    window: int = 1
    wire_recorded: bool = False
    dictionary: int = 0  # preset dictionary both sides have (0: send plain text)
    quiet: bool = False  # both sides agreed on idle-only heartbeats
    history: textpack.History | None = None  # the texts sent so far, when packing against them was agreed

    def wire_bytes(self) -> tuple[int, int]:
        """DTLS-level bytes (SCTP + DTLS framing included) sent and received on this connection so far."""
        counters = dtls_counters(self.pc)
        return (0, 0) if counters is None else (counters.bytes_sent, counters.bytes_received)
