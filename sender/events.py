"""What a sender is configured with, and what it tells its user: ``SenderConfig``, the events of
``Sender.events()`` (connected, queued, rendered, refused, ...), its byte counters and ``FatalError``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protocol import codec
from protocol.ice import IceServer


@dataclass(frozen=True)
class SenderConfig:
    receiver_url: str
    token: str
    sender_id: str
    outbox_path: Path | None = None
    secret: bytes | None = None  # proves the sender id (sender/identity.py); None: one per process and id
    ice_servers: tuple[IceServer | str, ...] = ()
    loopback: bool = False  # offer 127.0.0.1 as the only host candidate (both peers on one machine)
    tls_ca: Path | None = None  # PEM to trust for an https:// receiver (self-signed or private CA)
    ping_interval: float = 2.0
    dead_after: float = 8.0
    # Low-bitrate link (see README "Bits per second"): compress caption and text with the shared
    # preset dictionary when the receiver offers it (`text_coder` "ppm": a PPM model of the dictionary
    # and the call's earlier texts, where the receiver offers it; "deflate": DEFLATE against them),
    # and with `quiet` skip QUEUED acks, take RENDERED
    # acks for runs of seqs, and ping only after `quiet_ping_interval` seconds with nothing from the
    # receiver (any datagram of it, its SCTP SACK of an utterance included, proves it alive).
    compress: bool = False
    text_coder: str = "ppm"
    quiet: bool = False
    quiet_ping_interval: float = 25.0  # longer than a batch window (--batch up to 20 s) plus a render
    quiet_dead_after: float = 50.0  # below the receiver's 60 s for quiet sessions
    connect_timeout: float = 20.0
    reconnect: bool = True
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if not self.receiver_url.startswith(("http://", "https://")):
            raise ValueError(f"receiver URL must start with http:// or https://: {self.receiver_url!r}")
        if not self.token:
            raise ValueError("a token is required")
        codec._check_id(self.sender_id, "sender id")
        if self.dead_after <= self.ping_interval:
            raise ValueError("dead_after must exceed ping_interval")
        if self.quiet_dead_after <= self.quiet_ping_interval:
            raise ValueError("quiet_dead_after must exceed quiet_ping_interval")
        if self.tls_ca is not None and not self.tls_ca.is_file():
            raise ValueError(f"--tls-ca {self.tls_ca} is not a file")


# ------------------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class Connected:
    session_id: str
    model: str
    window: int
    pending: int


@dataclass(frozen=True)
class Queued:
    seq: int
    queue_depth: int


@dataclass(frozen=True)
class Rendered:
    seq: int
    media_seconds: float
    render_ms: int
    latency_s: float
    duplicate: bool = False


@dataclass(frozen=True)
class Refused:
    """The receiver will not render this utterance; it is dropped from the outbox."""

    seq: int
    code: str
    reason: str


@dataclass(frozen=True)
class ReceiverError:
    code: str
    reason: str
    retry_in: float | None = None  # set when the utterance it concerns will be resent (RETRY_LATER)


@dataclass(frozen=True)
class Disconnected:
    reason: str
    retry_in: float | None


@dataclass(frozen=True)
class Waiting:
    """The receiver's window is full: the sender holds back until acks arrive."""

    in_flight: int
    pending: int


Event = Connected | Queued | Rendered | Refused | ReceiverError | Disconnected | Waiting


@dataclass
class Counters:
    payload_bytes_sent: int = 0
    payload_bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    wire_bytes_sent: int = 0
    wire_bytes_received: int = 0
    rtt_ms: float | None = None


class FatalError(Exception):
    """The receiver refused us in a way retrying cannot fix (bad token, unsupported version)."""
